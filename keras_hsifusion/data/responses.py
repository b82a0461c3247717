"""MSI spectral responses given by the user, and the degradation sampler of a data config.

The MSI response of a simulation is a sensor of `keras_hsifusion.data.spectral_response`, a
user table (a CSV file: a header row `wavelength_nm,<band>,<band>,...`, then one row per
wavelength in nm, increasing; interpolated at the HSI band centres, 0 outside the table) or
a `(C, c)` matrix. Columns are normalised to sum 1, as `spectral_response` does.
`response_sampler` returns the `DegradationSampler` of a data config with any of the three;
`nominal_condition` is the condition of its test region.

Examples:
>>> wl = np.linspace(450, 900, 6)
>>> sampler = response_sampler({"srf": np.eye(6)[:, ::2].tolist()}, 4, wl, 6)
>>> sampler.srf(nominal_condition(sampler)).shape
(6, 3)
"""

import os

import numpy as np

from keras_hsifusion.data.conditions import DegradationSampler, check_profile, stretched_response

__all__ = [
    "ResponseSampler",
    "nominal_condition",
    "read_response_table",
    "response_sampler",
    "table_response",
]


def read_response_table(path, name="srf"):
    """Reads a CSV spectral response table.

    Args:
        path: a `.csv` file: a header row (`wavelength_nm,<band>,...`), then rows of numbers,
            wavelengths in nm, increasing.
        name: the argument's name in error messages.

    Returns:
        `(wavelengths (N,), response (N, c), band_names)`.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"`{name}`: no such file: {path!r}")
    try:
        with open(path, encoding="utf-8-sig") as f:
            header = [h.strip() for h in f.readline().split(",")]
            rows = np.loadtxt(f, delimiter=",", ndmin=2)
    except (OSError, ValueError) as e:
        raise ValueError(f"`{name}`: {path!r} is not a CSV table of numbers: {e}") from e
    ok = rows.ndim == 2 and rows.shape[1] == len(header) >= 2 and len(rows) >= 2
    if not ok or not np.all(np.isfinite(rows)) or np.any(np.diff(rows[:, 0]) <= 0):
        raise ValueError(
            f"`{name}`: {path!r} must have a header `wavelength_nm,<band>,...` and two or more "
            f"rows of as many numbers, wavelengths increasing. Received {rows.shape} values "
            f"under {len(header)} columns"
        )
    return rows[:, 0], rows[:, 1:], header[1:]


def table_response(grid, response, wavelengths, shift_nm=0.0, width_scale=1.0, name="srf"):
    """The `(C, c)` response of a table at band centres, bands optionally shifted/widened.

    As `keras_hsifusion.data.conditions.shifted_response` for a user table: band j's
    response at `wl` is the table's at `centre_j + (wl - centre_j - shift_nm) / width_scale`;
    columns sum to 1.
    """
    wl = np.asarray(wavelengths, np.float64).reshape(-1)
    return stretched_response(
        grid,
        response,
        wl,
        shift_nm,
        width_scale,
        lambda j: (
            f"`{name}`: band {j} has no response at the HSI band centres "
            f"({wl.min():.1f}-{wl.max():.1f} nm)."
        ),
    )


class ResponseSampler(DegradationSampler):
    """A `DegradationSampler` whose MSI response is a user table or a `(C, c)` matrix.

    Args:
        data, scale, wavelengths: as `DegradationSampler`.
        table: `(grid, response)` of `read_response_table` (shifts and widths apply), or
        matrix: a `(C, c)` response (no `msi_shift_nm` / `msi_width_scale`).
        name: the config key of the response, for messages.
    """

    def __init__(self, data, scale, wavelengths, table=None, matrix=None, name="srf"):
        super().__init__(data, scale, wavelengths)
        if (table is None) == (matrix is None):
            raise ValueError("Give one of `table` and `matrix`.")
        if matrix is not None:
            matrix = np.asarray(matrix, np.float64)
            if matrix.ndim != 2 or np.any(matrix < 0) or np.any(matrix.sum(axis=0) <= 0):
                raise ValueError(
                    f"`{name}` must be a (C, c) matrix of non-negative responses, every column "
                    f"with some response. Received shape {matrix.shape}"
                )
            for key, spec in (("msi_shift_nm", self.shift), ("msi_width_scale", self.width)):
                if spec is not None:
                    raise ValueError(
                        f"`{key}` needs a response table (a sensor or a CSV file), not a "
                        f"matrix. Received: {key}={spec!r}"
                    )
            matrix = matrix / matrix.sum(axis=0, keepdims=True)
        self.table, self.matrix, self.name = table, matrix, name

    def srf(self, condition):
        if self.matrix is not None:
            return self.matrix
        key = (round(condition["msi_shift_nm"], 3), round(condition["msi_width_scale"], 4))
        if key not in self._srf_cache:
            if len(self._srf_cache) > 256:
                self._srf_cache.clear()
            self._srf_cache[key] = table_response(*self.table, self.wavelengths, *key, self.name)
        return self._srf_cache[key]


def response_sampler(data, scale, wavelengths, bands, prefix="data."):
    """The `DegradationSampler` of a data config for scenes of `bands` bands.

    `data["srf"]`: None (the sensor `data["sensor"]`), a CSV path or a `(C, c)` list;
    `wavelengths` (None when unknown) are needed by a sensor, a table and the band-dependent
    noise profiles `"sensor"` and `{"table": ...}`.
    """
    srf = data.get("srf")
    profiles = check_profile(f"{prefix}noise_profile", data.get("noise_profile"))
    if srf is None:
        user = f"the sensor `{prefix}sensor`={data.get('sensor')!r}"
    elif isinstance(srf, str):
        user = f"the response table `{prefix}srf`={srf!r}"
    else:
        noisy = any(p not in ("white", "smooth") for p in profiles)
        user = f"the noise profile `{prefix}noise_profile`" if noisy else None
    if wavelengths is None and user is not None:
        raise ValueError(
            f"`{prefix}wavelengths` are needed by {user} and the scene files have none: give "
            "them in the config (CAVE: 400-700 nm every 10 nm)."
        )
    wl = np.full(bands, np.nan) if wavelengths is None else wavelengths
    if srf is None:
        return DegradationSampler(data, scale, wl, data.get("sensor"))
    if isinstance(srf, str):
        grid, response, _ = read_response_table(srf, f"{prefix}srf")
        table_response(grid, response, wl, name=f"{prefix}srf")  # every band seen
        return ResponseSampler(data, scale, wl, table=(grid, response), name=f"{prefix}srf")
    matrix = np.asarray(srf, np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != bands:
        raise ValueError(
            f"`{prefix}srf` must be ({bands}, c): one row per HSI band. Received shape "
            f"{matrix.shape}"
        )
    return ResponseSampler(data, scale, wl, matrix=matrix, name=f"{prefix}srf")


def nominal_condition(sampler):
    """The protocol's condition of a sampler (the test region's): its fixed values, the
    defaults (FWHM = scale, no noise) for parameters given as ranges, white noise, no shift."""

    def fixed(spec):
        return None if isinstance(spec, dict) else spec

    return {
        "psf_fwhm": float(fixed(sampler.psf_fwhm) or sampler.scale),
        "snr_lr_db": fixed(sampler.snr_lr),
        "snr_msi_db": fixed(sampler.snr_msi),
        "noise_profile": "white",
        "noise_profile_depth_db": 0.0,
        "lr_band_offsets_db": [0.0] * sampler.wavelengths.size,
        "msi_shift_nm": 0.0,
        "msi_width_scale": 1.0,
    }
