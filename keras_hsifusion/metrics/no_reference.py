"""No-reference (full-resolution) quality indices: a fused image against its own inputs.

No-reference (full-resolution) indices of Alparone et al. (2008) as written by Vivone et al.
(2015) are `d_lambda`, `d_s` and `qnr`; see their docstrings.

All take channels-last `(H, W, C)` images (no batch axis), compute in numpy float64 and
return a Python `float`.
"""

import numpy as np

from keras_hsifusion.metrics._quality_index import pairwise_q, q_index

__all__ = ["d_lambda", "d_s", "qnr"]


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
    qf = pairwise_q(np.moveaxis(f, -1, 0), block_size)
    ql = pairwise_q(np.moveaxis(lo, -1, 0), lr_block)
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
        qh = q_index(fb, m[..., j], block_size)
        ql = q_index(lb, ml[..., j], lr_block)
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
