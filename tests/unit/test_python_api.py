"""`import ant`: the Python API's names, loaded lazily (docs/python.md)."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

import ant


def test_import_ant_loads_nothing_until_a_name_is_used() -> None:
    code = (
        "import sys, ant; "
        "print(sorted(m for m in sys.modules if m.startswith(('ant.', 'requests', 'google', "
        "'yaml', 'rich', 'typer')))); ant.Client; print('ant.api' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["[]", "True"]


def test_every_public_name_resolves() -> None:
    for name in ant.__all__:
        assert getattr(ant, name) is not None
    assert ant.Client.__module__ == "ant.api"
    assert issubclass(ant.NotFoundError, ant.AntError)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="Clint"):
        ant.Clint  # noqa: B018


def test_the_api_sits_between_the_cli_and_the_domain() -> None:
    """ant/api.py uses ant.jobs and ant.kube; never the CLI or the cache server; never
    prints or exits (tests/unit/test_layers.py's rules, for this one module)."""
    from tests.unit.test_layers import ANT, imported_modules

    tree = ast.parse((ANT / "api.py").read_text())
    assert not [m for m in imported_modules(tree) if m.startswith(("ant.cli", "ant.cache"))]
    calls = [n.func for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert not [f for f in calls if isinstance(f, ast.Name) and f.id in ("print", "exit")]
