"""MTF-GLP-HS: generalized Laplacian pyramid detail injection adapted to HS+MS fusion."""

import numpy as np

from keras_hsifusion.baselines._estimation import gaussian_down_sample
from keras_hsifusion.baselines._inputs import check_inputs, per_image
from keras_hsifusion.baselines._resampling import (
    apply_axes,
    interp23tap_matrix,
    matlab_round,
    resize,
)

__all__ = ["glp"]


def _glp_one(lr, hr, scale, fir1):
    (h, w, bands), (big_h, big_w, ms_bands) = lr.shape, hr.shape
    low_ms = resize(hr, (h, w), "bilinear")
    design = np.concatenate([low_ms.reshape(h * w, ms_bands), np.ones((h * w, 1))], axis=1)
    coef = np.linalg.solve(design.T @ design, design.T @ lr.reshape(h * w, bands))
    pan = (hr.reshape(-1, ms_bands) @ coef[:-1] + coef[-1]).reshape(big_h, big_w, bands)
    # The reference clips at 2 ** sqrt(max(hs)), which is 2 at max = 1 but not proportional
    # to the data; 2 max(lr) is that bound for reflectance of maximum 1, in any units
    # (docs/differences.md).
    top = max(2.0 * lr.max(), 0.0)
    if scale % 2 == 0:
        starts = [scale // 2, scale // 2 + 1]
    else:
        starts = [int(matlab_round(scale / 2))]
    pan_lr = gaussian_down_sample(pan, scale)
    out = np.zeros((big_h, big_w, bands))
    for start in starts:  # 1-based start position of the LR samples on the HR grid
        rows = interp23tap_matrix(h, scale, start - 1, fir1)
        cols = interp23tap_matrix(w, scale, start - 1, fir1)
        up = apply_axes(lr, rows, cols).reshape(-1, bands)
        pan_low = apply_axes(pan_lr, rows, cols).reshape(-1, bands)
        pan_low_c = pan_low - pan_low.mean(axis=0)
        gains = ((up - up.mean(axis=0)) * pan_low_c).sum(axis=0) / (pan_low_c**2).sum(axis=0)
        fused = up + gains * (pan.reshape(-1, bands) - pan_low)
        out += np.clip(fused, 0.0, top).reshape(big_h, big_w, bands)
    return out / len(starts)


def glp(lr_hsi, hr_msi, scale, srf=None, psf_fwhm=None, fir1="matlab"):
    """MTF-GLP-HS: generalized Laplacian pyramid detail injection by hypersharpening.

    Aiazzi et al. (2002, 2006) MTF-tailored generalized Laplacian pyramid, adapted to HS+MS
    fusion by hypersharpening (Selva et al., 2015), as in the toolbox of Yokoya, Grohnfeldt
    and Chanussot's comparative review (IEEE GRSM 2017; `methods/GLP/MTF_GLP_wrapper.m` and
    `MTF_GLP.m` of magamig/hif-benchmarking, mode 2 and the `'GaussKernel'` low-pass). For
    each HSI band a synthetic HR image is the least-squares regression (with a constant) of
    that band on the MSI bands shrunk to the LR grid (MATLAB `imresize`, bilinear,
    antialiased), applied to the HR-MSI. The band is upsampled with the 23-tap-style
    interpolator of the pansharpening toolbox (zero insertion, a 45-tap Hamming-windowed
    `fir1(44, 1 / scale)` low-pass, circular borders); the synthetic image is low-passed by
    the toolbox's `gaussian_down_sample` (a Gaussian PSF of FWHM `scale`, see
    `_estimation.gaussian_down_sample`) and upsampled the same way, and its detail is
    injected with the global gain `cov(up, low) / var(low)`. The result is clipped to
    `[0, 2 max(lr_hsi)]`: the reference's radiometric range `[0, 2 ** sqrt(max(lr_hsi))]`
    (its `n = max(hs(:)) ^ 0.5` bit depth) where `max(lr_hsi) = 1`, made proportional to the
    data so that the method does not depend on their units. For an even `scale` the whole
    is averaged over the two central sampling phases (start positions `scale / 2` and
    `scale / 2 + 1`).

    The spectral response is estimated by the regression, so `srf` is accepted for the common
    signature and not used; the low-pass always has FWHM `scale` as in the reference, so
    `psf_fwhm` is not used either.

    Arguments and result as every baseline (`keras_hsifusion.baselines`, `scale` at least 2:
    `fir1(44, 1)` is not a filter; computed in float64), and:

    Args:
        fir1: `"matlab"` (default, the reference run in MATLAB) or `"octave"`: the design of
            the interpolation filter; GNU Octave's `signal` package designs `fir1` by
            frequency sampling, about 1e-3 away from MATLAB's taps
            (`_resampling.fir1_lowpass`).

    Examples:
    >>> rng = np.random.default_rng(0)
    >>> glp(rng.random((8, 8, 5)), rng.random((32, 32, 3)), scale=4).shape
    (32, 32, 5)
    """
    lr, hr, scale, _, _, batched = check_inputs(
        lr_hsi, hr_msi, scale, srf, psf_fwhm, dtype=np.float64
    )
    if scale < 2:
        raise ValueError(f"`scale` must be at least 2 for `glp`. Received: scale={scale}")
    if fir1 not in ("matlab", "octave"):
        raise ValueError(f"`fir1` must be 'matlab' or 'octave'. Received: fir1={fir1!r}")
    return per_image(_glp_one, lr, hr, batched, scale, fir1)
