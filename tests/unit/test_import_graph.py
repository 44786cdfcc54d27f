"""The import graph of cti/ has no cycles, and the pure packages stay pure.

Every import counts: top level, inside functions and under `if TYPE_CHECKING:`
(a cycle of type-only imports still ties the two sides together). Relative
imports are resolved; `from cti.x import y` is an import of `cti.x.y` when `y`
is a submodule, else of `cti.x`; importing a package is importing its
`__init__`. The implicit import of a module's parent packages is not an edge:
a package `__init__` that re-exports its submodules would otherwise be in a
cycle with each of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "cti"

# Packages of pure logic (no I/O, no processes): they must not reach into the
# parts that run things.
PURE = ("cti.ivr", "cti.routing")
IMPURE = ("cti.controller", "cti.api", "cti.media", "cti.edge")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / PACKAGE).rglob("*.py"))}


def _resolve(name: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module of `from <node.module> import ...` in module `name`."""
    if node.level == 0:
        return node.module or ""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    base = package.split(".")
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that module `name` imports, anywhere in its file."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, path, node)
            targets = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in known else base)
        else:
            continue
        for target in targets:
            # `import cti.a.b` names cti.a.b; a name not in cti/ (a library) is no edge.
            if target in known and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on long chains)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete cycle through the component's first module, for the message."""
    members = set(component)
    start = component[0]
    # Breadth-first from start inside the component until we come back to it.
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    return [*paths[node], start]
                if child not in paths:
                    paths[child] = [*paths[node], child]
                    nxt.append(child)
        frontier = nxt
    return component


def _under(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    # A top-level import of a module.
    assert "cti.config" in graph["cti.controller.gateway"]
    # A name from a package: its __init__.
    assert "cti.routing" in graph["cti.metrics"]
    # `from cti import metrics`: a submodule.
    assert "cti.metrics" in graph["cti.api.routes_floor"]
    # Under TYPE_CHECKING.
    assert "cti.store.db" in graph["cti.store.plugin_storage"]
    # Inside a function (cli imports the gateway lazily).
    assert "cti.controller.gateway" in graph["cti.cli"]


def test_relative_imports_resolve(tmp_path: Path) -> None:
    known = {"a.b", "a.b.sibling", "a.other", "a.b.pkg", "a.b.pkg.sub", "a.b.c"}
    mod = tmp_path / "mod.py"
    mod.write_text("from . import sibling\nfrom ..other import thing\n"
                   "def f():\n    from .pkg import sub\nimport os\n")
    assert imports_of("a.b.mod", mod, known) == {"a.b.sibling", "a.other", "a.b.pkg.sub"}
    init = tmp_path / "__init__.py"  # in a package's __init__, "." is the package itself
    init.write_text("from .c import x\nfrom . import sibling\n")
    assert imports_of("a.b", init, known) == {"a.b.c", "a.b.sibling"}


def test_cycle_finder_names_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    components = [c for c in strongly_connected(graph) if len(c) > 1]
    assert components == [["a", "b", "c"]]
    assert a_cycle(graph, components[0]) == ["a", "b", "c", "a"]


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = [c for c in strongly_connected(graph) if len(c) > 1]
    assert not cycles, "import cycles in cti/:\n" + "\n".join(
        " -> ".join(a_cycle(graph, c)) + f"  (component: {', '.join(c)})" for c in cycles)


def test_pure_packages_import_nothing_that_runs_things() -> None:
    graph = import_graph()
    bad = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items() if _under(name, PURE)
        for target in targets if _under(target, IMPURE)
    )
    assert not bad, "pure packages reach into the runtime:\n" + "\n".join(bad)
