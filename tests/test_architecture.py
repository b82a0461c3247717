"""The package's structure rules (docs/architecture.md): the layer table (who may import whom),
no private name used across modules, no import cycle, no reaching into Keras internals or the
interpreter's import machinery, modules of a readable size.

The import graph is read from the source (every `import` statement, also those inside
functions, since a lazy import is still a dependency). Importing a package means running its
`__init__`, so an edge to a package stands for the edges of its `__init__`. The layer table
is read from docs/architecture.md itself, so the document and the test cannot drift apart.
"""

import ast
import os
import re

import pytest

# numpy only: runs once, under the first backend of `make test` (tests/conftest.py)
pytestmark = pytest.mark.backend_independent

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.join(REPO, "keras_hsifusion")
ARCHITECTURE = os.path.join(REPO, "docs", "architecture.md")
PACKAGE = "keras_hsifusion"
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


# ------------------------------------------------------------------------------------------
# The layer table.

# Import edges (importer, imported) and private names (importer, name) that break the rules
# today, each with the reason it is tolerated; an entry that no longer matches anything fails
# `test_allowlists_are_current`, so that it is removed with the code it stood for.
ALLOWED_EDGES = {
    # The demo lists and loads presets through the package root (`khf.list_presets`), which
    # registers the zoo's presets before it lists them.
    ("demo", "keras_hsifusion"),
}
ALLOWED_PRIVATE = {
    # The torch kernels behind `layers.core`'s Conv2D/Dense (docs above: the one place with
    # torch-specific fast paths); its only user is outside `ops`. Moving it to
    # `layers/_torch.py`, or making it public, clears this entry.
    ("layers.core", "ops._torch"),
}


def _short(module):
    return module.removeprefix(PACKAGE + ".") if module != PACKAGE else PACKAGE


def _names(cell):
    return re.findall(r"`([\w.]+)`", cell)


def _layer_table(text=None):
    """`({layer: set of layers it may import}, [(importer, imported) exceptions])` from the
    "Who may import whom" section of docs/architecture.md.

    A row's first cell names its layers (module prefixes, e.g. `data.degrade`, `training`);
    the second, the layers they may import; "every layer above" adds those of all earlier
    rows. A module belongs to the layer of its longest prefix; modules of one layer may
    import each other. Exceptions are the section's `- `A` -> `B`` lines.
    """
    if text is None:
        text = open(ARCHITECTURE, encoding="utf-8").read()
    section = text.split("## Who may import whom", 1)[1].split("\n## ", 1)[0]
    table, above, exceptions = {}, [], []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 2 and _names(cells[0]):
            layers = _names(cells[0])
            allowed = set(_names(cells[1]))
            if "every layer above" in cells[1]:
                allowed |= set(above)
            for layer in layers:
                assert layer not in table, f"layer {layer!r} is in two rows"
                table[layer] = allowed
            above += layers
        match = re.match(r"^- `([\w.]+)` -> `([\w.]+)`", line.strip())
        if match:
            exceptions.append(match.groups())
    return table, exceptions


def _layer_of(module, table):
    short = _short(module)
    best = None
    for layer in table:
        if short == layer or short.startswith(layer + "."):
            if best is None or len(layer) > len(best):
                best = layer
    return best


def _covers(name, module):
    short = _short(module)
    return short == name or short.startswith(name + ".")


def _layer_violations(graph, table, exceptions, allowed_edges=()):
    bad = []
    for module, targets in graph.items():
        source = _layer_of(module, table)
        for target in targets:
            if not target.startswith(PACKAGE):
                continue
            layer = _layer_of(target, table)
            if layer == source:
                continue
            edge = (_short(module), _short(target))
            if any(_covers(name, target) for name in table[source]):
                continue
            if any(_covers(a, module) and _covers(b, target) for a, b in exceptions):
                continue
            if edge in allowed_edges:
                continue
            bad.append(f"{edge[0]} -> {edge[1]}")
    return sorted(bad)


def test_layer_table_covers_every_module():
    table, _ = _layer_table()
    _, modules = _graph()
    assert {"utils", "ops", "layers", "applications", "training", "cli"} <= set(table)
    missing = sorted(_short(m) for m in modules if _layer_of(m, table) is None)
    assert not missing, f"modules in no row of the layer table (docs/architecture.md): {missing}"


def test_imports_follow_the_layer_table():
    table, exceptions = _layer_table()
    graph, _ = _graph()
    bad = _layer_violations(graph, table, exceptions, ALLOWED_EDGES)
    assert not bad, "imports that the layer table (docs/architecture.md) does not allow: " + (
        "; ".join(bad)
    )


