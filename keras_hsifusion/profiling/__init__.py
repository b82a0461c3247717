"""FLOP counting and benchmarking of Keras models on every backend.

`count_flops` is analytic and backend-independent; the formulas of Keras' layers and of
`keras_hsifusion.layers` are registered on import (`layer_flops`), a model's private layers
register theirs from the model's folder. The backend-native counters, timers and memory
probes live in `keras_hsifusion.profiling.native`, which imports the active backend's
framework lazily.
"""

from keras_hsifusion.profiling import layer_flops  # noqa: F401 - registers the formulas
from keras_hsifusion.profiling.flops import FlopReport, LayerFlops, count_flops, register_flops

__all__ = ["FlopReport", "LayerFlops", "count_flops", "register_flops"]
