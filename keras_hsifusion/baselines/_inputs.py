"""The input checks every baseline shares: one signature, clear errors."""

import numbers

import numpy as np

__all__ = ["check_inputs", "per_image", "unit_divisor"]


def _as_array(name, value):
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"`{name}` must be a numeric array. Received: {name}={value!r}") from e
    if array.dtype.kind not in "iuf":
        raise TypeError(
            f"`{name}` must be a real numeric array (float or int). Received: {name} of dtype "
            f"{array.dtype}"
        )
    return array


def _check_finite(name, array):
    bad = array.size - int(np.count_nonzero(np.isfinite(array)))
    if bad:
        raise ValueError(
            f"`{name}` must be finite. Received: {name} of shape {array.shape} with {bad} "
            "NaN/Inf value(s)"
        )


def check_inputs(lr_hsi, hr_msi, scale, srf=None, psf_fwhm=None, dtype=np.float32):
    """Checks the arguments of a baseline and brings the images to float batches.

    The batches are C-contiguous copies whatever the memory layout of the input (a
    band-sequential `np.transpose` view, a strided slice): the float sums of a method then run
    in one order, so every layout gives the same numbers.

    Args:
        lr_hsi: `(h, w, C)` or `(B, h, w, C)` array.
        hr_msi: `(H, W, c)` or `(B, H, W, c)` array (the rank of `lr_hsi`), with
            `H = scale * h` and `W = scale * w`.
        scale: positive integer resolution ratio.
        srf: None or a `(C, c)` spectral response (`keras_hsifusion.data.spectral_response`).
        psf_fwhm: None or the positive FWHM of the Gaussian PSF in HR pixels.
        dtype: the float type of the returned images. Defaults to float32; float64 keeps
            float64 input unrounded (for a method that normalises its input first).

    Returns:
        `(lr_hsi (B, h, w, C), hr_msi (B, H, W, c), scale, srf, psf_fwhm, batched)`:
        C-contiguous `dtype` arrays, an int, a float64 array or None, a float or None, and
        whether the input was batched.

    Raises:
        TypeError: for non-numeric arrays, a non-integer `scale` or a non-numeric `psf_fwhm`.
        ValueError: for wrong ranks or shapes, sizes `scale` does not divide, NaN/Inf values,
            `scale < 1` or `psf_fwhm <= 0`; the message names the argument and its value.
    """
    if isinstance(scale, bool) or not isinstance(scale, numbers.Integral):
        raise TypeError(f"`scale` must be an integer. Received: scale={scale!r}")
    scale = int(scale)
    if scale < 1:
        raise ValueError(f"`scale` must be >= 1. Received: scale={scale}")
    if psf_fwhm is not None:
        if isinstance(psf_fwhm, bool) or not isinstance(psf_fwhm, numbers.Real):
            raise TypeError(f"`psf_fwhm` must be a number or None. Received: psf_fwhm={psf_fwhm!r}")
        if not (np.isfinite(psf_fwhm) and psf_fwhm > 0):
            raise ValueError(f"`psf_fwhm` must be positive. Received: psf_fwhm={psf_fwhm!r}")
        psf_fwhm = float(psf_fwhm)
    lr, hr = _as_array("lr_hsi", lr_hsi), _as_array("hr_msi", hr_msi)
    if lr.ndim not in (3, 4):
        raise ValueError(
            f"`lr_hsi` must be (h, w, C) or (B, h, w, C). Received: lr_hsi of shape {lr.shape}"
        )
    if hr.ndim != lr.ndim:
        raise ValueError(
            f"`hr_msi` must have the rank of `lr_hsi` ({lr.ndim}). Received: hr_msi of shape "
            f"{hr.shape}, lr_hsi of shape {lr.shape}"
        )
    batched = lr.ndim == 4
    if not batched:
        lr, hr = lr[None], hr[None]
    if lr.shape[0] != hr.shape[0]:
        raise ValueError(
            f"`lr_hsi` and `hr_msi` must hold the same number of images. Received: lr_hsi of "
            f"shape {lr.shape}, hr_msi of shape {hr.shape}"
        )
    if 0 in lr.shape or 0 in hr.shape:
        raise ValueError(
            f"Empty image. Received: lr_hsi of shape {lr.shape}, hr_msi of shape {hr.shape}"
        )
    (h, w), (big_h, big_w) = lr.shape[1:3], hr.shape[1:3]
    if big_h % scale or big_w % scale:
        raise ValueError(
            f"`scale` must divide the HR-MSI size {(big_h, big_w)}. Received: scale={scale}"
        )
    if (big_h, big_w) != (scale * h, scale * w):
        raise ValueError(
            f"`hr_msi` must be `scale` ({scale}) times the size of `lr_hsi` {(h, w)}, i.e. "
            f"{(scale * h, scale * w)}. Received: hr_msi of size {(big_h, big_w)}"
        )
    _check_finite("lr_hsi", lr)
    _check_finite("hr_msi", hr)
    if srf is not None:
        srf = np.asarray(_as_array("srf", srf), dtype=np.float64)
        if srf.shape != (lr.shape[-1], hr.shape[-1]):
            raise ValueError(
                f"`srf` must be (C, c) = {(lr.shape[-1], hr.shape[-1])}. Received: srf of "
                f"shape {srf.shape}"
            )
        _check_finite("srf", srf)
    lr = np.ascontiguousarray(lr, dtype=dtype)
    hr = np.ascontiguousarray(hr, dtype=dtype)
    return lr, hr, scale, srf, psf_fwhm, batched


def unit_divisor(lr):
    """The positive constant a method divides both images of a pair by to be unit-free.

    `max|lr|` of one `(h, w, C)` LR-HSI: the maximum for non-negative data, as the presets'
    normalisation (`max(lr_hsi)`) and HySure's; `max(k * lr) = k * max(lr)` for any `k > 0`,
    so a method computed on `lr / d`, `hr / d` and multiplied back by `d` gives `k` times
    its result for inputs `k` times larger. 1 for an all-zero LR-HSI.
    """
    top = float(np.max(np.abs(lr)))
    return top if top > 0 else 1.0


def per_image(fn, lr, hr, batched, *args):
    """`fn(lr_image, hr_image, *args)` in float64 on every image of the checked batches
    `lr`, `hr` (from `check_inputs`); float32 out, batched like the input."""
    out = np.stack(
        [fn(a.astype(np.float64), b.astype(np.float64), *args) for a, b in zip(lr, hr)]
    ).astype(np.float32)
    return out if batched else out[0]
