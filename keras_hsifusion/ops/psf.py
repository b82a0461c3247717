"""Gaussian-PSF blur and decimation with `keras.ops`, identical to `data.spatial_degrade`."""

import math

import numpy as np
from keras import ops

from keras_hsifusion.data.degrade import psf_radius, psf_sigma


def psf_taps(scale, psf_fwhm=None):
    """Offsets (relative to HR pixel `scale * i`) and weights of LR pixel `i`'s 1-D PSF.

    The same sampled, truncated and normalised Gaussian as `keras_hsifusion.data.psf_matrix`.
    """
    sigma = psf_sigma(scale, psf_fwhm)
    radius = psf_radius(scale, psf_fwhm)
    centre = (scale - 1) / 2.0
    offsets = np.arange(math.ceil(centre - radius), math.floor(centre + radius) + 1)
    weights = np.exp(-0.5 * ((offsets - centre) / sigma) ** 2)
    return offsets, weights / weights.sum()


def _symmetric(idx, n):
    # half-sample symmetric reflection: -1 -> 0, n -> n - 1
    idx = ops.where(idx < 0, -idx - 1, idx)
    return ops.where(idx >= n, 2 * n - 1 - idx, idx)


def psf_degrade(x, scale, psf_fwhm=None):
    """Blurs `(B, H, W, C)` with the Gaussian PSF and decimates by `scale`.

    Exactly `keras_hsifusion.data.spatial_degrade` (same taps, symmetric borders) in
    `keras.ops`, for any backend and dynamic sizes; `H` and `W` must be multiples of `scale`
    and at least the PSF radius.

    Args:
        x: `(B, H, W, C)` tensor.
        scale: integer resolution ratio.
        psf_fwhm: FWHM of the PSF in HR pixels. Defaults to `scale`.

    Returns:
        `(B, H // scale, W // scale, C)`.
    """
    offsets, weights = psf_taps(scale, psf_fwhm)
    for axis in (1, 2):
        n = ops.shape(x)[axis]
        base = ops.arange(n // scale, dtype="int32") * scale
        out = None
        for off, w in zip(offsets.tolist(), weights.tolist()):
            term = ops.take(x, _symmetric(base + off, n), axis=axis) * w
            out = term if out is None else out + term
        x = out
    return x
