"""Full-reference metrics: an estimate against a reference image (numpy, float64).

All functions take channels-last arrays: one image `(H, W, C)` or a batch `(B, H, W, C)`.
They compute in numpy float64 and return a Python `float`; on a batch they return the mean
of the per-image values. `ref` is always the reference (ground truth) and `est` the estimate;
the order matters for PSNR (peak of `ref`), ERGAS (band means of `ref`) and SSIM
(`data_range` of `ref`).

Definitions (the reduced-resolution protocol of docs/data.md, "Metrics"):

- `rmse`: `sqrt(mean((ref - est)^2))` over all pixels and bands. Range [0, inf), 0 is best.
- `psnr`: `10 log10(max(ref)^2 / mean((ref - est)^2))`, one global MSE, peak = max of the
  reference. Range (-inf, inf] dB, higher is better (`inf` for identical images).
- `sam`: spectral angle in degrees, `arccos(<r, e> / (|r| |e|))` per pixel with the cosine
  clipped to [-1, 1], averaged over the pixels where neither spectrum is all-zero.
  Range [0, 180], 0 is best.
- `ergas`: `100 / scale * sqrt(mean_k (RMSE_k / mu_k)^2)`, `RMSE_k` and `mu_k` the RMSE and
  the reference mean of band k. Range [0, inf), 0 is best.
- `ssim`: SSIM per band with a Gaussian window (sigma 1.5, 11 taps, reflect padding, borders
  of 5 pixels cropped), K1 = 0.01, K2 = 0.03, population covariances, `data_range` = max - min
  of the whole reference, averaged over bands: scikit-image's `structural_similarity` with
  `gaussian_weights=True, use_sample_covariance=False`. Range [-1, 1], 1 is best.
- `cc`: Pearson correlation per band, averaged over bands. Range [-1, 1], 1 is best.
- `uiqi`: the universal image quality index Q of Wang and Bovik (2002) on 8x8 windows sliding
  by one pixel, averaged over windows and then over bands. Range [-1, 1], 1 is best.

Degenerate inputs (docs/reliability.md) never give a NaN without saying so:

- empty arrays, and `ref`/`est` of different shapes or ranks: `ValueError`.
- `psnr` of a reference whose maximum is not positive (e.g. all zero): `ValueError`, the peak
  is undefined (identical images still give `inf`).
- `ergas` with a reference band of mean 0 (an all-zero or dead band): `ValueError` naming
  the bands; drop them first.
- `cc` with a constant reference band: `ValueError` naming the bands (the correlation is
  undefined); a constant estimate band against a varying reference band counts as 0 (no
  linear relation).
- `ssim` of a constant reference without an explicit `data_range` (`max - min = 0`):
  `ValueError`; `data_range` must be positive.
- `sam` skips zero spectra (0 when all are); `uiqi` handles flat windows as `img_qi.m`;
  `rmse` needs nothing.
- NaN or Inf values in `ref` or `est` are not errors: they propagate (the result is NaN or
  infinite), so that a diverged estimate stays visible.
"""

import numpy as np
from scipy import ndimage

from keras_hsifusion.metrics._quality_index import q_index

__all__ = ["cc", "ergas", "psnr", "rmse", "sam", "ssim", "uiqi"]


def _pair(ref, est, name):
    ref = np.asarray(ref, dtype=np.float64)
    est = np.asarray(est, dtype=np.float64)
    if ref.shape != est.shape:
        raise ValueError(
            f"`{name}` needs `ref` and `est` of the same shape. "
            f"Received: ref.shape={ref.shape}, est.shape={est.shape}"
        )
    if ref.ndim not in (3, 4):
        raise ValueError(
            f"`{name}` takes channels-last (H, W, C) images or (B, H, W, C) batches. "
            f"Received: ref.shape={ref.shape}"
        )
    if ref.size == 0:
        raise ValueError(f"`{name}` needs non-empty images. Received: ref.shape={ref.shape}")
    return ref, est


def _zero_bands(values):
    """Indices (a list of ints) of the bands where `values` (..., C) is exactly 0."""
    return [int(k) for k in np.flatnonzero(np.asarray(values) == 0)]


