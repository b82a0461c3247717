"""Fusion quality metrics: numpy functions and stateful `keras.metrics.Metric` classes.

One cohesive module (every metric of the protocol and its Keras class), hence over 400 lines.

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

No-reference (full-resolution) indices of Alparone et al. (2008) as written by Vivone et al.
(2015) are `d_lambda`, `d_s` and `qnr`; see their docstrings.

The `keras.metrics.Metric` classes `PSNR`, `SAM`, `ERGAS` and `RMSE` compute the same
per-image values with `keras.ops` (float32) and report the mean over every image seen since
the last reset (weighted by `sample_weight` when given). Their result after several batches
therefore equals the numpy function applied to the concatenation of those batches.
"""

import keras
import numpy as np
from keras import ops
from scipy import ndimage

from keras_hsifusion.utils.validation import check_number

__all__ = [
    "ERGAS",
    "PSNR",
    "RMSE",
    "SAM",
    "cc",
    "d_lambda",
    "d_s",
    "ergas",
    "psnr",
    "qnr",
    "rmse",
    "sam",
    "ssim",
    "uiqi",
]


# --------------------------------------------------------------------------- helpers


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


# --------------------------------------------------------------------------- full reference


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


def _box_sums(x, block):
    """Sums of `x` (..., H, W) over every `block` x `block` window (valid positions only)."""
    s = np.cumsum(np.cumsum(x, axis=-2), axis=-1)
    s = np.pad(s, [(0, 0)] * (s.ndim - 2) + [(1, 0), (1, 0)])
    return (
        s[..., block:, block:]
        - s[..., :-block, block:]
        - s[..., block:, :-block]
        + s[..., :-block, :-block]
    )


def _q_from_sums(n, sx, sy, sxx, syy, sxy):
    """Mean Q over windows from window sums of x, y, x^2, y^2, xy (..., h, w) -> (...)."""
    num = 4.0 * (n * sxy - sx * sy) * sx * sy
    den1 = n * (sxx + syy) - sx * sx - sy * sy
    den2 = sx * sx + sy * sy
    # Flat windows follow the reference implementation of Wang and Bovik (img_qi.m); "zero"
    # allows for the rounding of the running sums.
    flat = np.abs(den1) <= 1e-10 * n * (sxx + syy)
    den1 = np.where(flat, 0.0, den1)
    den = den1 * den2
    q = np.ones_like(num)
    only_means = flat & (den2 != 0)
    q = np.where(only_means, 2.0 * sx * sy / np.where(only_means, den2, 1.0), q)
    regular = den != 0
    q = np.where(regular, num / np.where(regular, den, 1.0), q)
    return np.mean(q, axis=(-2, -1))


def _q_index(x, y, block):
    """Mean Wang-Bovik Q over sliding windows of images `x`, `y` (..., H, W) -> (...)."""
    block = min(block, x.shape[-2], x.shape[-1])
    x, y = np.broadcast_arrays(x, y)
    sums = [_box_sums(v, block) for v in (x, y, x * x, y * y, x * y)]
    return _q_from_sums(float(block * block), *sums)


def _pairwise_q(bands, block):
    """Mean Q of every band pair (i < j) of `bands` (C, H, W), in the order of np.triu_indices."""
    block = min(block, bands.shape[-2], bands.shape[-1])
    n = float(block * block)
    s1 = _box_sums(bands, block)
    s2 = _box_sums(bands * bands, block)
    out = []
    for i in range(bands.shape[0] - 1):
        sxy = _box_sums(bands[i] * bands[i + 1 :], block)
        out.append(_q_from_sums(n, s1[i], s1[i + 1 :], s2[i], s2[i + 1 :], sxy))
    return np.concatenate(out)


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
    return np.mean(_q_index(np.moveaxis(ref, -1, 0), np.moveaxis(est, -1, 0), block_size))


