"""Sensor estimation and MATLAB-compatible resampling shared by CNMF, HySure and FUSE.

Ports of the math of the toolbox of Yokoya, Grohnfeldt and Chanussot (GRSM 2017) as collected
in magamig/hif-benchmarking: `estR` (relative spectral response with an offset, by
non-negative least squares), `gaussian_down_sample` (Gaussian PSF with FWHM = the ratio,
decimation), `fspecial("gaussian")` and MATLAB's bicubic `imresize` for upsampling.
All work in float64 on `(H, W, C)` arrays.
"""

import numpy as np
from scipy import optimize

from keras_hsifusion.baselines._resampling import resize

__all__ = [
    "estimate_srf",
    "fspecial_gaussian",
    "gaussian_down_sample",
    "imresize_cubic_up",
    "prepare_srf",
]


def fspecial_gaussian(size, sigma):
    """MATLAB's `fspecial("gaussian", [size size], sigma)`: normalised, tiny values zeroed."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    h = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2.0 * sigma**2))
    h[h < np.finfo(np.float64).eps * h.max()] = 0.0
    return h / h.sum()


def gaussian_down_sample(data, ratio, fwhm=None):
    """Yokoya's `gaussian_down_sample`: Gaussian blur (FWHM `ratio`) and decimation.

    Each LR pixel is the Gaussian-weighted sum of the HR pixels around its `ratio x ratio`
    block: a `2r x 2r` window (`2r - 1` for odd `r`) inside the image, the `r x r` block
    alone (with an `r x r` Gaussian) on the outer ring of LR pixels.

    Args:
        data: `(H, W, C)` array.
        ratio: integer decimation factor.
        fwhm: FWHM of the Gaussian in HR pixels. Defaults to `ratio` (the reference's).

    Returns:
        float64 `(H // ratio, W // ratio, C)` array.
    """
    data = np.asarray(data, dtype=np.float64)
    r = int(ratio)
    sig = (r if fwhm is None else fwhm) / 2.35482
    hx, hy = data.shape[0] // r, data.shape[1] // r
    band = data.shape[2]
    h1 = fspecial_gaussian(r, sig)
    blocks = data[: hx * r, : hy * r].reshape(hx, r, hy, r, band)
    out = np.einsum("xiyjc,ij->xyc", blocks, h1)
    if hx > 2 and hy > 2:
        n2 = 2 * r if r % 2 == 0 else 2 * r - 1
        h2 = fspecial_gaussian(n2, sig)
        start = r - (r // 2 if r % 2 == 0 else (r - 1) // 2)
        win = np.lib.stride_tricks.sliding_window_view(data, (n2, n2), axis=(0, 1))
        win = win[start : start + (hx - 2) * r : r, start : start + (hy - 2) * r : r]
        out[1:-1, 1:-1] = np.einsum("xycij,ij->xyc", win, h2)
    return out


def estimate_srf(lr_hsi, hr_msi, ratio, fwhm=None):
    """Relative spectral response with offset, Yokoya's `estR` (no mask, no prior SRF).

    Each MSI band, degraded to the LR grid by `gaussian_down_sample`, is regressed on the
    LR-HSI bands plus a constant: least squares with non-negative band weights and a free
    offset (the reference solves this quadratic programme with `quadprog`; here it is the
    equivalent non-negative least squares on centred data, solved exactly by Lawson-Hanson).

    Args:
        lr_hsi: `(h, w, C)` array.
        hr_msi: `(H, W, c)` array.
        ratio: integer resolution ratio.
        fwhm: FWHM of the Gaussian PSF in HR pixels. Defaults to `ratio` (the reference's).

    Returns:
        `(R, offset, error)`: float64 `(c, C)` weights, `(c,)` offsets and `(c,)` relative
        RMS errors of the fit.
    """
    lr = np.asarray(lr_hsi, dtype=np.float64)
    lr_msi = gaussian_down_sample(hr_msi, ratio, fwhm)
    a = lr.reshape(-1, lr.shape[-1])
    b = lr_msi.reshape(-1, lr_msi.shape[-1])
    a_mean, b_mean = a.mean(axis=0), b.mean(axis=0)
    ac = a - a_mean
    weights = np.empty((b.shape[1], a.shape[1]))
    offset = np.empty(b.shape[1])
    error = np.empty(b.shape[1])
    for k in range(b.shape[1]):
        x, _ = optimize.nnls(ac, b[:, k] - b_mean[k], maxiter=50 * a.shape[1])
        weights[k] = x
        offset[k] = b_mean[k] - a_mean @ x
        resid = b[:, k] - a @ x - offset[k]
        error[k] = np.sqrt(np.mean(resid**2)) / b_mean[k]
    return weights, offset, error


def prepare_srf(lr_hsi, hr_msi, ratio, srf, fwhm=None):
    """The reference wrappers' SRF step: the given `srf`, or `estR` and offset removal.

    Returns:
        `(R (c, C), hr_msi (H, W, c), error (c,) or None)`, float64: the MSI has the estimated
        offset subtracted and is clipped at 0 when the SRF is estimated, unchanged otherwise.
    """
    msi = np.asarray(hr_msi, dtype=np.float64)
    if srf is not None:
        return np.asarray(srf, dtype=np.float64).T, msi, None
    weights, offset, error = estimate_srf(lr_hsi, msi, ratio, fwhm)
    return weights, np.maximum(msi - offset, 0.0), error


def imresize_cubic_up(image, ratio):
    """MATLAB's (and Octave image's) `imresize(image, ratio)` for an integer `ratio >= 1`.

    Args:
        image: `(h, w, ...)` array.
        ratio: integer upsampling factor.

    Returns:
        float64 `(ratio*h, ratio*w, ...)` array.
    """
    image = np.asarray(image, dtype=np.float64)
    flat = image.reshape(image.shape[:2] + (-1,))
    out = resize(flat, (ratio * image.shape[0], ratio * image.shape[1]), "bicubic")
    return out.reshape(out.shape[:2] + image.shape[2:])