def _batched(fn, name):
    """Wraps a per-image (H, W, C) metric so that it also takes (B, H, W, C) batches."""

    def wrapper(ref, est, *args, **kwargs):
        ref, est = _pair(ref, est, name)
        if ref.ndim == 4:
            return float(
                np.mean([fn(r, e, *args, **kwargs) for r, e in zip(ref, est, strict=True)])
            )
        return float(fn(ref, est, *args, **kwargs))

    wrapper.__name__ = name
    wrapper.__qualname__ = name
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _rmse(ref, est):
    """Root mean squared error over all pixels and bands.

    Args:
        ref: reference, `(H, W, C)` or `(B, H, W, C)`.
        est: estimate, same shape.

    Returns:
        float in [0, inf); 0 is best. Batches: mean of the per-image values.
    """
    return np.sqrt(np.mean((ref - est) ** 2))


def _psnr(ref, est):
    """Peak signal-to-noise ratio in dB with one global MSE and peak = max of `ref`.

    `10 * log10(max(ref)^2 / mean((ref - est)^2))`.

    Args:
        ref: reference, `(H, W, C)` or `(B, H, W, C)`.
        est: estimate, same shape.

    Returns:
        float in dB, higher is better; `inf` when `est == ref`. Batches: mean of the
        per-image values.

    Raises:
        ValueError: if `max(ref)` is not positive (e.g. an all-zero reference) and
            `est != ref`: the peak is undefined.
    """
    mse = np.mean((ref - est) ** 2)
    if mse == 0:
        return np.inf
    peak = np.max(ref)
    if peak <= 0:
        raise ValueError(
            "`psnr` needs a reference with a positive maximum (its peak). "
            f"Received: max(ref)={float(peak)}"
        )
    return 10.0 * np.log10(peak**2 / mse)


def _sam(ref, est):
    """Spectral angle mapper in degrees.

    Per pixel `arccos(<r, e> / (|r| |e|))` with the cosine clipped to [-1, 1], averaged over
    the pixels where neither `ref` nor `est` is the zero spectrum (those are skipped).

    Args:
        ref: reference, `(H, W, C)` or `(B, H, W, C)`.
        est: estimate, same shape.

    Returns:
        float in [0, 180] degrees; 0 is best (0 when every pixel is skipped). Batches: mean
        of the per-image values.
    """
    r = ref.reshape(-1, ref.shape[-1])
    e = est.reshape(-1, est.shape[-1])
    nr = np.linalg.norm(r, axis=1)
    ne = np.linalg.norm(e, axis=1)
    valid = (nr != 0) & (ne != 0)  # not `> 0`: a NaN spectrum must not be skipped silently
    if not np.any(valid):
        return 0.0
    cos = np.sum(r[valid] * e[valid], axis=1) / (nr[valid] * ne[valid])
    return np.degrees(np.mean(np.arccos(np.clip(cos, -1.0, 1.0))))


def _ergas(ref, est, scale):
    """ERGAS (relative dimensionless global error in synthesis).

    `100 / scale * sqrt(mean_k (RMSE_k / mu_k)^2)`, with `RMSE_k` the RMSE of band k and
    `mu_k` the mean of band k of `ref`.

    Args:
        ref: reference, `(H, W, C)` or `(B, H, W, C)`.
        est: estimate, same shape.
        scale: resolution ratio between the HR and LR images (e.g. 4).

    Returns:
        float in [0, inf); 0 is best. Batches: mean of the per-image values.

    Raises:
        ValueError: if a band of `ref` has mean 0 (an all-zero or dead band), naming the
            bands: its relative error is undefined; drop such bands first.
    """
    if not scale or scale <= 0:
        raise ValueError(f"`scale` must be a positive number. Received: scale={scale}")
    rmse_k = np.sqrt(np.mean((ref - est) ** 2, axis=(0, 1)))
    mu_k = np.mean(ref, axis=(0, 1))
    zero = _zero_bands(mu_k)
    if zero:
        raise ValueError(
            "`ergas` is undefined for reference bands of mean 0 (all-zero or dead bands); "
            f"drop them first. Received: bands {zero[:20]} of {ref.shape[-1]} have mean 0"
        )
    return 100.0 / scale * np.sqrt(np.mean((rmse_k / mu_k) ** 2))


def _gauss(x, sigma):
    return ndimage.gaussian_filter(x, sigma=sigma, truncate=3.5, mode="reflect")


