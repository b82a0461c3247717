"""FUSE: fast fusion of multi-band images by solving a Sylvester equation (Wei et al.)."""

import numpy as np
from scipy import interpolate, linalg

from keras_hsifusion.baselines._estimation import fspecial_gaussian, prepare_srf
from keras_hsifusion.baselines._inputs import check_inputs, unit_divisor
from keras_hsifusion.baselines._resampling import matlab_round

__all__ = ["fuse_wei"]

# FUSE_wrapper's constants: data scale (the prior precision is absolute: the reference
# multiplies reflectance, at most about 1, by 10^4; here the data are scaled so that
# max|lr_hsi| is 10^4, see docs/differences.md) and sigma's factor
# (1 / (2 * 2.7725887)) ** 0.5 = 1 / 2.35482, i.e. a Gaussian PSF of FWHM `scale`.
_SCALING = 10000.0
_FWHM_TO_SIGMA = (1.0 / (2.0 * 2.7725887)) ** 0.5


def _block_sum(x, n_dr, n_dc):
    # PPlus_s: the sum of the (H/n_dr) x (W/n_dc) tiles of size n_dr x n_dc.
    big_h, big_w = x.shape[:2]
    return x.reshape(big_h // n_dr, n_dr, big_w // n_dc, n_dc, *x.shape[2:]).sum(axis=(0, 2))


def _spline_upsample(x, ratio):
    # ima_interp_spline: not-a-knot cubic splines through the symmetric-padded LR grid,
    # sampled at LR coordinates j / ratio (HR pixel 0 on LR pixel 0).
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="symmetric")
    for axis in (0, 1):
        n = x.shape[axis]
        spline = interpolate.make_interp_spline(np.arange(n + 2.0), padded, k=3, axis=axis)
        padded = spline(1.0 + np.arange(n * ratio) / ratio)
    return padded


def _kernel_to_matrix(kernel, big_h, big_w):
    # KernelToMatrix: the kernel centred on pixel (0, 0) of a circular H x W image.
    out = np.zeros((big_h, big_w))
    ky, kx = kernel.shape
    mid_r, mid_c = matlab_round((big_h + 1) / 2) - 1, matlab_round((big_w + 1) / 2) - 1
    ly, lx = (ky - 1) // 2, (kx - 1) // 2
    out[mid_r - ly : mid_r + ly + 1, mid_c - lx : mid_c + lx + 1] = kernel
    return np.roll(out, (-mid_r, -mid_c), axis=(0, 1))


def _bayesian_fusion(lr, msi, srf_rows, kernel, ratio, start, n_sub, prior_precision):
    n_dr, n_dc, bands = lr.shape
    big_h, big_w = msi.shape[:2]
    msi = np.roll(msi, (-(start - 1), -(start - 1)), axis=(0, 1))
    # Subspace: leading eigenvectors of the (uncentred) LR-HSI correlation, scaled by the
    # square roots of their eigenvalues (idHSsub with "PCA", scale = 1).
    pixels = lr.reshape(-1, bands)
    vals, vecs = np.linalg.eigh(pixels.T @ pixels / pixels.shape[0])
    order = np.argsort(vals)[::-1][:n_sub]
    scale = np.sqrt(vals[order])
    e_hyper = vecs[:, order] * scale  # (C, L)
    p_dec = vecs[:, order].T / scale[:, None]  # (L, C)
    e_multi = srf_rows @ e_hyper  # (c, L)
    fb = np.fft.fft2(_kernel_to_matrix(kernel, big_h, big_w))[..., None]
    fbc = np.conj(fb)
    b_sum = _block_sum(np.abs(fb) ** 2 / ratio**2, n_dr, n_dc)
    # Zero-filled LR-HSI on the HR grid (HR pixel 0 on LR pixel 0).
    lr_int = np.zeros((big_h, big_w, bands))
    lr_int[::ratio, ::ratio] = lr
    prior_mean = _spline_upsample(lr @ p_dec.T, ratio)
    # C1 = (E'E)^-1 (E'R'RE + prior) = Q Lambda Q^-1, with Q'(E'E)Q = I so that (E'E Q)^-1 = Q'.
    precision = prior_precision * np.eye(n_sub)
    lam, q = linalg.eigh(e_multi.T @ e_multi + precision, e_hyper.T @ e_hyper)
    inv_di = 1.0 / (b_sum + lam)
    cc = q.T @ precision
    c3 = (
        np.fft.fft2(lr_int @ (q.T @ e_hyper.T).T, axes=(0, 1)) * fbc
        + np.fft.fft2(msi @ (q.T @ e_multi.T).T, axes=(0, 1))
    ) / lam
    mu = np.fft.fft2(prior_mean, axes=(0, 1))
    c5 = c3 + (mu @ cc.T) / lam
    temp = _block_sum(c5 / ratio**2 * fb, n_dr, n_dc)
    solved = c5 - np.tile(temp * inv_di, (ratio, ratio, 1)) * fbc
    vx = np.real(np.fft.ifft2(solved, axes=(0, 1))) @ q.T
    out = vx @ e_hyper.T
    return np.roll(out, (start - 1, start - 1), axis=(0, 1))


