"""The command line before typer (ant.cli.command_line) and the command table (ant.cli.app):
one table of global options read by the app, the entry point and completion; every
command listed with a whole sentence, its module imported only when it runs."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ant.cli.app import COMMANDS
from ant.cli.command_line import (
    GLOBAL_OPTIONS,
    GlobalOptions,
    command_name,
    hoist_global_options,
    resolve,
    typed_values,
)
from ant.errors import ExitCode, UsageError
from tests.helpers import run_ant

ANT = Path(__file__).resolve().parents[2] / "ant"


def python(*code: str, columns: int = 80) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", "\n".join(code)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": str(columns)},
    )
    return proc.stdout


def test_the_table_names_every_field_of_the_global_options() -> None:
    assert [o.parameter for o in GLOBAL_OPTIONS] == [
        f.name for f in dataclasses.fields(GlobalOptions)
    ]


def test_help_shows_every_global_option_with_its_variable() -> None:
    out = python("from ant.cli.main import run", "run(['--help'])", columns=200)
    for option in GLOBAL_OPTIONS:
        line = next(ln for ln in out.splitlines() if option.flags[0] in ln)
        assert f"env var: {option.env_var}" in line, line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["list", "--cache", "http://c", "-A"], ["--cache", "http://c", "list", "-A"]),
        (["list", "--cache=http://c"], ["--cache=http://c", "list"]),
        (["show", "j", "-vv"], ["-vv", "show", "j"]),
        (["show", "j", "-vvvv", "--verbose"], ["-vvvv", "--verbose", "show", "j"]),
        (["list", "-vx"], ["list", "-vx"]),  # not ant's: typer says what is wrong
        (["list", "--verbose=2"], ["list", "--verbose=2"]),
    ],
)
def test_hoisting_reads_the_table(argv: list[str], expected: list[str]) -> None:
    assert hoist_global_options(argv) == expected


def test_command_name_skips_global_options_and_their_values() -> None:
    assert command_name(["-n", "x", "--cache", "u", "-vv", "submit", "f"]) == "submit"
    assert command_name(["--cache=u", "update", "j"]) == "update"
    assert command_name(["-v"]) is None


def test_typed_values_and_resolve() -> None:
    words = ["--context", "c", "-n", "x", "--cache=u", "-vv", "-v", "logs", "j"]
    assert typed_values(words) == {"context": "c", "namespace": "x", "cache_url": "u", "verbose": 3}
    env = {"ANT_NAMESPACE": "from-env", "ANT_KUBECONFIG": "/k", "ANT_VERBOSE": "2"}
    assert resolve({"namespace": "x"}, env) == GlobalOptions(
        kubeconfig="/k", namespace="x", verbose=2
    )
    assert resolve({}, {}) == GlobalOptions()
    with pytest.raises(UsageError, match="ANT_VERBOSE='lots' is not a number"):
        resolve({}, {"ANT_VERBOSE": "lots"})


def test_a_bad_ant_verbose_is_one_line_and_exit_2() -> None:
    result = run_ant(["whoami"], vars={"ANT_VERBOSE": "lots"})
    assert result.code == ExitCode.USAGE
    assert result.err_lines == ["ant: error: ANT_VERBOSE='lots' is not a number (e.g. 0, 1 or 2)"]


def test_every_command_module_is_in_the_table() -> None:
    modules = {p.stem for p in (ANT / "cli" / "commands").glob("*.py")} - {"__init__"}
    assert {c.module for c in COMMANDS} == modules


def commands_section(help_text: str) -> list[tuple[str, str]]:
    lines = help_text.split("Commands:\n", 1)[1].splitlines()
    rows: list[tuple[str, str]] = []
    for line in lines:
        if line.startswith("    ") and rows:  # a wrapped summary
            rows[-1] = (rows[-1][0], f"{rows[-1][1]} {line.strip()}")
        elif line.strip():
            name, _, summary = line.strip().partition(" ")
            rows.append((name, summary.strip()))
    return rows


@pytest.mark.parametrize("group", [(), ("rollout",), ("admin",), ("cache",)])
def test_command_summaries_are_whole_sentences(group: tuple[str, ...]) -> None:
    out = python("from ant.cli.main import run", f"run([*{group!r}, '--help'])")
    rows = commands_section(out)
    assert rows
    for name, summary in rows:
        assert summary.endswith("."), (name, summary)
        assert not summary.endswith("..."), (name, summary)
        assert summary[0].isupper(), (name, summary)
    if not group:
        assert [name for name, _ in rows] == [c.name for c in COMMANDS]


def test_help_imports_no_command_module() -> None:
    out = python(
        "import contextlib, io, sys",
        "from ant.cli.main import run",
        "with contextlib.redirect_stdout(io.StringIO()):",
        "    run(['--help'])",
        "print(sorted(m for m in sys.modules if m.startswith('ant.cli.commands.')))",
    )
    assert out.strip() == "[]"
