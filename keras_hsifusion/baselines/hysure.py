"""HySure: convex subspace-based fusion with vector total variation (Simoes et al.)."""

import numbers

import numpy as np
from scipy import fft as sp_fft
from scipy import linalg

from keras_hsifusion.baselines._blas import matmul_wide
from keras_hsifusion.baselines._estimation import prepare_srf
from keras_hsifusion.baselines._inputs import check_inputs
from keras_hsifusion.baselines._resampling import matlab_round
from keras_hsifusion.baselines._unmixing import affine_projection, uniform_draws, vca_hysure

__all__ = ["hysure"]

# HySure_wrapper / sen_resp_est / data_fusion constants.
_LAMBDA_R = 1e1
_LAMBDA_B = 1e1
_LAMBDA_PHI = 1e-3
_LAMBDA_M = 1.0
_MU = 0.05
_VCA_RUNS = 20
_STRONG_BLUR = 4  # half-size of the MSI box blur used to estimate the SRF


def _centred_box(n_rows, n_cols, half_r, half_c):
    # A (2 half_r + 1) x (2 half_c + 1) box around the reference's middle pixel, moved to
    # (0, 0) by ifftshift and normalised.
    out = np.zeros((n_rows, n_cols))
    mid_r, mid_c = matlab_round((n_rows + 1) / 2) - 1, matlab_round((n_cols + 1) / 2) - 1
    out[mid_r - half_r : mid_r + half_r + 1, mid_c - half_c : mid_c + half_c + 1] = 1.0
    out = np.fft.ifftshift(out)
    return out / out.sum()


def _conv(image, kernel_fft):
    # ConvC: circular convolution of every band of an (H, W, p) image.
    spectrum = np.fft.fft2(image, axes=(0, 1)) * kernel_fft[..., None]
    return np.real(np.fft.ifft2(spectrum, axes=(0, 1)))


def _diff_matrix(n):
    # toeplitz([1 0 ...], [1 -1 0 ...]): (n-1, n) first differences.
    d = np.zeros((n - 1, n))
    idx = np.arange(n - 1)
    d[idx, idx] = 1.0
    d[idx, idx + 1] = -1.0
    return d


def _sensor_responses(lr, msi, ratio, p, shift, hsize, blur_center):
    """sen_resp_est: the SVD subspace V and the relative spatial response B (H, W)."""
    big_h, big_w, ms_bands = msi.shape
    h, w, bands = lr.shape
    # I-III. SRF on strongly blurred data (regularised least squares); only used for B.
    msi_blur = _conv(msi, np.fft.fft2(_centred_box(big_h, big_w, _STRONG_BLUR, _STRONG_BLUR)))
    msi_blur_down = msi_blur[shift::ratio, shift::ratio].reshape(-1, ms_bands)
    half = matlab_round(_STRONG_BLUR / ratio)
    lr_blur = _conv(lr, np.fft.fft2(_centred_box(h, w, half, half))).reshape(-1, bands)
    d = _diff_matrix(bands)
    gram = lr_blur.T @ lr_blur + _LAMBDA_R * (d.T @ d)
    srf_rows = linalg.solve(gram, lr_blur.T @ msi_blur_down, assume_a="sym").T  # (c, C)
    # IV. Denoising subspace: the p leading left singular vectors of the LR-HSI.
    u, _, _ = np.linalg.svd(lr.reshape(-1, bands).T, full_matrices=False)
    v = u[:, :p]
    lr_den = lr @ (v @ v.T)
    # V. Blur: regularised least squares of R Y_h on hsize x hsize MSI patches centred on
    # the LR sampling positions whose whole patch lies inside the image.
    half = (hsize - 1) // 2
    ryh = lr_den @ srf_rows.T  # (h, w, c) on the sampling grid
    rows = np.arange(shift, big_h, ratio)
    cols = np.arange(shift, big_w, ratio)
    keep_r = (rows >= half) & (rows <= big_h - half - 2)
    keep_c = (cols >= half) & (cols <= big_w - half - 2)
    win = np.lib.stride_tricks.sliding_window_view(msi, (hsize, hsize), axis=(0, 1))
    patches = win[rows[keep_r] - half][:, cols[keep_c] - half]  # (nr, nc, c, hs, hs)
    patches = patches.reshape(-1, ms_bands, hsize * hsize)
    targets = ryh[np.ix_(keep_r, keep_c)].reshape(-1, ms_bands)
    ymymt = np.einsum("nbi,nbj->ij", patches, patches)
    rtyhymt = np.einsum("nb,nbi->i", targets, patches)
    dv = _diff_matrix(hsize)
    eye = np.eye(hsize)
    reg = np.kron(dv.T @ dv, eye) + np.kron(eye, dv.T @ dv)
    b_vec = linalg.solve(ymymt + _LAMBDA_B * reg, rtyhymt, assume_a="sym")
    blur = np.zeros((big_h, big_w))
    mid_r, mid_c = matlab_round((big_h + 1) / 2) - 1, matlab_round((big_w + 1) / 2) - 1
    r0, c0 = mid_r - half - blur_center, mid_c - half - blur_center
    blur[r0 : r0 + hsize, c0 : c0 + hsize] = b_vec.reshape(hsize, hsize)
    blur = np.fft.ifftshift(blur)
    return v, blur / blur.sum()


