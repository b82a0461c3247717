"""GSA: Gram-Schmidt adaptive component substitution adapted to HS+MS fusion."""

import numpy as np

from keras_hsifusion.baselines._inputs import check_inputs, per_image
from keras_hsifusion.baselines._resampling import resize

__all__ = ["gsa"]


def _band_selection(lr, low_ms):
    """For each HSI band, the MSI band (shrunk to the LR grid) it correlates best with."""
    a = lr.reshape(-1, lr.shape[-1])
    b = low_ms.reshape(-1, low_ms.shape[-1])
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (b.T @ a) / np.outer(np.linalg.norm(b, axis=0), np.linalg.norm(a, axis=0))
    # MATLAB's max skips NaN (a constant band) and takes the first of equal maxima.
    corr = np.where(np.isnan(corr), -np.inf, corr)
    return np.argmax(corr, axis=0)


def _gsa_group(lr, pan):
    """The reference's `GSA(HS, PAN)`: one MSI band sharpens a group of HSI bands."""
    (h, w, bands), (big_h, big_w) = lr.shape, pan.shape
    up = resize(lr, (big_h, big_w), "bicubic")
    up_mean = up.mean(axis=(0, 1))
    up0 = up - up_mean
    lr0 = lr - lr.mean(axis=(0, 1))
    pan0 = pan - pan.mean()
    pan0_lr = resize(pan0[..., None], (h, w), "bicubic")[..., 0]
    design = np.concatenate([lr0.reshape(h * w, bands), np.ones((h * w, 1))], axis=1)
    alpha = np.linalg.lstsq(design, pan0_lr.ravel(), rcond=None)[0]
    intensity = up0 @ alpha[:-1] + alpha[-1]
    intensity0 = (intensity - intensity.mean()).ravel()
    flat = up0.reshape(-1, bands)
    i_c = intensity0 - intensity0.mean()
    gains = (i_c @ (flat - flat.mean(axis=0))) / (i_c @ i_c)
    delta = pan0.ravel() - intensity0
    fused = flat + delta[:, None] * gains
    fused = fused - fused.mean(axis=0) + up_mean
    return fused.reshape(big_h, big_w, bands)


def _gsa_one(lr, hr):
    (h, w, bands), (big_h, big_w, ms_bands) = lr.shape, hr.shape
    low_ms = resize(hr, (h, w), "bilinear")
    groups = _band_selection(lr, low_ms)
    out = np.zeros((big_h, big_w, bands))
    for j in range(ms_bands):
        idx = np.flatnonzero(groups == j)
        if idx.size:
            out[..., idx] = _gsa_group(lr[..., idx], hr[..., j])
    return out


def gsa(lr_hsi, hr_msi, scale, srf=None, psf_fwhm=None):
    """GSA: Gram-Schmidt adaptive component substitution, adapted to HS+MS fusion.

    Aiazzi, Baronti and Selva (2007) "Improving component substitution pansharpening through
    multivariate regression of MS+Pan data", applied to HS+MS fusion as in the toolbox of
    Yokoya, Grohnfeldt and Chanussot's comparative review (IEEE GRSM 2017;
    `methods/GSA/GSA_wrapper.m` and `GSA.m` of magamig/hif-benchmarking). Each HSI band is
    assigned to the MSI band it correlates best with on the LR grid (the MSI shrunk with
    MATLAB `imresize`, bilinear, antialiased); each group of HSI bands is then pansharpened
    by its MSI band: the group is upsampled (bicubic `imresize`), the intensity is the
    regression of the mean-removed MSI band (shrunk with bicubic `imresize`) on the
    mean-removed LR bands and a constant (least squares), and the difference between the
    MSI band and that intensity is injected into each band with the gain
    `cov(intensity, band) / var(intensity)`; each band keeps the mean of its upsampling.

    The spectral response is estimated by that regression, so `srf` is accepted for the common
    signature of `keras_hsifusion.baselines` and not used; the reference uses no PSF either
    (`psf_fwhm` is not used).

    Arguments and result as every baseline (`keras_hsifusion.baselines`); computed in float64.

    Examples:
    >>> rng = np.random.default_rng(0)
    >>> gsa(rng.random((8, 8, 5)), rng.random((32, 32, 3)), scale=4).shape
    (32, 32, 5)
    """
    lr, hr, scale, _, _, batched = check_inputs(
        lr_hsi, hr_msi, scale, srf, psf_fwhm, dtype=np.float64
    )
    return per_image(_gsa_one, lr, hr, batched)
