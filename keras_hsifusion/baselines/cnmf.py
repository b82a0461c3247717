"""CNMF: coupled non-negative matrix factorisation unmixing (Yokoya, Yairi and Iwasaki)."""

import numbers

import numpy as np

from keras_hsifusion.baselines._blas import matmul_wide, matmul_wide_t
from keras_hsifusion.baselines._estimation import (
    gaussian_down_sample,
    imresize_cubic_up,
    prepare_srf,
)
from keras_hsifusion.baselines._inputs import check_inputs, unit_divisor
from keras_hsifusion.baselines._unmixing import uniform_draws, vca_yokoya, vd

__all__ = ["cnmf"]

# The reference's thresholds of the relative cost decrease and its fixed W_multi bands rule.
_TH_H = 1e-8
_TH_M = 1e-8
_MIN_MS_BANDS = 3


def _cost(v, w, h, rows):
    return np.sum((v[:rows] - matmul_wide(w[:rows], h)) ** 2)


def _update_h(v, w, h):
    # Multiplicative update of the abundances (all rows, the sum-to-one row included).
    return h * matmul_wide(w.T, v) / matmul_wide(w.T @ w, h)


def _update_w(v, w, h, rows):
    w = w.copy()
    w[:rows] = w[:rows] * matmul_wide_t(v[:rows], h) / (w[:rows] @ matmul_wide_t(h, h))
    return w


def _unmix(v, w, h, rows, n_iter, threshold, first, update_first, update_other=True):
    """One NMF stage of CNMF_init / CNMF_ite: a first sub-loop of up to `first` updates of one
    factor alone (`update_first`: "h", "w", or "h_no_stop" for the reference's MS loop whose
    early stop never triggers), then up to `n_iter - 1` alternating updates (the factor of
    the first sub-loop last; the other one only if `update_other`), each loop stopping (and
    reverting its last step) once the relative cost decrease drops below `threshold`.
    Returns (w, h, iterations)."""
    iters = 0
    cost0 = 0.0
    for q in range(first):
        iters += 1
        w_old, h_old = w, h
        if update_first in ("h", "h_no_stop"):
            h = _update_h(v, w, h)
        else:
            w = _update_w(v, w, h, rows)
        cost = _cost(v, w, h, rows)
        if q > 0 and update_first != "h_no_stop" and (cost0 - cost) / cost < threshold:
            w, h = w_old, h_old
            break
        cost0 = cost
    for _ in range(1, n_iter):
        iters += 1
        w_old, h_old = w, h
        if update_first == "w":  # CNMF_ite: H first (if allowed), then W
            if update_other:
                h = _update_h(v, w, h)
            w = _update_w(v, w, h, rows)
        else:  # CNMF_init: W first (if allowed), then H
            if update_other:
                w = _update_w(v, w, h, rows)
            h = _update_h(v, w, h)
        cost = _cost(v, w, h, rows)
        if (cost0 - cost) / cost < threshold:
            w, h = w_old, h_old
            break
        cost0 = cost
    return w, h, iters