def fuse_wei(
    lr_hsi,
    hr_msi,
    scale,
    srf=None,
    psf_fwhm=None,
    subspace_dim=None,
    prior_precision=1e-3,
):
    """FUSE, the fast Sylvester-equation fusion of Wei, Dobigeon and Tourneret.

    Q. Wei, N. Dobigeon and J.-Y. Tourneret, "Fast fusion of multi-band images based on
    solving a Sylvester equation", IEEE TIP 24(11), 2015, as called by the toolbox wrapper
    (`methods/FUSE/FUSE_wrapper.m` of magamig/hif-benchmarking): the HR-HSI lives in the
    `subspace_dim` leading principal directions of the LR-HSI (uncentred, scaled by the
    square roots of their eigenvalues); the maximum a posteriori estimate under a Gaussian
    prior centred on the spline-upsampled LR-HSI (precision `prior_precision` on data scaled
    so that max|lr_hsi| is 10^4; the reference scales reflectance by 10^4, see
    docs/differences.md) is the solution of a Sylvester equation, solved in closed form in
    the Fourier domain (circular boundaries). For an even `scale` the result is the mean of the
    solutions for the two central sampling phases. Deterministic.

    Sensor knowledge: `srf` is used when given; otherwise it is estimated as the reference
    does (`estR`: non-negative least squares of the Gaussian-degraded MSI on the LR-HSI bands
    plus an offset, which is then subtracted from the MSI). The PSF is a Gaussian of FWHM
    `psf_fwhm` (default `scale`, the reference's) on a `2 * round(scale / 2) + 1` support.

    Args:
        lr_hsi: `(h, w, C)` or `(B, h, w, C)` array, at least 2 x 2 pixels.
        hr_msi: `(scale*h, scale*w, c)` or `(B, scale*h, scale*w, c)` array.
        scale: integer resolution ratio.
        srf: `(C, c)` spectral response or None (estimated).
        psf_fwhm: PSF FWHM in HR pixels or None (`scale`).
        subspace_dim: dimension of the HSI subspace, at most `C`. Defaults to
            `min(15, C)` (the reference's 15).
        prior_precision: precision of the Gaussian prior. Defaults to 1e-3 (the reference's).

    Returns:
        float32 numpy array `(scale*h, scale*w, C)` (batched like the input).

    Examples:
    >>> rng = np.random.default_rng(0)
    >>> fuse_wei(rng.random((8, 8, 20)), rng.random((32, 32, 3)), scale=4).shape
    (32, 32, 20)
    """
    lr, hr, scale, srf, psf_fwhm, batched = check_inputs(
        lr_hsi, hr_msi, scale, srf, psf_fwhm, dtype=np.float64
    )
    if subspace_dim is None:
        subspace_dim = min(15, lr.shape[-1])
    if isinstance(subspace_dim, bool) or not isinstance(subspace_dim, (int, np.integer)):
        raise TypeError(f"`subspace_dim` must be an integer. Received: {subspace_dim!r}")
    if not 1 <= subspace_dim <= lr.shape[-1]:
        raise ValueError(
            f"`subspace_dim` must be between 1 and the band count {lr.shape[-1]}. Received: "
            f"subspace_dim={subspace_dim}"
        )
    if min(lr.shape[1:3]) < 2:
        raise ValueError(
            f"`lr_hsi` must be at least 2 pixels on each side for FUSE's spline prior. "
            f"Received: lr_hsi of size {lr.shape[1:3]}"
        )
    if not prior_precision > 0:
        raise ValueError(f"`prior_precision` must be positive. Received: {prior_precision!r}")
    fwhm = float(scale) if psf_fwhm is None else psf_fwhm
    size = 2 * matlab_round(scale / 2) + 1
    kernel = fspecial_gaussian(size, fwhm * _FWHM_TO_SIGMA)
    starts = [matlab_round(scale / 2)]
    if scale % 2 == 0:
        starts.append(starts[0] + 1)
    outs = []
    for lr_i, hr_i in zip(lr, hr):
        rows, msi, _ = prepare_srf(lr_i, hr_i, scale, srf, psf_fwhm)
        # The reference scales reflectance by 10^4; any units: max|lr_hsi| becomes 10^4.
        unit = unit_divisor(lr_i) / _SCALING
        lr_s, msi_s = lr_i / unit, msi / unit
        fused = [
            _bayesian_fusion(lr_s, msi_s, rows, kernel, scale, s, subspace_dim, prior_precision)
            for s in starts
        ]
        outs.append(sum(fused) / len(fused) * unit)
    out = np.stack(outs).astype(np.float32)
    return out if batched else out[0]
