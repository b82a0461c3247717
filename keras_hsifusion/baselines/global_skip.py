"""Bicubic upsampling and least-squares detail injection: the estimates of `GlobalSkip`."""

import keras
import numpy as np

from keras_hsifusion.baselines._inputs import check_inputs, unit_divisor
from keras_hsifusion.data.degrade import psf_radius
from keras_hsifusion.layers.global_skip import (
    GlobalSkip,
    GlobalSkipFit,
    GlobalSkipStatistics,
    active_statistics,
    fitted_global_skips,
    global_skip_statistics,
)

__all__ = [
    "bicubic",
    "detail_injection",
    "fit_scene",
    "fitted_global_skips",
    "global_skip_statistics",
    "poly_detail_injection",
    "tile_halo",
]

# HR pixels per block of `fit_scene` (the features of a 4-band MSI: ~60 MB of float32).
FIT_BLOCK_PIXELS = 2**20


def _global_skip(mode, lr_hsi, hr_msi, scale, srf, psf_fwhm):
    # The regressions have an absolute ridge term and mix features of different units (the
    # MSI and its products), so each pair is divided by `unit_divisor` (max |lr_hsi|, the
    # presets' normalisation) in float64 before the layer's float32 and multiplied back:
    # unit-equivariant (docs/differences.md, "Classical baselines"). Bicubic is linear.
    dtype = np.float32 if mode == "bicubic" else np.float64
    lr, hr, scale, _, psf_fwhm, batched = check_inputs(
        lr_hsi, hr_msi, scale, srf, psf_fwhm, dtype=dtype
    )
    radius = psf_radius(scale, psf_fwhm)
    if mode != "bicubic" and min(hr.shape[1:3]) < radius:
        raise ValueError(
            f"`hr_msi` must be at least the PSF radius ({radius} HR pixels for psf_fwhm="
            f"{psf_fwhm}) on each side. Received: hr_msi of size {hr.shape[1:3]}"
        )
    stats = active_statistics(mode, scale, psf_fwhm)  # None for bicubic
    if stats is not None:
        # Fitted on a whole scene in its units (`fit_scene`): the output is linear in the
        # LR-HSI and in the weights, so only the MSI is divided and the weights are
        # multiplied back instead of the output (no pass over the output, no copy of it).
        d = 1.0 if stats.divisor is None else stats.divisor
        scaled = GlobalSkipStatistics(mode, scale, psf_fwhm, stats.weights * np.float32(d))
        with global_skip_statistics(scaled):
            out = GlobalSkip(mode, scale, psf_fwhm)(
                [lr.astype(np.float32), (hr / d).astype(np.float32)]
            )
        out = np.asarray(out)  # the backend's buffer where it can (torch, TF, JAX on CPU)
        return out if batched else out[0]
    divisor = np.ones((lr.shape[0], 1, 1, 1))
    if mode != "bicubic":
        divisor[:, 0, 0, 0] = [unit_divisor(image) for image in lr]
        lr = (lr / divisor).astype(np.float32)
        hr = (hr / divisor).astype(np.float32)
    out = GlobalSkip(mode, scale, psf_fwhm)([lr, hr])
    out = np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)
    if mode != "bicubic":  # in float64, in place: no float64 copy of the output
        np.multiply(out, divisor, out=out, casting="same_kind")
    return out if batched else out[0]


def bicubic(lr_hsi, hr_msi, scale, srf=None, psf_fwhm=None):
    """Bicubic upsampling of the LR-HSI (torch's kernel, a = -0.75; `ops.interpolate`).

    The reference every fusion method must beat. The HR-MSI is only checked (its size must
    be `scale` times that of the LR-HSI); `srf` and `psf_fwhm` are accepted for the common
    signature of `keras_hsifusion.baselines` and not used.

    Arguments and result as every baseline (`keras_hsifusion.baselines`).

    Examples:
    >>> bicubic(np.ones((4, 4, 5)), np.ones((16, 16, 3)), scale=4).shape
    (16, 16, 5)
    """
    return _global_skip("bicubic", lr_hsi, hr_msi, scale, srf, psf_fwhm)


def detail_injection(lr_hsi, hr_msi, scale, srf=None, psf_fwhm=None):
    """Least-squares high-pass detail injection, estimated on the input pair alone.

    `layers.GlobalSkip("detail_injection")`: the HR-MSI is blurred with a Gaussian PSF and
    decimated to the LR grid, each LR-HSI band is regressed (centred least squares) on those
    degraded MSI bands, and the MSI's high-pass detail (the MSI minus the bicubic upsampling
    of its degraded version) is added to the bicubic upsampled LR-HSI through the regression
    weights. An HSI whose bands are linear combinations of the MSI bands is recovered
    exactly. The spectral response is estimated by the regression, so `srf` is accepted for
    the common signature of `keras_hsifusion.baselines` and not used. `psf_fwhm` is the FWHM
    (HR pixels) of the Gaussian PSF that degrades the MSI (default `scale`, the Wald protocol
    of `keras_hsifusion.data.degrade`); `hr_msi` must be at least the PSF radius on each side.
    The pair is divided by max|lr_hsi| (in float64) before the layer and the result
    multiplied back, so it does not depend on the units of the input.
    Arguments and result as every baseline (`keras_hsifusion.baselines`).

    Examples:
    >>> rng = np.random.default_rng(0)
    >>> detail_injection(rng.random((8, 8, 5)), rng.random((32, 32, 3)), scale=4).shape
    (32, 32, 5)
    """
    return _global_skip("detail_injection", lr_hsi, hr_msi, scale, srf, psf_fwhm)