def cnmf(
    lr_hsi,
    hr_msi,
    scale,
    srf=None,
    psf_fwhm=None,
    n_endmembers=None,
    inner_iterations=200,
    seed=0,
    vca_draws=None,
    return_info=False,
    unit="max",
):
    """CNMF, coupled non-negative matrix factorisation unmixing (Yokoya et al.).

    N. Yokoya, T. Yairi and A. Iwasaki, "Coupled nonnegative matrix factorization unmixing
    for hyperspectral and multispectral data fusion", IEEE TGRS 50(2), 2012, as in the
    toolbox code (`methods/CNMF/CNMF_fusion.m` of magamig/hif-benchmarking, one outer
    iteration, no mask). Endmembers `W` are extracted from the LR-HSI by VCA and refined with
    multiplicative NMF updates (a heavily weighted sum-to-one row appended); abundances are
    initialised on the HR grid by bicubic upsampling and refined by NMF of the HR-MSI with
    the endmembers mapped by the SRF; the LR-HSI is then unmixed once more with abundances
    degraded from the HR ones. The result is `W @ H_multi`.

    Iterations (the reference's defaults): HS unmixing runs a first abundance-only loop of
    up to `3 * inner_iterations` updates then up to `inner_iterations` alternating ones; MS
    unmixing runs exactly `inner_iterations` abundance-only updates (the reference's early
    stop there can never trigger, kept as is) then up to `inner_iterations` alternating ones
    (the MS endmembers are updated only for more than 3 MSI bands); the final HS unmixing
    runs up to `2 * inner_iterations` updates. Each loop stops once the relative cost
    decrease falls below 1e-8 and then reverts its last step.

    Sensor knowledge: `srf` is used when given; otherwise it is estimated as the reference
    does (`estR`: non-negative least squares of the Gaussian-degraded MSI on the LR-HSI bands
    plus an offset, subtracted from the MSI). The PSF that links the two grids is a Gaussian
    of FWHM `psf_fwhm` (default `scale`, the reference's) applied block-wise
    (`gaussian_down_sample`).

    Units: every step is unit-free except the reference's weight of the sum-to-one row,
    `2 sqrt(mean(MSI) / 0.7455) / c^3`, which grows as the square root of the data and is
    defined for reflectance. The data are divided by `unit` (the value of reflectance 1 in
    the input's units) for the whole computation and the result multiplied back, so
    `cnmf(k * lr, k * msi, unit=k * u) == k * cnmf(lr, msi, unit=u)`. The default `"max"`
    divides by max|lr_hsi|, which makes the result equivariant to any scaling of the input
    (docs/differences.md: 8.5e-5 of the output's maximum from the reference on its golden
    fixture, 0.0005 dB); `unit=1.0` is the reference exactly (its golden output is matched).

    Randomness: VCA draws one uniform vector per endmember; they come from
    `numpy.random.default_rng(seed)` or, to reproduce a given run, from `vca_draws` (at
    least `n_endmembers ** 2` uniform numbers, consumed `n_endmembers` at a time, as the
    reference's `rand(p, 1)`).

    Args:
        lr_hsi: `(h, w, C)` or `(B, h, w, C)` array (negative values are clipped to 0).
        hr_msi: `(scale*h, scale*w, c)` or `(B, scale*h, scale*w, c)` array.
        scale: integer resolution ratio.
        srf: `(C, c)` spectral response or None (estimated).
        psf_fwhm: PSF FWHM in HR pixels or None (`scale`).
        n_endmembers: number of endmembers. Defaults to the reference's
            `max(min(30, C), VD)` with VD the virtual dimensionality at false-alarm rate 0.05.
        inner_iterations: the reference's `I1`. Defaults to 200 (75 for a single MSI band).
        seed: seed of the VCA draws when `vca_draws` is None. Defaults to 0.
        vca_draws: None or the uniform draws VCA consumes (see above).
        return_info: also return a dict with the iteration counts, endmember count and SRF.
        unit: the input value of reflectance 1 (a positive number), or `"max"` for
            max|lr_hsi| of each image. Defaults to 1.0 (the reference's: reflectance input).

    Returns:
        float32 numpy array `(scale*h, scale*w, C)` (batched like the input); with
        `return_info`, a tuple `(fused, info)` (info a list for batched input).

    Examples:
    >>> rng = np.random.default_rng(0)
    >>> cnmf(rng.random((8, 8, 12)), rng.random((32, 32, 4)), scale=4).shape
    (32, 32, 12)
    """
    lr, hr, scale, srf, psf_fwhm, batched = check_inputs(
        lr_hsi, hr_msi, scale, srf, psf_fwhm, dtype=np.float64
    )
    if not (
        unit == "max"
        or (isinstance(unit, numbers.Real) and not isinstance(unit, bool) and 0 < unit < np.inf)
    ):
        raise ValueError(f'`unit` must be a positive number or "max". Received: unit={unit!r}')
    if n_endmembers is not None and (
        isinstance(n_endmembers, bool)
        or not isinstance(n_endmembers, numbers.Integral)
        or not 2 <= n_endmembers <= lr.shape[-1]
    ):
        raise ValueError(
            f"`n_endmembers` must be None or an integer between 2 and the band count "
            f"{lr.shape[-1]}. Received: n_endmembers={n_endmembers!r}"
        )
    if (
        isinstance(inner_iterations, bool)
        or not isinstance(inner_iterations, numbers.Integral)
        or inner_iterations < 1
    ):
        raise ValueError(
            f"`inner_iterations` must be a positive integer. Received: "
            f"inner_iterations={inner_iterations!r}"
        )
    outs, infos = [], []
    for lr_i, hr_i in zip(lr, hr):
        u = unit_divisor(lr_i) if unit == "max" else float(unit)
        lr_i, hr_i = lr_i / u, hr_i / u
        out, info = _cnmf_one(
            lr_i, hr_i, scale, srf, psf_fwhm, n_endmembers, inner_iterations, seed, vca_draws
        )
        outs.append(out * u)
        infos.append(info)
    out = np.stack(outs).astype(np.float32)
    out = out if batched else out[0]
    if return_info:
        return out, (infos if batched else infos[0])
    return out


