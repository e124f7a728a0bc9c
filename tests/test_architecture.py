"""The house keeps its shape: no import cycle among latentrun's modules, no module over 350 lines, no
function over 60, and ARCHITECTURE.md's map of who imports whom is the import graph the code has.

The graph is read from the source with `ast` (every `import` of latentrun, lazy ones inside functions
included, `if TYPE_CHECKING:` blocks left out), never by importing the package, so a cycle that
Python tolerates at run time still shows."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "latentrun"
SUBPACKAGES = ("core", "config", "task", "models", "train", "runs", "report", "launch")
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for child in ast.walk(node))
    return skipped


def _imported(module: str, path: Path) -> set[str]:
    """The latentrun modules `module` imports: `from latentrun.x import y` is latentrun.x.y where
    that is a module, else latentrun.x (the package's __init__)."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = _type_checking_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "latentrun")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            if base.split(".")[0] != "latentrun":
                continue
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: _imported(module, path) for module, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _layer(module: str) -> str:
    """core, config, ... for a subpackage's modules; the top-level module's own name otherwise
    (cli, commands, api, the package facade `latentrun`)."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in SUBPACKAGES:
        return parts[1]
    return parts[1] if len(parts) > 1 else "latentrun"


def test_the_cycle_finder_finds_a_cycle_and_nothing_else() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    assert _cycles(GRAPH) == [], "import cycles among latentrun's modules"


def test_no_subpackage_imports_one_that_imports_it_back() -> None:
    layers: dict[str, set[str]] = defaultdict(set)
    for module, imported in GRAPH.items():
        layers[_layer(module)].update(_layer(name) for name in imported if _layer(name) != _layer(module))
    assert _cycles({layer: layers.get(layer, set()) for layer in {*layers, *SUBPACKAGES}}) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_stays_readable(module: str) -> None:
    path = MODULES[module]
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)}: {lines} lines"
    tree = ast.parse(path.read_text())
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == [], f"{path.relative_to(ROOT)}: functions over {MAX_FUNCTION_LINES} lines"


def _architecture_rows() -> dict[str, set[str]]:
    """ARCHITECTURE.md's package table: `| `core/` | owns | imports |` -> {"core": {...}}."""
    rows: dict[str, set[str]] = {}
    for line in (ROOT / "ARCHITECTURE.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        imports = set() if cells[2].startswith("nothing") else {word for word in re.findall(r"[a-z_]+", cells[2])}
        for name in re.findall(r"`([a-z][a-z_]*)(?:/|\.py)?`", cells[0]):
            rows[name] = imports
    return rows


def test_architecture_map_names_exactly_the_imports_each_package_has() -> None:
    rows = _architecture_rows()
    actual: dict[str, set[str]] = defaultdict(set)
    for module, imported in GRAPH.items():
        actual[_layer(module)].update(_layer(name) for name in imported if _layer(name) != _layer(module))
    actual.pop("__main__", None)
    for layer in actual:
        actual[layer].discard("latentrun")  # the package facade re-exports api; importing it is importing api
    assert set(rows) >= set(SUBPACKAGES), "ARCHITECTURE.md has a row for every subpackage"
    wrong = {
        layer: (sorted(rows[layer]), sorted(actual.get(layer, set())))
        for layer in rows
        if rows[layer] != actual.get(layer, set())
    }
    assert wrong == {}, "ARCHITECTURE.md row: (written, actual)"
