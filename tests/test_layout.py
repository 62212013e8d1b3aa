"""The house's layout holds: no two modules of ours import each other, directly or round a
circle, and none imports one of ours inside a function (the way a circle is hidden)."""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("addin", "services")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imported(node: ast.AST) -> list[str]:
    """Our modules an import statement names: ``from a.b import c`` names ``a.b.c`` where that is
    a module, else ``a.b``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in MODULES]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        modules = [f"{node.module}.{alias.name}" for alias in node.names if f"{node.module}.{alias.name}" in MODULES]
        if len(modules) < len(node.names) and node.module in MODULES:
            modules.append(node.module)
        return modules
    return []


def _imports() -> tuple[dict[str, set[str]], list[str]]:
    """Each module's imports of ours, and the imports of ours made inside a function."""
    graph: dict[str, set[str]] = {}
    inside: list[str] = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = set()
        for node in ast.walk(tree):
            graph[name].update(module for module in _imported(node) if module != name)
        for function in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            inside += [
                f"{name}.{function.name} imports {module}" for node in ast.walk(function) for module in _imported(node)
            ]
    return graph, inside


def test_no_module_of_ours_imports_another_round_a_circle():
    graph, _ = _imports()
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as error:
        raise AssertionError(f"an import circle: {' → '.join(error.args[1])}") from None


def test_no_import_of_ours_hides_in_a_function():
    _, inside = _imports()
    assert inside == []


def test_the_check_sees_a_circle():
    """The check itself can fail: a circle made up of two modules is found."""
    graph = {"services.a": {"services.b"}, "services.b": {"services.a"}}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError:
        return
    raise AssertionError("no circle found")


def test_the_code_is_formatted():
    """``ruff format`` (120 columns, ``pyproject.toml``) leaves every file as it is."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", str(ROOT)], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr
