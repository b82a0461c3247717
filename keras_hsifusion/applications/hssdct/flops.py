"""FLOP formulas of HSSDCT: none of its own.

HSSDCT is built from public layers only (HDRTB, SSCL, the dense window block, `Interpolate`,
`GlobalSkip`, Keras convolutions), whose formulas are generic
(`keras_hsifusion.profiling.layer_flops`). A layer private to HSSDCT would register its
formula here with `keras_hsifusion.profiling.register_flops`.
"""
