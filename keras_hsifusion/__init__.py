"""keras_hsifusion: hyperspectral/multispectral image fusion models for Keras 3.

Importing the package registers every custom layer and model with Keras, so
``keras.models.load_model`` can read ``.keras`` files saved under any backend.
"""

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
from keras_hsifusion.inference import fuse
from keras_hsifusion.presets import from_preset, list_presets
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
    "list_presets",
]
