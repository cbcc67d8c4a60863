"""The layering in docs/architecture.md, enforced: lower layers never reach up, print or exit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ANT = Path(__file__).resolve().parents[2] / "ant"
# What each layer may not import.
FORBIDDEN = {
    "kube": ("ant.cli", "ant.jobs", "ant.cache"),
    "jobs": ("ant.cli", "ant.cache"),
    "cache": ("ant.cli",),
    "controller": ("ant.cli",),
}


def sources(layer: str) -> list[Path]:
    return [p for p in (ANT / layer).rglob("*.py") if "proto" not in p.relative_to(ANT).parts]


def imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_lower_layers_never_import_higher_ones(layer: str) -> None:
    offenders = [
        f"{path.relative_to(ANT.parent)} imports {name}"
        for path in sources(layer)
        for name in imported_modules(ast.parse(path.read_text()))
        if name.startswith(FORBIDDEN[layer])
    ]
    assert not offenders


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_lower_layers_never_print_or_exit(layer: str) -> None:
    offenders = []
    for path in sources(layer):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                owner = getattr(getattr(func, "value", None), "id", "")
                if name == "print" or (owner == "sys" and name == "exit"):
                    offenders.append(f"{path.relative_to(ANT.parent)}:{node.lineno} {name}()")
    assert not offenders


def cli_imports() -> dict[str, set[str]]:
    """ant.cli module -> the ant.cli modules it imports (at module level or in a function)."""
    modules = {
        ".".join(p.relative_to(ANT.parent).with_suffix("").parts): p
        for p in (ANT / "cli").rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets.add(node.module)
                targets.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_no_import_circle_inside_the_cli() -> None:
    graph = cli_imports()
    circles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph[module]):
            if target in path:
                circles.append([*path[path.index(target) :], target])
            elif not circles:
                visit(target, [*path, target])

    for module in sorted(graph):
        visit(module, [module])
    assert not circles, " -> ".join(circles[0])


@pytest.mark.parametrize("layer", ["jobs", "cli"])
def test_the_domain_and_the_cli_never_make_up_an_api_status(layer: str) -> None:
    """An ApiError carries what the API server said; ant's own findings have classes."""
    offenders = [
        f"{path.relative_to(ANT.parent)}:{node.lineno}"
        for path in sources(layer)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and (getattr(node.func, "id", "") or getattr(node.func, "attr", ""))
        in ("Status", "StatusCause", "api_error")
    ]
    assert not offenders
