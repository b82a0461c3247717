"""Spectral response functions of real sensors, resampled onto a hyperspectral band set.

The published responses are shipped as a small table (`srf_tables.npz`, derived once by
`tools/derive_tables.py`; sources and licences in `README.md` beside it):

| sensor | bands | source |
|---|---|---|
| `sentinel2a-10m` | B2, B3, B4, B8 (the 10 m bands) | ESA S2-SRF v3.0 via `pyrsr` 0.8.0 |
| `sentinel2a` | B1-B8, B8A, B11, B12 (`pyrsr`'s after-AC set, no B9/B10) | same |
| `landsat8-oli` | B1-B7 (no pan B8, no cirrus B9) | NASA Ball_BA_RSR v1.2 via `pyrsr` |
| `nikon5100-rgb` | R, G, B | NPL measurement in `colour-science` 0.4.7 |
| `canon5dmk2-rgb` | R, G, B | RAW to ACES data in `colour-science` 0.4.7 |
| `cie1931-xyz` | x, y, z colour-matching functions | CIE 1931 2 degree, `colour-science` |
"""

import functools
import os
import warnings

import numpy as np

from keras_hsifusion.data.degrade import FWHM_TO_SIGMA

__all__ = ["list_sensors", "sensor_table", "spectral_response"]

_TABLE = os.path.join(os.path.dirname(__file__), "srf_tables.npz")


@functools.lru_cache(maxsize=1)
def _tables():
    with np.load(_TABLE) as data:
        return {k: data[k] for k in data.files}


def list_sensors():
    """Names accepted by `spectral_response`."""
    return sorted({k.split("/")[0] for k in _tables()})


def sensor_table(sensor):
    """The published response of `sensor` on its own wavelength grid.

    Returns:
        `(wavelengths_nm (N,), response (N, k), band_names (k,))`, responses as published
        (peak about 1).
    """
    tables = _tables()
    if f"{sensor}/response" not in tables:
        raise ValueError(f"Unknown `sensor`. Received: sensor={sensor!r}; known: {list_sensors()}")
    return (
        tables[f"{sensor}/wavelengths"].astype(np.float64),
        tables[f"{sensor}/response"].astype(np.float64),
        [str(b) for b in tables[f"{sensor}/bands"]],
    )


def spectral_response(sensor, wavelengths, fwhm=None, normalize=True, min_coverage=0.9):
    """The `(C, k)` matrix that projects an HSI with band centres `wavelengths` onto `sensor`.

    Entry `[c, j]` is the response of sensor band `j` at HSI band `c`: the published curve
    linearly interpolated at the band centre, or, when `fwhm` is given, integrated against a
    Gaussian band of that FWHM. With `normalize=True` (default) every column sums to 1, so a
    flat spectrum of value v gives v in every MSI band and `hr_msi = hr_hsi @ srf` keeps the
    HSI's units.

    Args:
        sensor: one of `list_sensors()` (e.g. `"sentinel2a-10m"`).
        wavelengths: `(C,)` HSI band centres in nm.
        fwhm: optional `(C,)` or scalar HSI band widths (FWHM) in nm.
        normalize: divide each column by its sum. Defaults to True.
        min_coverage: warn when less than this fraction of a sensor band's response lies
            inside the HSI's spectral range. Defaults to 0.9.

    Returns:
        float64 array `(C, k)`.

    Examples:
    >>> cube, wl = indian_pines()
    >>> srf = spectral_response("sentinel2a-10m", wl)
    >>> srf.shape, (cube @ srf).shape  # Sentinel-2A's four 10 m bands
    ((200, 4), (145, 145, 4))
    """
    grid, resp, bands = sensor_table(sensor)
    wl = np.asarray(wavelengths, dtype=np.float64).reshape(-1)
    if wl.size == 0 or not np.all(np.isfinite(wl)):
        raise ValueError(
            f"`wavelengths` must be finite band centres in nm. Received: {wavelengths}"
        )
    if wl.max() < 100:
        raise ValueError(
            "`wavelengths` must be in nanometres (values look like micrometres). "
            f"Received: min={wl.min()}, max={wl.max()}"
        )
    if fwhm is None:
        mat = np.stack(
            [np.interp(wl, grid, resp[:, j], left=0, right=0) for j in range(resp.shape[1])], 1
        )
        lo, hi = wl.min(), wl.max()
    else:
        widths = np.broadcast_to(np.asarray(fwhm, dtype=np.float64), wl.shape)
        if np.any(widths <= 0):
            raise ValueError(f"`fwhm` must be positive. Received: {fwhm}")
        fine = np.arange(grid[0], grid[-1] + 0.5, 0.5)
        fine_resp = np.stack([np.interp(fine, grid, resp[:, j]) for j in range(resp.shape[1])], 1)
        sig = widths[:, None] * FWHM_TO_SIGMA
        g = np.exp(-0.5 * ((fine[None, :] - wl[:, None]) / sig) ** 2)
        g /= np.sqrt(2 * np.pi) * sig
        mat = g @ fine_resp * 0.5
        lo, hi = (wl - widths).min(), (wl + widths).max()
    inside = (grid >= lo) & (grid <= hi)
    step = np.diff(grid)
    for j, name in enumerate(bands):
        total = np.sum(0.5 * (resp[1:, j] + resp[:-1, j]) * step)
        part = resp[:, j] * inside
        cover = np.sum(0.5 * (part[1:] + part[:-1]) * step) / total
        if mat[:, j].sum() <= 0:
            raise ValueError(
                f"Band {name} of sensor {sensor!r} has no response at the given `wavelengths` "
                f"({wl.min():.1f}-{wl.max():.1f} nm)."
            )
        if cover < min_coverage:
            warnings.warn(
                f"Only {cover:.0%} of band {name} of {sensor!r} lies inside the HSI range "
                f"{wl.min():.1f}-{wl.max():.1f} nm.",
                stacklevel=2,
            )
    if normalize:
        mat = mat / mat.sum(axis=0, keepdims=True)
    return mat