def test_layer_checker_refuses_an_upward_import():
    text = """## Who may import whom
| layer | may import |
|---|---|
| `utils` | nothing |
| `ops` | `utils` |
| `layers`, `losses` | every layer above |
| `inference` | `layers.core` |

- `ops.psf` -> `layers` (a documented exception)
"""
    table, exceptions = _layer_table(text)
    assert table["losses"] == {"utils", "ops"} and exceptions == [("ops.psf", "layers")]
    graph = {
        "keras_hsifusion.ops.a": {"keras_hsifusion.utils.b", "keras_hsifusion.layers.c"},
        "keras_hsifusion.ops.psf": {"keras_hsifusion.layers.c"},
        "keras_hsifusion.layers.c": {"keras_hsifusion.ops.a", "keras_hsifusion.losses", "numpy"},
        "keras_hsifusion.inference.d": {"keras_hsifusion.layers.core", "keras_hsifusion.layers"},
    }
    # `layers` and `losses` share a row but not a layer: neither may import the other.
    assert _layer_violations(graph, table, exceptions) == [
        "inference.d -> layers",
        "layers.c -> losses",
        "ops.a -> layers.c",
    ]


# ------------------------------------------------------------------------------------------
# Private names.


def _private(name):
    return name.startswith("_") and not name.startswith("__")


def _private_module_owner(module):
    """The package whose private module `module` is, or None (e.g. `ops._torch` -> `ops`)."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if _private(part):
            return ".".join(parts[:i])
    return None


def _private_uses(path, module, is_package, modules):
    """Names starting with one underscore that `module` takes from another module of the
    package: `from X import _y`, `X._y` on an imported module X, and private modules
    (`_torch.py`) imported from outside their own package."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    package = module if is_package else module.rpartition(".")[0]
    uses, bound = set(), {}

    def private_module(target):
        owner = _private_module_owner(target)
        if owner is not None and not (module == owner or module.startswith(owner + ".")):
            uses.add(target)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE):
                    private_module(alias.name)
                    if alias.asname:
                        bound[alias.asname] = alias.name
                    else:
                        bound[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if not base.startswith(PACKAGE):
                continue
            private_module(base)
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in modules:
                    private_module(target)
                    bound[alias.asname or alias.name] = target
                elif _private(alias.name) and base != module:
                    uses.add(target)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            chain, value = [], node.value
            while isinstance(value, ast.Attribute):
                chain.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in bound:
                owner = ".".join([bound[value.id], *chain])
                if owner in modules and owner != module:
                    target = f"{owner}.{node.attr}"
                    if target in modules:
                        private_module(target)
                    else:
                        uses.add(target)
    return sorted(_short(u) for u in uses)


def _all_private_uses():
    modules = _modules()
    found = set()
    for module, path in sorted(modules.items()):
        is_package = path.endswith("__init__.py")
        found |= {(_short(module), use) for use in _private_uses(path, module, is_package, modules)}
    return found


def test_no_private_name_is_used_across_modules():
    found = sorted(f"{m} uses {name}" for m, name in _all_private_uses() - ALLOWED_PRIVATE)
    assert not found, "private names used outside their module: " + "; ".join(found)


def test_allowlists_are_current():
    stale = sorted(ALLOWED_PRIVATE - _all_private_uses())
    graph, _ = _graph()
    table, exceptions = _layer_table()
    edges = {e for e in _layer_violations(graph, table, exceptions)}
    stale += sorted(e for e in ALLOWED_EDGES if f"{e[0]} -> {e[1]}" not in edges)
    stale += [
        f"{a} -> {b}"
        for a, b in exceptions
        if not any(_covers(a, m) and any(_covers(b, t) for t in ts) for m, ts in graph.items())
    ]
    assert not stale, f"allowlist entries that no longer match anything (remove them): {stale}"


def test_private_name_checker_finds_each_form(tmp_path):
    source = """
import keras_hsifusion.ops._torch
from keras_hsifusion import presets
from keras_hsifusion.data import io as _io
from keras_hsifusion.training.runner import _fit_stage, fit_stage
from keras_hsifusion.ops import _torch as kernels

def f():
    presets._shipped()
    _io._pick()
    presets.__name__, _io.read_cube, kernels.active
"""
    path = tmp_path / "mod.py"
    path.write_text(source)
    modules = {
        m: "x.py"
        for m in (
            "keras_hsifusion.presets",
            "keras_hsifusion.data.io",
            "keras_hsifusion.training.runner",
            "keras_hsifusion.ops._torch",
            "keras_hsifusion.layers.core",
            "keras_hsifusion.ops.conv",
        )
    }
    found = _private_uses(str(path), "keras_hsifusion.layers.core", False, modules)
    assert found == [
        "data.io._pick",
        "ops._torch",
        "presets._shipped",
        "training.runner._fit_stage",
    ]
    # Inside its own package, a private module is fine.
    assert _private_uses(str(path), "keras_hsifusion.ops.conv", False, modules) == [
        "data.io._pick",
        "presets._shipped",
        "training.runner._fit_stage",
    ]