def _ssim(ref, est, data_range=None, sigma=1.5, k1=0.01, k2=0.03):
    """Structural similarity averaged over bands (Wang et al., 2004).

    Per band: Gaussian-weighted local means, variances and covariance (sigma 1.5, filter
    truncated at 3.5 sigma: 11 taps, reflect padding, population covariances), the SSIM map,
    its mean after cropping `(11 - 1) // 2 = 5` border pixels; then the mean over bands. This
    equals `skimage.metrics.structural_similarity(ref, est, channel_axis=-1,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=data_range)`.

    Args:
        ref: reference, `(H, W, C)` or `(B, H, W, C)`, H and W at least 11.
        est: estimate, same shape.
        data_range: dynamic range `L` of the constants `(K L)^2`, positive. Defaults to
            `max(ref) - min(ref)` over the whole image.
        sigma: standard deviation of the Gaussian window. Defaults to 1.5.
        k1: defaults to 0.01.
        k2: defaults to 0.03.

    Returns:
        float in [-1, 1]; 1 is best. Batches: mean of the per-image values.

    Raises:
        ValueError: if the range is 0 (a constant reference and no `data_range`) or a given
            `data_range` is not positive: the constants would vanish and flat windows give
            0 / 0.
    """
    radius = int(3.5 * sigma + 0.5)
    win = 2 * radius + 1
    if min(ref.shape[0], ref.shape[1]) < win:
        raise ValueError(
            f"`ssim` needs images of at least {win}x{win} pixels for sigma={sigma}. "
            f"Received: ref.shape={ref.shape}"
        )
    if data_range is None:
        data_range = float(np.max(ref) - np.min(ref))
        if data_range == 0:
            raise ValueError(
                "`ssim` of a constant reference needs an explicit `data_range` (its max - min "
                f"is 0). Received: ref constant at {float(ref.flat[0])}"
            )
    elif not data_range > 0:
        raise ValueError(f"`data_range` must be positive. Received: data_range={data_range}")
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    values = []
    for k in range(ref.shape[-1]):
        x, y = ref[..., k], est[..., k]
        ux, uy = _gauss(x, sigma), _gauss(y, sigma)
        vx = _gauss(x * x, sigma) - ux * ux
        vy = _gauss(y * y, sigma) - uy * uy
        vxy = _gauss(x * y, sigma) - ux * uy
        num = (2 * ux * uy + c1) * (2 * vxy + c2)
        den = (ux * ux + uy * uy + c1) * (vx + vy + c2)
        s = num / den
        values.append(np.mean(s[radius:-radius, radius:-radius]))
    return np.mean(values)


def _cc(ref, est):
    """Pearson correlation coefficient per band, averaged over bands.

    Args:
        ref: reference, `(H, W, C)` or `(B, H, W, C)`.
        est: estimate, same shape.

    Returns:
        float in [-1, 1]; 1 is best. A constant band of `est` (against a varying band of
        `ref`) counts as 0: no linear relation. Batches: mean of the per-image values.

    Raises:
        ValueError: if a band of `ref` is constant, naming the bands: its correlation with
            anything is undefined.
    """
    r = ref.reshape(-1, ref.shape[-1])
    e = est.reshape(-1, est.shape[-1])
    # max == min, not a zero variance: the centred values of a constant band need not be 0
    flat = _zero_bands(np.ptp(r, axis=0))
    if flat:
        raise ValueError(
            "`cc` is undefined for constant reference bands (zero variance). Received: bands "
            f"{flat[:20]} of {ref.shape[-1]} are constant"
        )
    flat_est = np.ptp(e, axis=0) == 0
    r = r - r.mean(axis=0)
    e = np.where(flat_est, 0.0, e - e.mean(axis=0))
    see = np.where(flat_est, 1.0, np.sum(e * e, axis=0))
    return np.mean(np.sum(r * e, axis=0) / np.sqrt(np.sum(r * r, axis=0) * see))


def _uiqi(ref, est, block_size=8):
    """Universal image quality index Q (Wang and Bovik, 2002), averaged over bands.

    Per band, `Q = 4 s_xy m_x m_y / ((s_x^2 + s_y^2)(m_x^2 + m_y^2))` on every `block_size`
    x `block_size` window sliding by one pixel (no padding), averaged over windows; windows
    where a denominator vanishes are handled as in the authors' `img_qi.m`. Then the mean
    over bands.

    Args:
        ref: reference, `(H, W, C)` or `(B, H, W, C)`.
        est: estimate, same shape.
        block_size: window side. Defaults to 8.

    Returns:
        float in [-1, 1]; 1 is best. Batches: mean of the per-image values.
    """
    return np.mean(q_index(np.moveaxis(ref, -1, 0), np.moveaxis(est, -1, 0), block_size))


rmse = _batched(_rmse, "rmse")
psnr = _batched(_psnr, "psnr")
sam = _batched(_sam, "sam")
ergas = _batched(_ergas, "ergas")
ssim = _batched(_ssim, "ssim")
cc = _batched(_cc, "cc")
uiqi = _batched(_uiqi, "uiqi")
