"""SFIM-HS: smoothing-filter-based intensity modulation adapted to HS+MS fusion."""

import numpy as np
from scipy.optimize import nnls

from keras_hsifusion.baselines._inputs import check_inputs, per_image
from keras_hsifusion.baselines._resampling import resize

__all__ = ["sfim"]


def _sfim_one(lr, hr):
    (h, w, bands), (big_h, big_w, ms_bands) = lr.shape, hr.shape
    low_ms = resize(hr, (h, w), "bilinear")
    design = np.concatenate([low_ms.reshape(h * w, ms_bands), np.ones((h * w, 1))], axis=1)
    target = lr.reshape(h * w, bands)
    coef = np.stack([nnls(design, target[:, k])[0] for k in range(bands)], axis=1)
    synthetic_hr = hr.reshape(-1, ms_bands) @ coef[:-1] + coef[-1]
    synthetic_lr = design @ coef
    ratio_lr = np.divide(
        target, synthetic_lr, out=np.zeros_like(target), where=synthetic_lr != 0
    ).reshape(h, w, bands)
    ratio_hr = resize(ratio_lr, (big_h, big_w), "nearest")
    return synthetic_hr.reshape(big_h, big_w, bands) * ratio_hr


def sfim(lr_hsi, hr_msi, scale, srf=None, psf_fwhm=None):
    """SFIM-HS: smoothing-filter-based intensity modulation by hypersharpening.

    Liu (2000) "Smoothing filter-based intensity modulation: a spectral preserve image fusion
    technique for improving spatial details", adapted to HS+MS fusion by hypersharpening
    (Selva et al., 2015), as in the toolbox of Yokoya, Grohnfeldt and Chanussot's comparative
    review (IEEE GRSM 2017; `methods/SFIM/SFIM.m` of magamig/hif-benchmarking, its default
    mode 3). For each HSI band a synthetic HR image is made from the MSI bands: the MSI is
    shrunk to the LR grid (MATLAB `imresize`, bilinear, antialiased), each LR-HSI band is
    regressed on those bands and a constant by non-negative least squares (all coefficients,
    the constant included, >= 0), and the same coefficients applied to the HR-MSI give the
    synthetic HR band. The fused band is the synthetic HR band times the ratio of the LR-HSI
    band to its synthetic LR version, upsampled by pixel replication (nearest neighbour).

    The spectral response is estimated by that regression, so `srf` is accepted for the common
    signature of `keras_hsifusion.baselines` and not used; the reference uses no PSF either
    (`psf_fwhm` is not used). Where a synthetic LR pixel is exactly 0 (an all-zero HSI band)
    the reference divides by zero (NaN); here that ratio is 0.

    Arguments and result as every baseline (`keras_hsifusion.baselines`); computed in float64.

    Examples:
    >>> rng = np.random.default_rng(0)
    >>> sfim(rng.random((8, 8, 5)), rng.random((32, 32, 3)), scale=4).shape
    (32, 32, 5)
    """
    lr, hr, scale, _, _, batched = check_inputs(
        lr_hsi, hr_msi, scale, srf, psf_fwhm, dtype=np.float64
    )
    return per_image(_sfim_one, lr, hr, batched)
