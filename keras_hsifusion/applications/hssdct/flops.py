"""FLOP formulas of HSSDCT: none of its own.

HSSDCT is built from public layers only (HDRTB, SSCL, the dense window block, `Interpolate`,
`GlobalSkip`, Keras convolutions), whose formulas are generic
(`keras_hsifusion.profiling.layer_flops`). A layer private to HSSDCT would get its formula
here, in `FORMULAS` (`{layer class: formula}`), which the model's `ModelSpec` hands to the
registry.
"""

FORMULAS = {}
