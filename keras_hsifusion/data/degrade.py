"""Reduced-resolution (Wald) simulation: Gaussian PSF, decimation, spectral response, noise.

The spatial sensor model is separable and centred: LR pixel `i` sees the HR pixels around
its centre `scale * i + (scale - 1) / 2` (HR pixel units, the centre convention of
`align_corners=False` resizers), weighted by a Gaussian of the given FWHM sampled at the HR
pixel centres, truncated at `ceil(3 sigma)` pixels from the LR centre, normalised to sum 1,
with symmetric (half-sample) reflection at the image borders. For even scales the centre
falls between HR pixels, so the kernel has an even number of taps and a flip of the HR image
is exactly a flip of the simulated LR image.
"""

import math

import numpy as np

__all__ = ["add_noise", "degrade", "psf_matrix", "psf_radius", "spatial_degrade"]

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def _check_scale(scale):
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"`scale` must be a positive integer. Received: scale={scale}")
    return int(scale)


def _fwhm(scale, psf_fwhm):
    fwhm = float(scale) if psf_fwhm is None else float(psf_fwhm)
    if not fwhm > 0:
        raise ValueError(f"`psf_fwhm` must be positive (HR pixels). Received: psf_fwhm={psf_fwhm}")
    return fwhm


def psf_sigma(scale, psf_fwhm=None):
    """Standard deviation in HR pixels of the Gaussian PSF of FWHM `psf_fwhm` (default
    `scale` HR pixels)."""
    return _fwhm(scale, psf_fwhm) * FWHM_TO_SIGMA


def psf_radius(scale, psf_fwhm=None):
    """Truncation radius in HR pixels of the Gaussian PSF, `ceil(3 sigma)`.

    Args:
        scale: integer resolution ratio.
        psf_fwhm: FWHM of the PSF in HR pixels. Defaults to `scale`.

    Returns:
        int: HR pixels farther than this from an LR pixel centre get weight 0.
    """
    return int(math.ceil(3.0 * _fwhm(scale, psf_fwhm) * FWHM_TO_SIGMA))


def psf_matrix(size, scale, psf_fwhm=None):
    """The 1-D blur-and-decimate operator along one axis.

    Args:
        size: number of HR pixels along the axis; must be a multiple of `scale`.
        scale: integer resolution ratio.
        psf_fwhm: FWHM of the Gaussian PSF in HR pixels. Defaults to `scale`.

    Returns:
        float64 array `(size // scale, size)` whose rows sum to 1; the LR signal is
        `matrix @ hr_signal`.
    """
    scale = _check_scale(scale)
    if size % scale:
        raise ValueError(
            f"The HR size must be a multiple of `scale`. Received: size={size}, scale={scale}. "
            "Crop the image first (e.g. 145 -> 144 for scale 4)."
        )
    sigma = psf_sigma(scale, psf_fwhm)
    radius = psf_radius(scale, psf_fwhm)
    n_lr = size // scale
    mat = np.zeros((n_lr, size))
    for i in range(n_lr):
        centre = scale * i + (scale - 1) / 2.0
        taps = np.arange(math.ceil(centre - radius), math.floor(centre + radius) + 1)
        weights = np.exp(-0.5 * ((taps - centre) / sigma) ** 2)
        # half-sample symmetric reflection: -1 -> 0, size -> size - 1
        idx = np.abs(taps)
        idx = np.where(taps < 0, -taps - 1, idx)
        idx = np.where(idx >= size, 2 * size - 1 - idx, idx)
        if np.any(idx < 0) or np.any(idx >= size):
            raise ValueError(f"The PSF (radius {radius} px) is wider than the image (size={size}).")
        np.add.at(mat[i], idx, weights)
        mat[i] /= mat[i].sum()
    return mat


def spatial_degrade(image, scale, psf_fwhm=None):
    """Blurs with the Gaussian PSF and decimates by `scale` (no spectral change, no noise).

    Args:
        image: `(H, W, C)` or `(B, H, W, C)`, H and W multiples of `scale`.
        scale: integer resolution ratio.
        psf_fwhm: FWHM of the PSF in HR pixels. Defaults to `scale`.

    Returns:
        float32 array `(H // scale, W // scale, C)` (or batched).
    """
    x = np.asarray(image, dtype=np.float64)
    if x.ndim not in (3, 4):
        raise ValueError(
            f"`image` must be (H, W, C) or (B, H, W, C). Received shape {np.shape(image)}"
        )
    mh = psf_matrix(x.shape[-3], scale, psf_fwhm)
    mw = psf_matrix(x.shape[-2], scale, psf_fwhm)
    out = np.einsum("ih,...hwc->...iwc", mh, x)
    out = np.einsum("jw,...iwc->...ijc", mw, out)
    return out.astype(np.float32)