rmse = _batched(_rmse, "rmse")
psnr = _batched(_psnr, "psnr")
sam = _batched(_sam, "sam")
ergas = _batched(_ergas, "ergas")
ssim = _batched(_ssim, "ssim")
cc = _batched(_cc, "cc")
uiqi = _batched(_uiqi, "uiqi")


# --------------------------------------------------------------------------- no reference


def _image(x, name):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(
            f"`{name}` must be a channels-last (H, W, C) image. Received shape {x.shape}"
        )
    return x


def d_lambda(fused, lr_hsi, p=1, block_size=32, scale=None):
    """Spectral distortion index D_lambda of QNR (Alparone et al., 2008; Vivone et al., 2015).

    `D_lambda = (1 / (C (C - 1)) * sum_{i != j} |Q(F_i, F_j) - Q(L_i, L_j)|^p)^(1/p)`: how much
    the pairwise band similarities of the fused image `F` differ from those of the LR-HSI `L`.
    `Q` is `uiqi` on sliding windows of `block_size` pixels on `F` and `block_size // scale`
    on `L` (the same ground footprint; the Vivone et al. toolbox uses the same rule).
    The cost grows as C^2 (every band pair): about a minute for 200 bands of 144 x 144 on
    two CPU cores.

    Args:
        fused: fused image `(H, W, C)`.
        lr_hsi: input low-resolution HSI `(h, w, C)` with `H = scale * h`.
        p: exponent. Defaults to 1.
        block_size: Q window on the fused image. Defaults to 32.
        scale: resolution ratio. Defaults to `H // h`.

    Returns:
        float in [0, 1]; 0 is best.
    """
    f, lo = _image(fused, "fused"), _image(lr_hsi, "lr_hsi")
    if f.shape[-1] != lo.shape[-1]:
        raise ValueError(
            f"`fused` and `lr_hsi` need the same bands. Received: {f.shape} and {lo.shape}"
        )
    scale = scale or f.shape[0] // lo.shape[0]
    lr_block = max(block_size // scale, 2)
    c = f.shape[-1]
    if c < 2:
        raise ValueError(f"`d_lambda` needs at least 2 bands. Received: {c}")
    # each unordered pair counts twice in the sum over i != j
    qf = _pairwise_q(np.moveaxis(f, -1, 0), block_size)
    ql = _pairwise_q(np.moveaxis(lo, -1, 0), lr_block)
    total = 2.0 * np.sum(np.abs(qf - ql) ** p)
    return float((total / (c * (c - 1))) ** (1.0 / p))


def d_s(fused, lr_hsi, hr_msi, q=1, block_size=32, scale=None, lr_msi=None):
    """Spatial distortion index D_s of QNR, extended to a multiband HR image.

    `D_s = (1 / (C c) * sum_i sum_j |Q(F_i, M_j) - Q(L_i, m_j)|^q)^(1/q)` with `M` the HR-MSI
    (c bands) and `m` the HR-MSI brought to the LR grid. With a single-band `M` (a
    panchromatic image) this is exactly the D_s of Alparone et al. (2008) / Vivone et al.
    (2015). `m` defaults to `degrade(hr_msi, scale)` of this package (Gaussian PSF with FWHM =
    scale pixels, then decimation), the sensor model of the reduced-resolution protocol;
    pass `lr_msi` to use another one (the Vivone toolbox uses `imresize(P, 1/ratio)`).

    Args:
        fused: fused image `(H, W, C)`.
        lr_hsi: input low-resolution HSI `(h, w, C)`.
        hr_msi: input high-resolution MSI `(H, W, c)`.
        q: exponent. Defaults to 1.
        block_size: Q window at high resolution (`block_size // scale` at low resolution).
            Defaults to 32.
        scale: resolution ratio. Defaults to `H // h`.
        lr_msi: optional `(h, w, c)` low-resolution MSI.

    Returns:
        float in [0, 1]; 0 is best.
    """
    f, lo, m = _image(fused, "fused"), _image(lr_hsi, "lr_hsi"), _image(hr_msi, "hr_msi")
    if m.shape[:2] != f.shape[:2]:
        raise ValueError(
            f"`hr_msi` and `fused` need the same spatial size. Received: {m.shape}, {f.shape}"
        )
    scale = scale or f.shape[0] // lo.shape[0]
    if lr_msi is None:
        from keras_hsifusion.data.degrade import spatial_degrade

        lr_msi = spatial_degrade(m, scale)
    ml = _image(lr_msi, "lr_msi")
    if ml.shape[:2] != lo.shape[:2]:
        raise ValueError(
            f"`lr_msi` must be on the grid of `lr_hsi` {lo.shape[:2]}. Received: {ml.shape}"
        )
    lr_block = max(block_size // scale, 2)
    fb, lb = np.moveaxis(f, -1, 0), np.moveaxis(lo, -1, 0)
    total = 0.0
    for j in range(m.shape[-1]):
        qh = _q_index(fb, m[..., j], block_size)
        ql = _q_index(lb, ml[..., j], lr_block)
        total += np.sum(np.abs(qh - ql) ** q)
    return float((total / (f.shape[-1] * m.shape[-1])) ** (1.0 / q))


def qnr(fused, lr_hsi, hr_msi, alpha=1.0, beta=1.0, p=1, q=1, block_size=32, scale=None):
    """Quality with No Reference: `QNR = (1 - D_lambda)^alpha * (1 - D_s)^beta`.

    Args:
        fused: fused image `(H, W, C)`.
        lr_hsi: input low-resolution HSI `(h, w, C)`.
        hr_msi: input high-resolution MSI `(H, W, c)`.
        alpha: exponent of the spectral term. Defaults to 1.
        beta: exponent of the spatial term. Defaults to 1.
        p: exponent inside `d_lambda`. Defaults to 1.
        q: exponent inside `d_s`. Defaults to 1.
        block_size: Q window at high resolution. Defaults to 32.
        scale: resolution ratio. Defaults to `H // h`.

    Returns:
        float in [0, 1]; 1 is best.
    """
    dl = d_lambda(fused, lr_hsi, p=p, block_size=block_size, scale=scale)
    ds = d_s(fused, lr_hsi, hr_msi, q=q, block_size=block_size, scale=scale)
    return float((1.0 - dl) ** alpha * (1.0 - ds) ** beta)


# --------------------------------------------------------------------------- keras metrics


class _MeanOverImages(keras.metrics.Metric):
    """Mean over every image seen of a per-image value computed by `_per_image`.

    Args:
        name: defaults to the class name in lower case (`"psnr"`, `"rmse"`, `"sam"`, ...).
        dtype: dtype of the metric's state.
    """

    def __init__(self, name=None, dtype=None):
        super().__init__(name=name or type(self).__name__.lower(), dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.cast(y_pred, "float32")
        if len(y_true.shape) == 3:
            y_true, y_pred = y_true[None], y_pred[None]
        values = self._per_image(y_true, y_pred)
        if sample_weight is None:
            weights = ops.ones_like(values)
        else:
            weights = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
            weights = ops.broadcast_to(weights, ops.shape(values))
        self.total.assign_add(ops.cast(ops.sum(values * weights), self.dtype))
        self.count.assign_add(ops.cast(ops.sum(weights), self.dtype))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


@keras.saving.register_keras_serializable(package="keras_hsifusion")
class PSNR(_MeanOverImages):
    """Peak signal-to-noise ratio in dB, mean over images (peak = max of each reference).

    Per image as `keras_hsifusion.metrics.psnr`; the MSE is floored at 1e-12 so that a
    perfect image gives a large finite value instead of `inf`. Inside a compiled step the
    inputs are not checked: a reference of peak 0 gives `-inf` where `psnr` raises. Args:
    `name` (default `"psnr"`) and `dtype`, as every metric class here.

    Examples:
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Dense(3)])
    >>> model.compile(optimizer="adam", loss="mae", metrics=[PSNR(), SAM(), ERGAS(scale=4)])
    >>> psnr = PSNR()
    >>> psnr.update_state(np.full((1, 4, 4, 3), 0.5), np.full((1, 4, 4, 3), 0.55))
    >>> round(float(psnr.result()), 2)  # 10 log10(0.5^2 / 0.05^2)
    20.0
    """

    def _per_image(self, y_true, y_pred):
        mse = ops.mean(ops.square(y_true - y_pred), axis=(1, 2, 3))
        peak = ops.max(y_true, axis=(1, 2, 3))
        return 10.0 * ops.log10(ops.square(peak) / ops.maximum(mse, 1e-12))


@keras.saving.register_keras_serializable(package="keras_hsifusion")
class RMSE(_MeanOverImages):
    """Root mean squared error, per image (as `keras_hsifusion.metrics.rmse`), mean over images.

    Examples:
    >>> rmse, ref = RMSE(), np.zeros((1, 4, 4, 3))
    >>> rmse.update_state(ref, ref + 0.5)
    >>> rmse.update_state(ref, ref + 1.5)
    >>> float(rmse.result())  # the mean of the per-image values 0.5 and 1.5
    1.0
    """

    def _per_image(self, y_true, y_pred):
        return ops.sqrt(ops.mean(ops.square(y_true - y_pred), axis=(1, 2, 3)))


@keras.saving.register_keras_serializable(package="keras_hsifusion")
class SAM(_MeanOverImages):
    """Spectral angle in degrees, per image (as `keras_hsifusion.metrics.sam`), mean over images.

    Pixels where either spectrum is all-zero are skipped; the cosine is clipped to [-1, 1].

    Examples:
    >>> sam = SAM()
    >>> sam.update_state(np.tile([1.0, 0.0], (1, 2, 2, 1)), np.tile([1.0, 1.0], (1, 2, 2, 1)))
    >>> round(float(sam.result()), 3)  # (1, 0) against (1, 1) in every pixel
    45.0
    """

    def _per_image(self, y_true, y_pred):
        dot = ops.sum(y_true * y_pred, axis=-1)
        nt = ops.sqrt(ops.sum(ops.square(y_true), axis=-1))
        np_ = ops.sqrt(ops.sum(ops.square(y_pred), axis=-1))
        valid = ops.cast(ops.logical_and(nt > 0, np_ > 0), "float32")
        cos = ops.clip(ops.divide_no_nan(dot, nt * np_), -1.0, 1.0)
        angle = ops.arccos(cos) * (180.0 / np.pi) * valid
        return ops.divide_no_nan(ops.sum(angle, axis=(1, 2)), ops.sum(valid, axis=(1, 2)))


@keras.saving.register_keras_serializable(package="keras_hsifusion")
class ERGAS(_MeanOverImages):
    """ERGAS, per image (as `keras_hsifusion.metrics.ergas`), mean over images.

    Inside a compiled step the inputs are not checked: a reference band of mean 0 gives
    `inf` (or NaN for an exact estimate) where `ergas` raises.

    Args:
        scale: resolution ratio between HR and LR images. Defaults to 4.
        name: defaults to `"ergas"`.
        dtype: dtype of the metric's state.

    Examples:
    >>> ergas, ref = ERGAS(scale=4), np.ones((1, 8, 8, 3))
    >>> ergas.update_state(ref, 1.1 * ref)  # RMSE 0.1 of every band, band means 1
    >>> round(float(ergas.result()), 3)  # 100 / 4 * 0.1
    2.5
    """

    def __init__(self, scale=4, name="ergas", dtype=None):
        check_number("scale", scale)
        super().__init__(name=name, dtype=dtype)
        self.scale = scale

    def _per_image(self, y_true, y_pred):
        rmse_k = ops.sqrt(ops.mean(ops.square(y_true - y_pred), axis=(1, 2)))
        mu_k = ops.mean(y_true, axis=(1, 2))
        return (100.0 / self.scale) * ops.sqrt(ops.mean(ops.square(rmse_k / mu_k), axis=-1))

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}
