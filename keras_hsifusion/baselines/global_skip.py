"""Bicubic upsampling and least-squares detail injection: the estimates of `GlobalSkip`."""

import keras
import numpy as np

from keras_hsifusion.baselines._inputs import check_inputs, unit_divisor
from keras_hsifusion.data.degrade import psf_radius
from keras_hsifusion.layers.global_skip import GlobalSkip

__all__ = ["bicubic", "detail_injection", "poly_detail_injection"]


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