def add_noise(x, snr_db, rng, power=None):
    """White Gaussian noise at `snr_db` per image and band (used by `degrade` and the patches).

    The noise power of a band is `power / 10^(snr_db / 10)`, `power` defaulting to the band's
    mean square over the image axes (-3, -2); `snr_db` is a number or a `(C,)` array.
    """
    if power is None:
        power = np.mean(np.square(x, dtype=np.float64), axis=(-3, -2), keepdims=True)
    std = np.sqrt(power / (10.0 ** (np.asarray(snr_db, dtype=np.float64) / 10.0)))
    return (x + std * rng.standard_normal(x.shape)).astype(np.float32)


def degrade(hr_hsi, scale, srf, psf_fwhm=None, noise_snr_db=None, seed=None):
    """Simulates the (LR-HSI, HR-MSI) pair of an HR-HSI (reduced-resolution protocol).

    `lr_hsi = decimate(blur(hr_hsi))` with a Gaussian PSF (FWHM `psf_fwhm`, default `scale`
    HR pixels; see the module docstring for the exact kernel), and `hr_msi = hr_hsi @ srf`
    (each MSI band a weighted sum of HSI bands). Optional white Gaussian noise is added to each
    band of each output at the given SNR, `SNR = 10 log10(mean(x_k^2) / sigma_k^2)`.

    Args:
        hr_hsi: `(H, W, C)` image or `(B, H, W, C)` batch, H and W multiples of `scale`.
        scale: integer resolution ratio.
        srf: `(C, c)` spectral response matrix, e.g. from `spectral_response`.
        psf_fwhm: PSF FWHM in HR pixels. Defaults to `scale`.
        noise_snr_db: `None` (no noise), one SNR in dB for both outputs, or a pair
            `(snr_lr_hsi, snr_hr_msi)` where either may be `None` or a per-band array
            (`(C,)` for the LR-HSI, `(c,)` for the HR-MSI: band-dependent noise, see
            `keras_hsifusion.data.conditions`).
        seed: seed of the noise generator.

    Returns:
        `(lr_hsi, hr_msi)`, float32 arrays `(H/scale, W/scale, C)` and `(H, W, c)` (batched
        like the input).

    Examples:
    >>> cube, wl = indian_pines()
    >>> lr, msi = degrade(cube[:144, :144], 4, spectral_response("sentinel2a-10m", wl))
    >>> lr.shape, msi.shape
    ((36, 36, 200), (144, 144, 4))
    """
    x = np.asarray(hr_hsi, dtype=np.float32)
    if x.ndim not in (3, 4):
        raise ValueError(
            f"`hr_hsi` must be (H, W, C) or (B, H, W, C). Received shape {np.shape(hr_hsi)}"
        )
    srf = np.asarray(srf, dtype=np.float64)
    if srf.ndim != 2 or srf.shape[0] != x.shape[-1]:
        raise ValueError(
            f"`srf` must be (C, c) with C = {x.shape[-1]} HSI bands. Received shape {srf.shape}"
        )
    lr = spatial_degrade(x, scale, psf_fwhm)
    msi = np.tensordot(x.astype(np.float64), srf, axes=([-1], [0])).astype(np.float32)
    if noise_snr_db is not None:
        if isinstance(noise_snr_db, (tuple, list)):
            if len(noise_snr_db) != 2:
                raise ValueError(
                    "`noise_snr_db` must be a number or a pair (lr_hsi, hr_msi). "
                    f"Received: noise_snr_db={noise_snr_db}"
                )
            snr_lr, snr_msi = noise_snr_db
        else:
            snr_lr = snr_msi = noise_snr_db
        rng = np.random.default_rng(seed)
        checks = (("lr_hsi", snr_lr, x.shape[-1]), ("hr_msi", snr_msi, msi.shape[-1]))
        for name, snr, bands in checks:
            snr = None if snr is None else np.asarray(snr, dtype=np.float64)
            if snr is not None and (snr.ndim > 1 or snr.size not in (1, bands)):
                raise ValueError(
                    f"The {name} SNR must be a number or one per band ({bands}). "
                    f"Received shape {snr.shape}"
                )
            if snr is not None and not np.all(np.isfinite(snr)):
                raise ValueError(f"The {name} SNR must be finite. Received: {snr}")
        if snr_lr is not None:
            lr = add_noise(lr, np.asarray(snr_lr, dtype=np.float64), rng)
        if snr_msi is not None:
            msi = add_noise(msi, np.asarray(snr_msi, dtype=np.float64), rng)
    return lr, msi