def poly_detail_injection(lr_hsi, hr_msi, scale, srf=None, psf_fwhm=None):
    """Second-order least-squares detail injection, estimated on the input pair alone.

    `layers.GlobalSkip("poly_detail_injection")`: `detail_injection` with the MSI bands and
    their pairwise products (`c + c (c + 1) / 2` feature images, each degraded and
    high-passed on its own) as regressors, ridge 1e-4 relative to the mean Gram diagonal. It
    captures a second-order spectral mapping from MSI detail to HSI detail; `srf` is accepted
    for the common signature and not used. Arguments, PSF, units (the pair divided by
    max|lr_hsi|: the products and the ridge are then unit-free, and for non-negative input
    this is the estimate a preset's global skip computes on its normalised input) and result
    as `detail_injection`.

    Examples:
    >>> rng = np.random.default_rng(0)
    >>> poly_detail_injection(rng.random((8, 8, 5)), rng.random((32, 32, 3)), scale=4).shape
    (32, 32, 5)
    """
    return _global_skip("poly_detail_injection", lr_hsi, hr_msi, scale, srf, psf_fwhm)


# The baselines that are a fitted `GlobalSkip` (`fuse` fits them once per scene).
FITTED_METHODS = {
    detail_injection: "detail_injection",
    poly_detail_injection: "poly_detail_injection",
}


def tile_halo(fn, scale, psf_fwhm=None):
    """HR pixels of input on each side of an output pixel that decide it, for `bicubic` and
    the fitted detail injections applying a scene's regression (`fit_scene`), else None.

    Bicubic reads the LR pixels up to 2 away from the output's source position (3 * scale
    HR pixels bound it); the detail injections add the reach of the PSF that degrades the
    MSI features (`GlobalSkipFit.halo` LR pixels). Tiles overlapping by twice this, cut at
    the middle of the overlaps, give the one-pass result (`fuse`).
    """
    if fn is bicubic:
        return 3 * scale
    mode = FITTED_METHODS.get(fn)
    if mode is None:
        return None
    return scale * (GlobalSkipFit(mode, scale, psf_fwhm).halo + 3)


def _rows(x, r0, r1, divisor):
    block = np.asarray(x[r0:r1])
    if divisor is not None:  # in float64, then one rounding: as the tiles are normalised
        block = np.asarray(block, dtype=np.float64) / divisor
    return np.ascontiguousarray(block, dtype=np.float32)


def fit_scene(mode, lr_hsi, hr_msi, scale, psf_fwhm=None, divisor="unit"):
    """Fits `GlobalSkip(mode, scale, psf_fwhm)`'s regression once on a whole scene.

    The scene is read in blocks of full-width rows (any array that reads a block on slicing:
    numpy, np.memmap, h5py/zarr datasets, Dask arrays), each with the LR rows of context the
    PSF needs (`GlobalSkipFit.halo`), so the result is the fit of one layer call on the whole
    scene (up to float rounding) in bounded memory: every LR pixel counts once, no
    decimation, nothing estimated from a subset. The cost is one pass of the PSF degradation
    over the MSI features (a small part of fusing the scene).

    Args:
        mode: `"detail_injection"`, `"poly_detail_injection"` or
            `"hysime_detail_injection"`.
        lr_hsi: `(h, w, C)` array. hr_msi: `(scale*h, scale*w, c)` array.
        scale: integer resolution ratio. psf_fwhm: as `GlobalSkip`.
        divisor: both images are divided by it (in float64, then rounded to float32) before
            the fit: `"unit"` (default) for `unit_divisor(lr_hsi)`, the units of the baselines
            `detail_injection` / `poly_detail_injection`; a positive number (a preset's
            normalisation); or None (the values as given, in float32).

    Returns:
        `layers.GlobalSkipStatistics`, with `divisor` recorded: inside
        `global_skip_statistics(stats)` the baselines divide every tile by it and apply the
        scene's regression, and a zoo model's `GlobalSkip` (which sees inputs already
        divided) applies the regression.

    Examples:
    >>> rng = np.random.default_rng(0)
    >>> lr, hr = rng.random((16, 16, 5)), rng.random((64, 64, 3))
    >>> stats = fit_scene("poly_detail_injection", lr, hr, 4)
    >>> with global_skip_statistics(stats):
    ...     top = poly_detail_injection(lr[:8], hr[:32], 4)  # the scene's regression
    >>> bool(np.allclose(top[:16], poly_detail_injection(lr, hr, 4)[:16], atol=1e-4))
    True
    """
    fit = GlobalSkipFit(mode, scale, psf_fwhm)
    h, w = lr_hsi.shape[0], lr_hsi.shape[1]
    if divisor == "unit":
        top = max(float(np.max(np.abs(np.asarray(lr_hsi[r : r + 256])))) for r in range(0, h, 256))
        divisor = top if top > 0 else 1.0  # `unit_divisor` of the whole LR-HSI
    rows = max(1, FIT_BLOCK_PIXELS // (scale * scale * w))  # LR rows per block
    for a in range(0, h, rows):
        b = min(a + rows, h)
        a0, b0 = max(0, a - fit.halo), min(h, b + fit.halo)
        lr, hr = _rows(lr_hsi, a0, b0, divisor), _rows(hr_msi, scale * a0, scale * b0, divisor)
        fit.update(lr, hr, keep=(a - a0, b - a0))
    return fit.result(divisor)
