"""The package's shape: no import circle anywhere, and a root that lists its parts at a glance.

The layers themselves are `import-linter` contracts in pyproject.toml (`make test` runs
`lint-imports`); this test adds what a contract cannot say: no two modules import each other,
directly or through others, counting imports inside functions.
"""
from __future__ import annotations

from pathlib import Path

import grimp

import netgaze

ROOT_PARTS = {"__init__.py", "__main__.py", "errors.py", "viz.py", "_util", "core", "methods", "lab", "metrics",
              "embed", "featureviz", "zoo", "studies", "analyses", "report", "serve", "demo", "cli",
              "integrations"}


def circles(imports: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that reach each other through imports (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in imports.get(module, ()):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(imports):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph("netgaze")
    imports = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert circles(imports) == []


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_package_root_lists_its_parts():
    root = Path(netgaze.__file__).parent
    parts = {p.name for p in root.iterdir() if p.name != "__pycache__"}
    assert parts == ROOT_PARTS
