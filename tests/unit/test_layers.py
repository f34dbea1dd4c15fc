"""Layers point down: every import of every module is read, and a broken layer or a cycle fails naming the import.

The ground (``smartfarm``) imports none of our packages; ``storage`` only the ground; ``ml`` storage and the ground;
``stream`` ml, storage and the ground, and so does ``api`` (the farm API); ``edge`` stands beside them and imports
only the ground; ``cli`` is the top of the product and only ``benchmarks`` imports it: the benchmarks drive the
services and processes the command line launches, so they sit above it, and ``smartfarm bench`` runs them as a
program (``python -m benchmarks``) rather than importing them. Function-level imports count as much as module-level
ones, and so do those under ``TYPE_CHECKING``. No two modules import each other, directly or round a loop, inside
a package or across packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import repo_root

MAY_IMPORT: dict[str, frozenset[str]] = {
    "smartfarm": frozenset(),
    "storage": frozenset({"smartfarm"}),
    "ml": frozenset({"storage", "smartfarm"}),
    "stream": frozenset({"ml", "storage", "smartfarm"}),
    "edge": frozenset({"smartfarm"}),
    "api": frozenset({"ml", "storage", "smartfarm"}),
    "cli": frozenset({"api", "stream", "ml", "storage", "edge", "smartfarm"}),
    "benchmarks": frozenset({"cli", "api", "stream", "ml", "storage", "edge", "smartfarm"}),
}
"""Which of our packages each package may import (besides itself)."""


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(root: Path, path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, the modules it may name) for every import in ``path``, relative ones resolved:
    ``from a import b`` may import the module ``a.b`` or the name ``b`` of ``a``."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(root, path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, [alias.name]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found.append((node.lineno, module, [module] + [f"{module}.{alias.name}" for alias in node.names]))
    return found


def layer_violations(root: Path) -> list[str]:
    """Every import that breaks a layer, and every import cycle between modules."""
    modules = {
        module_name(root, path): path for package in MAY_IMPORT for path in sorted((root / package).rglob("*.py"))
    }
    graph: dict[str, set[str]] = {m: set() for m in modules}
    problems = []
    for module, path in modules.items():
        top = module.split(".")[0]
        for line, imported, candidates in imports_of(root, path):
            target = imported.split(".")[0]
            if target in MAY_IMPORT and target != top and target not in MAY_IMPORT[top]:
                where = f"{path.relative_to(root)}:{line}"
                problems.append(f"{where}: {module} imports {imported}, but {top} may import only {_names(top)}")
            for name in candidates:
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != module:
                    graph[module].add(name)
    for cycle in _cycles(graph):
        packages = sorted({m.split(".")[0] for m in cycle})
        where = "across packages" if len(packages) > 1 else f"inside {packages[0]}"
        problems.append(f"import cycle {where}: {' -> '.join(cycle)}")
    return sorted(set(problems))


def _names(package: str) -> str:
    return ", ".join(sorted(MAY_IMPORT[package])) or "none of our packages"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = stack[stack.index(v) :]
            del stack[stack.index(v) :]
            on_stack.difference_update(group)
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_import_points_down() -> None:
    problems = layer_violations(repo_root())
    assert not problems, "\n".join(problems)


def test_the_layer_check_names_a_sideways_import_an_upward_one_and_cycles(tmp_path: Path) -> None:
    files = {
        "smartfarm/__init__.py": "",
        "smartfarm/base.py": "from stream import agent\n",
        "storage/__init__.py": "",
        "ml/__init__.py": "",
        "edge/__init__.py": "",
        "edge/device.py": "def late():\n    from stream.records import Rec\n",
        "stream/__init__.py": "",
        "stream/agent.py": "from . import records\nfrom smartfarm import base\n",
        "stream/records.py": "from cli.main import main\n",
        "ml/plots.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ml.season import Log\n",
        "ml/season.py": "def plot():\n    from ml.plots import draw\n",
        "cli/__init__.py": "",
        "cli/main.py": "import edge.device\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    problems = layer_violations(tmp_path)
    assert problems == [
        "edge/device.py:2: edge.device imports stream.records, but edge may import only smartfarm",
        "import cycle across packages: cli.main -> edge.device -> stream.records",
        "import cycle across packages: smartfarm.base -> stream.agent",
        "import cycle inside ml: ml.plots -> ml.season",
        "smartfarm/base.py:1: smartfarm.base imports stream, but smartfarm may import only none of our packages",
        "stream/records.py:1: stream.records imports cli.main, but stream may import only ml, smartfarm, storage",
    ]