def _admm(lr, msi, ratio, srf_rows, blur, p, shift, draws, iterations):
    """data_fusion: VCA subspace `E` (C, p), then ADMM on the coefficients `X` (p, H, W)."""
    big_h, big_w, _ = msi.shape
    bands = lr.shape[-1]
    dh = np.zeros((big_h, big_w))
    dh[0, 0], dh[0, -1] = 1.0, -1.0
    dv = np.zeros((big_h, big_w))
    dv[0, 0], dv[-1, 0] = 1.0, -1.0
    fdh, fdv, fb = np.fft.fft2(dh), np.fft.fft2(dv), np.fft.fft2(blur)
    denom = np.abs(fb) ** 2 + np.abs(fdh) ** 2 + np.abs(fdv) ** 2 + 1.0
    ibd = [np.conj(fb) / denom, 1.0 / denom, np.conj(fdh) / denom, np.conj(fdv) / denom]
    # VCA on the LR pixels: of `_VCA_RUNS` runs, the endmembers of largest |det(E'E)|.
    lr_pixels = lr.reshape(-1, bands).T
    projection = affine_projection(lr_pixels, p)  # the same in every run
    best, best_vol = None, 0.0
    for run in range(_VCA_RUNS):
        e_run = vca_hysure(lr_pixels, p, draws[run * p * p : (run + 1) * p * p], projection)
        vol = abs(np.linalg.det(e_run.T @ e_run))
        if vol > best_vol:
            best, best_vol = e_run, vol
    if best is None:
        raise ValueError("HySure: VCA found no endmember set of non-zero volume")
    e = best  # (C, p)
    # ADMM on (p, H, W) coefficient images, run in the Fourier domain (real-input spectra of
    # shape (p, H, W // 2 + 1)): X, the MS-term split V2 and every dual variable are linear in
    # the data, so only the vector-TV splits V3, V4 need images, and the HS-term split V1
    # differs from its argument only on the LR sampling lattice (small transforms there).
    # The iterates are those of the reference's spatial-domain loop up to rounding.
    wr = big_w // 2 + 1
    ibd = [k[:, :wr] for k in ibd]
    fb, fdh, fdv = fb[:, :wr], fdh[:, :wr], fdv[:, :wr]
    h, w = lr.shape[:2]
    k1 = np.arange(big_h)[:, None]
    k2 = np.arange(wr)[None, :]
    lattice_phase = np.exp(-2j * np.pi * shift * (k1 / big_h + k2 / big_w))
    rows_idx, cols_idx = k1 % h, k2 % w

    # Serial transforms (scipy's default): threaded ones stall on a busy 2-core CPU.
    def rfft2(x):
        return sp_fft.rfft2(x)

    def irfft2(x):
        return sp_fft.irfft2(x, s=(big_h, big_w))

    def embed(small):  # spectrum of the zero-filled image holding `small` on the lattice
        return sp_fft.fft2(small)[:, rows_idx, cols_idx] * lattice_phase

    def sample(spec):  # the image of `spec` on the lattice
        half = sp_fft.ifft(spec, axis=-2)[:, shift::ratio]
        return sp_fft.irfft(half, n=big_w, axis=-1)[:, :, shift::ratio]

    def mix(matrix, spec):  # a real (p, p) matrix applied to the channels of a spectrum
        flat = spec.view(np.float64).reshape(p, -1)
        return matmul_wide(matrix, flat).view(np.complex128).reshape(spec.shape)

    ie_inv = np.linalg.inv(e.T @ e + _MU * np.eye(p))
    ire_inv = np.linalg.inv(_LAMBDA_M * e.T @ (srf_rows.T @ srf_rows) @ e + _MU * np.eye(p))
    yyh = (e.T @ np.moveaxis(lr, -1, 0).reshape(bands, -1)).reshape(p, h, w)
    ym = np.moveaxis(msi, -1, 0).reshape(msi.shape[-1], -1)
    ym_term = rfft2((ire_inv @ (_LAMBDA_M * (srf_rows @ e).T @ ym)).reshape(p, big_h, big_w))
    zeros = np.zeros((p, big_h, wr), dtype=np.complex128)
    s1, s2, s3, s4 = zeros, zeros, zeros, zeros  # spectra of V_k + D_k
    d1, d2, d3, d4 = zeros, zeros, zeros, zeros  # spectra of D_k
    d1_lattice = np.zeros((p, h, w))
    tau = _LAMBDA_PHI / _MU
    x_f = zeros
    for _ in range(iterations):
        x_f = s1 * ibd[0]
        x_f += s2 * ibd[1]
        x_f += s3 * ibd[2]
        x_f += s4 * ibd[3]
        # V1: the HS data term on the lattice, NU1 elsewhere.
        xb = x_f * fb
        nu1 = xb - d1
        nu1_lattice = sample(xb) - d1_lattice
        v1_lattice = matmul_wide(ie_inv, (yyh + _MU * nu1_lattice).reshape(p, -1)).reshape(p, h, w)
        d1_lattice = v1_lattice - nu1_lattice
        d1 = embed(d1_lattice)
        s1 = nu1
        s1 += 2.0 * d1
        # V2: the MS data term.
        nu2 = x_f - d2
        v2 = ym_term + _MU * mix(ire_inv, nu2)
        d2 = v2 - nu2
        s2 = v2 + d2
        # V3, V4: isotropic vector soft thresholding of the image gradients.
        nu3 = x_f * fdh - d3
        nu4 = x_f * fdv - d4
        g3, g4 = irfft2(nu3), irfft2(nu4)
        norm = np.sqrt(np.sum(g3**2, axis=0) + np.sum(g4**2, axis=0))
        shrink = np.maximum(0.0, norm - tau)
        shrink = shrink / (shrink + tau)
        v3, v4 = rfft2(shrink * g3), rfft2(shrink * g4)
        d3, d4 = v3 - nu3, v4 - nu4
        s3, s4 = v3 + d3, v4 + d4
    return e, irfft2(x_f)


