"""FLOP counting and benchmarking of Keras models on every backend.

`count_flops` is analytic and backend-independent. The backend-native counters, timers and
memory probes live in `keras_hsifusion.profiling.native`, which imports the active backend's
framework lazily.
"""

from keras_hsifusion.profiling.flops import FlopReport, LayerFlops, count_flops, register_flops

__all__ = ["FlopReport", "LayerFlops", "count_flops", "register_flops"]
