"""The package's structure rules (docs/architecture.md): no import cycle among its modules, no
reaching into Keras internals or the interpreter's import machinery, modules of a readable size.

The import graph is read from the source (every `import` statement, also those inside
functions, since a lazy import is still a dependency). Importing a package means running its
`__init__`, so an edge to a package stands for the edges of its `__init__`.
"""

import ast
import os
import re

import pytest

# numpy only: runs once, under the first backend of `make test` (tests/conftest.py)
pytestmark = pytest.mark.backend_independent

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "keras_hsifusion")
# A module past this length must say in its docstring why it is one cohesive thing.
MAX_LINES = 450
COHESIVE = "One cohesive module"


def _modules():
    found = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                found[rel.removesuffix(".__init__")] = path
    return found


def _imports(path, module, is_package, modules):
    """The modules `path` imports (for `from X import Y`: X.Y when that is a module, else X)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    package = module if is_package else module.rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                name = f"{base}.{alias.name}"
                names.append(name if name in modules else base)
    return names


def _graph():
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        is_package = path.endswith("__init__.py")
        targets = set()
        for name in _imports(path, module, is_package, modules):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph, modules


def _cycles(graph, modules):
    """Cycles among non-package modules, with packages replaced by what their __init__ imports."""
    packages = {m for m, p in modules.items() if p.endswith("__init__.py")}

    def expand(module, seen):
        out = set()
        for target in graph[module]:
            if target in packages:
                if target not in seen:
                    seen.add(target)
                    out |= expand(target, seen)
            else:
                out.add(target)
        return out

    edges = {m: expand(m, {m}) for m in graph if m not in packages}
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return cycles


def test_no_import_cycle():
    graph, modules = _graph()
    assert "keras_hsifusion.applications.fusion_model" in graph  # the walk found the package
    cycles = _cycles(graph, modules)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_cycle_detector_finds_a_cycle():
    graph = {"p.a": {"p.b"}, "p.b": {"p"}, "p": {"p.a"}, "p.c": set()}
    modules = {"p.a": "a.py", "p.b": "b.py", "p": "__init__.py", "p.c": "c.py"}
    assert _cycles(graph, modules) == [["p.a", "p.b", "p.a"]]


@pytest.mark.parametrize("pattern", [r"keras\.src", r"sys\.path", r"sys\.modules"])
def test_no_internals_or_import_machinery(pattern):
    hits = [
        f"{path}:{i}"
        for path in _modules().values()
        for i, line in enumerate(open(path, encoding="utf-8"), start=1)
        if re.search(pattern, line)
    ]
    assert not hits, f"{pattern} used in {hits}"


def test_modules_are_short_or_say_why():
    long = {}
    for module, path in _modules().items():
        text = open(path, encoding="utf-8").read()
        n = text.count("\n")
        if n > MAX_LINES and COHESIVE not in (ast.get_docstring(ast.parse(text)) or ""):
            long[module] = n
    assert not long, f"modules over {MAX_LINES} lines without {COHESIVE!r} in the docstring: {long}"
