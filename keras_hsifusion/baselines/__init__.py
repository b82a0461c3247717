"""Classical fusion methods: the parameter-free baselines the zoo models are compared with.

Every method has one signature, `method(lr_hsi, hr_msi, scale, srf=None, psf_fwhm=None)`:
numpy channels-last `(h, w, C)` LR-HSI and `(scale*h, scale*w, c)` HR-MSI (or batches of
them) in, the fused `(scale*h, scale*w, C)` HR-HSI (batched like the input) out as numpy
float32. `srf` (`(C, c)`, e.g. `keras_hsifusion.data.spectral_response`) and `psf_fwhm` (HR
pixels) are the sensor knowledge a method may use; each method's docstring says whether it
does. Bad input raises a `TypeError` or `ValueError` naming the argument (`check_inputs`).

`METHODS` maps each name to its function; the training runner reports every one of them on
the test region (`results["baselines"]`). A new method is one module here plus one entry in
`METHODS`.

Examples:
>>> import numpy as np
>>> from keras_hsifusion import baselines
>>> fused = baselines.get_method("bicubic")(np.ones((4, 4, 5)), np.ones((16, 16, 3)), scale=4)
>>> fused.shape, fused.dtype
((16, 16, 5), dtype('float32'))
"""

from keras_hsifusion.baselines._estimation import estimate_srf
from keras_hsifusion.baselines._inputs import check_inputs
from keras_hsifusion.baselines.cnmf import cnmf
from keras_hsifusion.baselines.fuse_wei import fuse_wei
from keras_hsifusion.baselines.global_skip import bicubic, detail_injection, poly_detail_injection
from keras_hsifusion.baselines.glp import glp
from keras_hsifusion.baselines.gsa import gsa
from keras_hsifusion.baselines.hysure import hysure
from keras_hsifusion.baselines.sfim import sfim
from keras_hsifusion.baselines.subspace import hysime_detail_injection

__all__ = [
    "METHODS",
    "bicubic",
    "check_inputs",
    "cnmf",
    "detail_injection",
    "estimate_srf",
    "fuse_wei",
    "get_method",
    "glp",
    "gsa",
    "hysime_detail_injection",
    "hysure",
    "poly_detail_injection",
    "sfim",
]

METHODS = {
    "bicubic": bicubic,
    "detail_injection": detail_injection,
    "poly_detail_injection": poly_detail_injection,
    "sfim": sfim,
    "gsa": gsa,
    "glp": glp,
    "cnmf": cnmf,
    "hysure": hysure,
    "fuse_wei": fuse_wei,
    "hysime_detail_injection": hysime_detail_injection,
}


def get_method(name):
    """The baseline function registered as `name` (a key of `METHODS`)."""
    if name not in METHODS:
        raise ValueError(f"Unknown baseline. Expected one of {sorted(METHODS)}. Received: {name!r}")
    return METHODS[name]
