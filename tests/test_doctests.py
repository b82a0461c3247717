"""The `>>>` examples of the package's docstrings run and print what they show.

Every module with an example is collected, with `keras`, `np`, the public names of the
module's package (e.g. `keras_hsifusion.data`) and the module's own names in the namespace;
examples print shapes as tuples and rounded values, so they hold on every
backend. Modules listed in `EXCLUDED` (by dotted prefix) are not run: remove a prefix to run
that module's examples too.
"""

import doctest
import importlib
import pathlib

import keras
import numpy as np
import pytest

import keras_hsifusion

PACKAGE = pathlib.Path(keras_hsifusion.__file__).parent
# Their examples load shipped presets or run long trainings.
EXCLUDED = (
    "keras_hsifusion.demo",
    "keras_hsifusion.presets",
    "keras_hsifusion.profiling",
    "keras_hsifusion.training",
)


def _modules_with_examples():
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>>" not in path.read_text(encoding="utf-8"):
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not any(name == e or name.startswith(e + ".") for e in EXCLUDED):
            names.append(name)
    return names


@pytest.mark.parametrize("name", _modules_with_examples())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    package = importlib.import_module(name.rpartition(".")[0])
    public = {key: getattr(package, key) for key in getattr(package, "__all__", ())}
    globs = {"keras": keras, "np": np, **public, **vars(module)}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    for test in doctest.DocTestFinder().find(module, name, globs=globs):
        runner.run(test, out=report.append)
    assert runner.tries > 0, f"{name}: no example found"
    assert runner.failures == 0, "".join(report)
