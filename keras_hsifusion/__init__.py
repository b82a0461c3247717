"""keras_hsifusion: hyperspectral/multispectral image fusion models for Keras 3.

Importing the package registers every custom layer and model with Keras, so
``keras.models.load_model`` can read ``.keras`` files saved under any backend.

The one exception is the `khf` command line (the `khf` console script and
``python -m keras_hsifusion``): there the package is imported lazily, so that ``khf --help``
and ``khf presets`` start without Keras and a command can choose the backend before Keras
is imported. The command line loads the package (the first attribute access does, e.g.
``keras_hsifusion.fuse_files``) once it has parsed its arguments; docs/cli.md.
"""

import os
import sys

from keras_hsifusion.version import __version__

__all__ = [
    "__version__",
    "applications",
    "baselines",
    "convert",
    "data",
    "layers",
    "losses",
    "metrics",
    "ops",
    "presets",
    "profiling",
    "adapt",
    "from_preset",
    "fuse",
    "fuse_files",
    "list_presets",
]


def _started_as_command_line():
    """True while the `khf` console script or `python -m keras_hsifusion` imports the
    package, before any command line argument is parsed."""
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0).removesuffix(".exe") == "khf":
        return True
    # `python -m keras_hsifusion ...`: runpy imports the package while argv[0] is still "-m"
    orig = list(getattr(sys, "orig_argv", ()))
    return argv0 == "-m" and any(
        (a, b) == ("-m", __name__) or a == f"-m{__name__}" for a, b in zip(orig, orig[1:] + [""])
    )


def _load():
    """Imports every submodule (registering every custom object with Keras)."""
    global adapt, from_preset, fuse, fuse_files, list_presets
    global applications, baselines, convert, data, layers, losses, metrics, ops, presets
    global profiling
    from keras_hsifusion import (
        applications,
        baselines,
        convert,
        data,
        layers,
        losses,
        metrics,
        ops,
        presets,
        profiling,
    )
    from keras_hsifusion.adaptation import adapt
    from keras_hsifusion.inference import fuse, fuse_files
    from keras_hsifusion.presets import from_preset, list_presets


if _started_as_command_line():
    _FUNCTIONS = ("adapt", "from_preset", "fuse", "fuse_files", "list_presets")
    _LOADING = []

    def __getattr__(name):
        # A submodule is imported on its own (`from keras_hsifusion import baselines` inside
        # another module's import must not start a full load half-way); the first function
        # the command line asks for loads the whole package, as `import` does elsewhere.
        if name in __all__ and name not in _FUNCTIONS:
            import importlib

            return importlib.import_module(f"{__name__}.{name}")
        if name in _FUNCTIONS and not _LOADING:
            _LOADING.append(name)
            _load()
            return globals()[name]
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

else:
    _load()
