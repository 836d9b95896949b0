"""No import cycle among the project's own modules (src/chat_rollout, tools and pytest_tests), and the tests borrow
helpers from pytest_tests/support/ only (never from another test module or conftest.py).

The graph is read from the source (ast), not from a running interpreter, so it sees every import: at module
level, inside a function (a lazy import that only hides a cycle) and under ``if TYPE_CHECKING:``. It walks every
.py file, whatever the packages are called today, so new packages and modules are covered without an edit here.

Edges: ``import a.b.c`` and ``from a.b import c`` point at the deepest project module they name (a.b.c when c is
a module, else a.b); ``from . import x`` and ``from .m import x`` are resolved against the importing package; a
plain ``import name`` in a script under tools/ (run with its own folder on sys.path, like
tools/plpgsql_coverage.py importing ``scratch_db``) resolves to the module beside it. Third-party and standard
library imports are not project modules and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

from chat_rollout import PROJECT_ROOT

#: (folder holding the top-level package or scripts, top-level folder) for each tree the graph covers.
TREES = [(PROJECT_ROOT / "src", "chat_rollout"), (PROJECT_ROOT, "tools"), (PROJECT_ROOT, "pytest_tests")]


def module_name(base: Path, path: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules = {}
    for base, top in TREES:
        root = base / top
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            modules[module_name(base, path)] = path
    return modules


def imported(node: ast.AST, name: str, path: Path, modules: dict[str, Path]) -> list[str]:
    """The project modules one import statement of module ``name`` (file ``path``) loads."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def deepest(dotted: str) -> str | None:
        while dotted:
            if dotted in modules:
                return dotted
            dotted = dotted.rpartition(".")[0]
        return None

    def absolute(dotted: str) -> str | None:
        found = deepest(dotted)
        if found is None and f"{package}.{dotted.partition('.')[0]}" in modules:
            found = deepest(f"{package}.{dotted}")  # a script's import of a module beside it (its folder on sys.path)
        return found

    targets: list[str | None] = []
    if isinstance(node, ast.Import):
        targets = [absolute(alias.name) for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            anchor = package.split(".") if package else []
            anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
            source = ".".join([*anchor, node.module] if node.module else anchor)
            resolve = deepest
        else:
            source = node.module or ""
            resolve = absolute
        for alias in node.names:
            targets.append(resolve(f"{source}.{alias.name}") if alias.name != "*" else resolve(source))
    return [t for t in targets if t is not None and t != name]


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[name] = {
            target
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for target in imported(node, name, path, modules)
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted, the list sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:  # iterative, so a deep graph cannot hit the recursion limit
        nonlocal counter
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
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
                if len(component) > 1:
                    found.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(found)


def describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a] & members)]
    return f"{', '.join(component)}: " + "; ".join(edges)


def test_the_graph_sees_the_projects_modules_and_their_imports():
    graph = import_graph()
    assert {"chat_rollout", "tools.bench.common", "tools.bench.history", "pytest_tests.conftest"} <= set(graph)
    assert "tools.bench.history" in graph["tools.bench.common"]  # from .history import History
    assert "tools.scratch_db" in graph["tools.plpgsql_coverage"]  # a script's import of its neighbour
    assert "pytest_tests.support.databases" in graph["pytest_tests.conftest"]


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycle_in_src_tools_or_the_tests():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(describe(c, graph) for c in found)


def test_tests_borrow_only_from_support():
    """A test module, conftest.py or a support module imports nothing of pytest_tests outside support/ (fixtures
    come from conftest.py by name, never by import)."""
    graph = import_graph()
    borrowed = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module.startswith("pytest_tests.")
        for target in targets
        if target.startswith("pytest_tests") and not target.startswith("pytest_tests.support")
    )
    assert not borrowed, "\n".join(borrowed)