def _cnmf_one(lr, msi, scale, srf, psf_fwhm, n_endmembers, n_iter, seed, vca_draws):
    h, w, bands = lr.shape
    big_h, big_w, ms_bands = msi.shape
    srf_rows, msi, _ = prepare_srf(lr, msi, scale, srf, psf_fwhm)
    if ms_bands == 1:
        n_iter = min(n_iter, 75)
    delta = 2 * (np.mean(msi) / 0.7455) ** 0.5 / ms_bands**3  # weight of the sum-to-one row
    hyper = np.maximum(lr, 0.0).reshape(-1, bands).T  # (C, N_h)
    multi = np.maximum(msi, 0.0).reshape(-1, ms_bands).T  # (c, N_m)
    m = n_endmembers
    if m is None:
        m = max(min(30, bands), vd(hyper, 5e-2))
    draws = uniform_draws(vca_draws, seed, m * m)

    # HS unmixing (CNMF_init).
    w_hyper = np.vstack([vca_yokoya(hyper, m, draws), np.full((1, m), delta)])
    hyper = np.vstack([hyper, np.full((1, hyper.shape[1]), delta)])
    h_hyper = np.full((m, hyper.shape[1]), 1.0 / m)
    w_hyper, h_hyper, it_h = _unmix(hyper, w_hyper, h_hyper, bands, n_iter, _TH_H, 3 * n_iter, "h")
    # MS unmixing with W mapped by the SRF; H initialised by bicubic upsampling.
    w_multi = np.vstack([srf_rows @ w_hyper[:bands], np.full((1, m), delta)])
    multi = np.vstack([multi, np.full((1, multi.shape[1]), delta)])
    h_img = h_hyper.T.reshape(h, w, m)
    h_multi = np.maximum(imresize_cubic_up(h_img, scale), 0.0).reshape(-1, m).T
    update_other = ms_bands > _MIN_MS_BANDS
    w_multi, h_multi, it_m = _unmix(
        multi, w_multi, h_multi, ms_bands, n_iter, _TH_M, n_iter, "h_no_stop", update_other
    )
    # HS unmixing again, abundances degraded from the HR ones (CNMF_ite, one outer loop).
    h_img = h_multi.T.reshape(big_h, big_w, m)
    h_hyper = gaussian_down_sample(h_img, scale, psf_fwhm).reshape(-1, m).T
    w_hyper, h_hyper, it_h2 = _unmix(
        hyper, w_hyper, h_hyper, bands, n_iter, _TH_H, n_iter, "w", update_other
    )
    out = matmul_wide(w_hyper[:bands], h_multi).T.reshape(big_h, big_w, bands)
    info = {
        "n_endmembers": m,
        "iterations": {"hs_unmixing": it_h, "ms_unmixing": it_m, "hs_unmixing_2": it_h2},
        "srf": srf_rows.T,
    }
    return out, info