def hysure(
    lr_hsi,
    hr_msi,
    scale,
    srf=None,
    psf_fwhm=None,
    subspace_dim=None,
    iterations=200,
    seed=0,
    vca_draws=None,
):
    """HySure, hyperspectral super-resolution by subspace-based regularisation (Simoes et al.).

    M. Simoes, J. Bioucas-Dias, L. B. Almeida and J. Chanussot, "A convex formulation for
    hyperspectral image superresolution via subspace-based regularization", IEEE TGRS
    53(6), 2015, as called by the toolbox wrapper (`methods/HySure/HySure_wrapper.m` of
    magamig/hif-benchmarking). Data are normalised by the LR-HSI maximum. The relative
    spatial response (a `(2 scale - 1)`-pixel square kernel) is estimated from the data by
    regularised least squares (`sen_resp_est`); the HR-HSI is `E X` with `E` the
    `subspace_dim` endmembers of the largest-volume of 20 VCA runs on the LR-HSI, and `X`
    minimises the HS and MS data terms plus a vector total variation (lambda_phi = 1e-3,
    lambda_m = 1), by `iterations` ADMM steps (mu = 0.05) with circular boundaries; the
    result is finally projected on the `subspace_dim` leading singular vectors of the
    LR-HSI. The LR-HSI samples sit on HR pixel `round(scale / 2) - 1` of each block.

    Sensor knowledge: `srf` is used when given; otherwise it is estimated as the wrapper
    does (`estR`: non-negative least squares of the Gaussian-degraded MSI on the LR-HSI bands
    plus an offset, subtracted from the MSI). The PSF is always estimated from the data (as
    in the reference); `psf_fwhm` only sets the Gaussian of the `estR` step (default
    `scale`).

    Randomness: the 20 VCA runs draw `subspace_dim` uniform vectors of that length each, from
    `numpy.random.default_rng(seed)` or, to reproduce a given run, from `vca_draws` (at least
    `20 * subspace_dim ** 2` uniform numbers, consumed as the reference's `rand(p, 1)`).

    Args:
        lr_hsi: `(h, w, C)` or `(B, h, w, C)` array, `C >= 2`.
        hr_msi: `(scale*h, scale*w, c)` or `(B, scale*h, scale*w, c)` array.
        scale: integer resolution ratio, at least 2.
        srf: `(C, c)` spectral response or None (estimated).
        psf_fwhm: FWHM in HR pixels of the `estR` Gaussian or None (`scale`).
        subspace_dim: subspace dimension (the reference's `p`), at most `C`. Defaults to
            `min(30, C)` (the reference's 30).
        iterations: ADMM iterations. Defaults to 200 (the reference's).
        seed: seed of the VCA draws when `vca_draws` is None. Defaults to 0.
        vca_draws: None or the uniform draws VCA consumes (see above).

    Returns:
        float32 numpy array `(scale*h, scale*w, C)` (batched like the input).

    Examples:
    >>> rng = np.random.default_rng(0)
    >>> hysure(rng.random((8, 8, 10)), rng.random((32, 32, 3)), scale=4,
    ...        subspace_dim=5, iterations=5).shape
    (32, 32, 10)
    """
    lr, hr, scale, srf, psf_fwhm, batched = check_inputs(
        lr_hsi, hr_msi, scale, srf, psf_fwhm, dtype=np.float64
    )
    if scale < 2:
        raise ValueError(f"`scale` must be >= 2 for HySure. Received: scale={scale}")
    if subspace_dim is None:
        subspace_dim = min(30, lr.shape[-1])
    for name, value, low in (("subspace_dim", subspace_dim, 2), ("iterations", iterations, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"`{name}` must be an integer >= {low}. Received: {name}={value!r}")
    if subspace_dim > lr.shape[-1]:
        raise ValueError(
            f"`subspace_dim` must not exceed the band count {lr.shape[-1]}. Received: "
            f"subspace_dim={subspace_dim}"
        )
    hsize = 2 * scale - 1
    if min(hr.shape[1:3]) < hsize + scale + 1:
        raise ValueError(
            f"`hr_msi` must be at least {hsize + scale + 1} pixels on each side for HySure's "
            f"blur estimation at scale {scale}. Received: hr_msi of size {hr.shape[1:3]}"
        )
    box = 2 * matlab_round(_STRONG_BLUR / scale) + 1
    if min(lr.shape[1:3]) < box:
        raise ValueError(
            f"`lr_hsi` must be at least {box} pixels on each side for HySure's SRF estimation "
            f"at scale {scale}. Received: lr_hsi of size {lr.shape[1:3]}"
        )
    shift = matlab_round(scale / 2) - 1
    blur_center = (scale + 1) % 2
    draws = uniform_draws(vca_draws, seed, _VCA_RUNS * subspace_dim**2)
    outs = []
    for lr_i, hr_i in zip(lr, hr):
        top = lr_i.max()
        top = top if top > 0 else 1.0
        yh, ym = lr_i / top, hr_i / top
        v, blur = _sensor_responses(yh, ym, scale, subspace_dim, shift, hsize, blur_center)
        srf_rows, ym, _ = prepare_srf(yh, ym, scale, srf, psf_fwhm)
        e, x = _admm(yh, ym, scale, srf_rows, blur, subspace_dim, shift, draws, iterations)
        # Z = V V' E X: the fused image, denoised again on the SVD subspace.
        z = matmul_wide(v @ (v.T @ e), x.reshape(subspace_dim, -1))
        outs.append(z.T.reshape(hr_i.shape[:2] + (lr_i.shape[-1],)) * top)
    out = np.stack(outs).astype(np.float32)
    return out if batched else out[0]
