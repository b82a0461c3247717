"""Distributions of degradations: PSF width, noise per image and per band, MSI response.

A trained model that only ever saw one PSF and noise-free pairs is brittle on real pairs.
`DegradationSampler` draws one *condition* (a PSF FWHM, an SNR for each image, a per-band
SNR profile of the LR-HSI and a small shift or width change of the MSI response) from the
ranges of a data config, for every training patch (`FusionPatches(degradations=...)`) and
for a fixed list of validation conditions drawn once (`DegradationSampler.fixed_conditions`).

A parameter spec (`psf_fwhm`, each SNR, `noise_profile_depth_db`, `msi_shift_nm`,
`msi_width_scale`) is one of:

- `None` (the protocol default: FWHM = scale, no noise, no shift, width 1),
- a number,
- `{"uniform": [low, high]}` (drawn uniformly),
- `{"choice": [v1, v2, ...]}` (one of the values, each equally likely; `None` allowed).

`noise_snr_db` is a spec for both images or a pair `[lr_hsi_spec, hr_msi_spec]`. The SNR of
band k of the LR-HSI is `snr + offset_k`, with offsets (dB, mean 0 over the bands) from
`noise_profile`: `None`/`"white"` (all 0), `"sensor"` (the usual shape of imaging
spectrometers: noisier in the blue, near the water-vapour bands at 940, 1130, 1380 and
1880 nm and in the far SWIR), `"smooth"` (a smooth random curve over the bands),
`{"table": [[nm, offset_db], ...]}` (a user table, interpolated at the band centres), or a
list of these (one drawn per condition). Their peak-to-peak range is
`noise_profile_depth_db` (a spec; default `{"uniform": [0, 10]}`) except for a table, used as
given. Noise is white Gaussian per band: `sigma_k^2 = P_k / 10^(SNR_k / 10)` with `P_k` the
mean square of band k of the image it is added to (`keras_hsifusion.data.degrade`).

Examples:
>>> import numpy as np
>>> wl = np.linspace(400, 2500, 50)
>>> s = DegradationSampler({"psf_fwhm": {"uniform": [2, 7]}, "noise_snr_db": [25, 40],
...                         "noise_profile": "sensor"}, scale=4, wavelengths=wl)
>>> c = s.draw(np.random.default_rng(0))
>>> 2 <= c["psf_fwhm"] <= 7, c["snr_lr_db"], c["snr_msi_db"], len(c["lr_band_offsets_db"])
(True, 25.0, 40.0, 50)
"""

import math
import numbers

import numpy as np

__all__ = [
    "DegradationSampler",
    "band_snr_offsets",
    "check_value_spec",
    "draw_value",
    "is_random",
    "shifted_response",
    "spec_max",
    "stretched_response",
]

NOISE_PROFILES = ("white", "sensor", "smooth")
# Water-vapour absorption bands (nm, half width): imaging spectrometers lose signal there.
_WATER_VAPOUR = ((940.0, 35.0), (1130.0, 35.0), (1380.0, 60.0), (1880.0, 70.0))
DEFAULT_PROFILE_DEPTH_DB = {"uniform": [0.0, 10.0]}


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_value_spec(name, spec, minimum=None, allow_none=True):
    """Checks one parameter spec (see the module docstring) and returns it normalised.

    Args:
        name: the config key, for the error message (e.g. `"data.psf_fwhm"`).
        spec: `None`, a number, `{"uniform": [low, high]}` or `{"choice": [...]}`.
        minimum: values must be greater than this (exclusive), when given.
        allow_none: whether `None` (the default) is a valid value.

    Returns:
        `None`, a float, `{"uniform": [low, high]}` (floats) or `{"choice": [...]}`.
    """

    def value(v, where):
        if v is None and allow_none:
            return None
        if not _is_number(v) or (minimum is not None and v <= minimum):
            bound = "" if minimum is None else f" greater than {minimum}"
            raise ValueError(
                f"`{name}` must be a finite number{bound}, {{'uniform': [low, high]}} or "
                f"{{'choice': [...]}}. Received: {where}={v!r}"
            )
        return float(v)

    if spec is None or _is_number(spec) or isinstance(spec, bool):
        return value(spec, name)
    if isinstance(spec, dict) and len(spec) == 1:
        ((kind, args),) = spec.items()
        if kind == "uniform" and isinstance(args, (list, tuple)) and len(args) == 2:
            low, high = (value(a, f"{name}.uniform") for a in args)
            if low is None or high is None or low > high:
                raise ValueError(
                    f"`{name}`: `uniform` takes [low, high] with low <= high. Received: {args!r}"
                )
            return {"uniform": [low, high]}
        if kind == "choice" and isinstance(args, (list, tuple)) and args:
            return {"choice": [value(a, f"{name}.choice") for a in args]}
    raise ValueError(
        f"`{name}` must be None, a number, {{'uniform': [low, high]}} or {{'choice': [...]}}. "
        f"Received: {name}={spec!r}"
    )


def is_random(spec):
    """True when a (checked) spec is a distribution rather than one value."""
    return isinstance(spec, dict)


def draw_value(spec, rng):
    """One value of a checked spec (`None` stays `None`)."""
    if not isinstance(spec, dict):
        return spec
    if "uniform" in spec:
        low, high = spec["uniform"]
        return float(rng.uniform(low, high)) if high > low else float(low)
    return spec["choice"][int(rng.integers(len(spec["choice"])))]


def spec_max(spec, default):
    """The largest value a spec can take (`default` for `None`)."""
    if isinstance(spec, dict):
        values = spec["uniform"] if "uniform" in spec else spec["choice"]
        return max(default if v is None else v for v in values)
    return default if spec is None else spec


def check_profile(name, profile):
    """Checks a `noise_profile` (module docstring) and returns it as a list of choices."""
    choices = profile if isinstance(profile, list) else [profile]
    if not choices:
        raise ValueError(f"`{name}` must not be an empty list. Received: {name}={profile!r}")
    out = []
    for p in choices:
        if p is None or p in NOISE_PROFILES:
            out.append(p or "white")
            continue
        if isinstance(p, dict) and set(p) == {"table"}:
            table = np.asarray(p["table"], dtype=np.float64) if _table_ok(p["table"]) else None
            if table is not None and table.ndim == 2 and table.shape[1] == 2 and len(table) >= 2:
                if np.all(np.isfinite(table)) and np.all(np.diff(table[:, 0]) > 0):
                    out.append({"table": table.tolist()})
                    continue
        raise ValueError(
            f"`{name}` must be one of {('white', 'sensor', 'smooth')}, "
            "{'table': [[nm, offset_db], ...]} (two or more rows, increasing nm) or a list of "
            f"these. Received: {name}={p!r}"
        )
    return out


def _table_ok(table):
    try:
        np.asarray(table, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return True


def _sensor_shape(wavelengths):
    wl = np.asarray(wavelengths, dtype=np.float64)
    blue = np.exp(-np.clip(wl - 400.0, 0.0, None) / 60.0)
    vapour = sum(np.exp(-0.5 * ((wl - c) / w) ** 2) for c, w in _WATER_VAPOUR)
    swir = np.clip((wl - 2000.0) / 500.0, 0.0, None)
    return blue + vapour + swir


def _smooth_shape(n, rng, knots=6):
    # a random cubic curve through `knots` values spread over the band index
    xs = np.linspace(0.0, 1.0, knots)
    ys = rng.standard_normal(knots)
    t = np.linspace(0.0, 1.0, n)
    from scipy.interpolate import CubicSpline

    return CubicSpline(xs, ys)(t)


def band_snr_offsets(wavelengths, profile, depth_db, rng=None):
    """Per-band SNR offsets in dB (mean 0) of a noise profile.

    Args:
        wavelengths: `(C,)` band centres in nm.
        profile: `"white"`, `"sensor"`, `"smooth"` or `{"table": [[nm, offset_db], ...]}`.
        depth_db: peak-to-peak range of the offsets (not used by a table).
        rng: a numpy `Generator`, for `"smooth"`.

    Returns:
        float64 `(C,)`: band k has SNR `snr + offsets[k]`. `"sensor"` is lowest (noisiest) in
        the blue, the water-vapour bands and the far SWIR.
    """
    wl = np.asarray(wavelengths, dtype=np.float64).reshape(-1)
    if profile in (None, "white"):
        return np.zeros(wl.size)
    if isinstance(profile, dict):
        table = np.asarray(profile["table"], dtype=np.float64)
        offsets = np.interp(wl, table[:, 0], table[:, 1])
        return offsets - offsets.mean()
    if profile == "sensor":
        shape = -_sensor_shape(wl)
    elif profile == "smooth":
        rng = np.random.default_rng() if rng is None else rng
        shape = _smooth_shape(wl.size, rng)
    else:
        raise ValueError(f"Unknown noise profile. Received: {profile!r}")
    span = shape.max() - shape.min()
    if span <= 0 or depth_db <= 0:
        return np.zeros(wl.size)
    offsets = shape / span * depth_db
    return offsets - offsets.mean()


class DegradationSampler:
    """Draws degradation conditions from the ranges of a data config.

    Args:
        data: a dict with any of `psf_fwhm`, `noise_snr_db`, `noise_profile`,
            `noise_profile_depth_db`, `msi_shift_nm`, `msi_width_scale` (module docstring).
        scale: the resolution ratio (the default FWHM).
        wavelengths: `(C,)` HSI band centres in nm (for the band profiles and the MSI shift).
        sensor: the MSI sensor name (`keras_hsifusion.data.spectral_response`), needed for
            `srf(condition)`.

    A condition is a dict: `psf_fwhm` (float), `snr_lr_db` and `snr_msi_db` (float or None),
    `noise_profile`, `lr_band_offsets_db` (list of C floats), `msi_shift_nm`,
    `msi_width_scale`: plain JSON, so runs can record them.
    """

    def __init__(self, data, scale, wavelengths, sensor=None):
        self.scale, self.sensor = int(scale), sensor
        self.wavelengths = np.asarray(wavelengths, dtype=np.float64).reshape(-1)
        self.psf_fwhm = check_value_spec("data.psf_fwhm", data.get("psf_fwhm"), minimum=0)
        snr = data.get("noise_snr_db")
        if isinstance(snr, (list, tuple)):
            if len(snr) != 2:
                raise ValueError(
                    "`data.noise_snr_db` must be one spec or a pair [lr_hsi, hr_msi]. "
                    f"Received: noise_snr_db={snr!r}"
                )
            lr, msi = snr
        else:
            lr = msi = snr
        self.snr_lr = check_value_spec("data.noise_snr_db (lr_hsi)", lr)
        self.snr_msi = check_value_spec("data.noise_snr_db (hr_msi)", msi)
        self.profiles = check_profile("data.noise_profile", data.get("noise_profile"))
        depth = data.get("noise_profile_depth_db")
        depth = DEFAULT_PROFILE_DEPTH_DB if depth is None else depth
        self.depth = check_value_spec("data.noise_profile_depth_db", depth, minimum=-1e-12)
        self.shift = check_value_spec("data.msi_shift_nm", data.get("msi_shift_nm"))
        self.width = check_value_spec(
            "data.msi_width_scale", data.get("msi_width_scale"), minimum=0
        )
        self._srf_cache = {}

    @property
    def random(self):
        """True when any parameter is a distribution (or a random profile is used)."""
        specs = (self.psf_fwhm, self.snr_lr, self.snr_msi, self.shift, self.width)
        return (
            any(is_random(s) for s in specs)
            or len(self.profiles) > 1
            or (self.profiles[0] != "white" and self.snr_lr is not None)
        )

    @property
    def max_psf_fwhm(self):
        """The widest PSF FWHM that can be drawn (for guard bands and patch margins)."""
        return float(spec_max(self.psf_fwhm, self.scale))

    def draw(self, rng):
        """One condition (see the class docstring), drawn with the numpy `Generator` `rng`."""
        fwhm = draw_value(self.psf_fwhm, rng)
        snr_lr, snr_msi = draw_value(self.snr_lr, rng), draw_value(self.snr_msi, rng)
        profile = self.profiles[int(rng.integers(len(self.profiles)))]
        depth = draw_value(self.depth, rng) or 0.0
        offsets = band_snr_offsets(self.wavelengths, profile, depth, rng)
        shift, width = draw_value(self.shift, rng), draw_value(self.width, rng)
        return {
            "psf_fwhm": float(self.scale if fwhm is None else fwhm),
            "snr_lr_db": None if snr_lr is None else float(snr_lr),
            "snr_msi_db": None if snr_msi is None else float(snr_msi),
            "noise_profile": profile,
            "noise_profile_depth_db": float(depth) if profile not in ("white",) else 0.0,
            "lr_band_offsets_db": [round(float(o), 4) for o in offsets],
            "msi_shift_nm": float(shift or 0.0),
            "msi_width_scale": float(width or 1.0),
        }

    def fixed_conditions(self, count, seed):
        """`count` conditions drawn once from `seed` (validation conditions: recorded)."""
        rng = np.random.default_rng([int(seed), 0x7A1])
        return [self.draw(rng) for _ in range(int(count))]

    def noise_snr_db(self, condition):
        """`(lr_hsi, hr_msi)` SNRs for `degrade`: per-band array / float / None."""
        lr = condition["snr_lr_db"]
        if lr is not None:
            lr = lr + np.asarray(condition["lr_band_offsets_db"], dtype=np.float64)
        return lr, condition["snr_msi_db"]

    def srf(self, condition):
        """The `(C, c)` MSI response of a condition (shifted and widened sensor bands)."""

        if self.sensor is None:
            raise ValueError("A `sensor` is needed for the MSI response of a condition.")
        key = (round(condition["msi_shift_nm"], 3), round(condition["msi_width_scale"], 4))
        if key not in self._srf_cache:
            if len(self._srf_cache) > 256:
                self._srf_cache.clear()
            self._srf_cache[key] = shifted_response(self.sensor, self.wavelengths, *key)
        return self._srf_cache[key]


def shifted_response(sensor, wavelengths, shift_nm=0.0, width_scale=1.0):
    """`spectral_response` of `sensor` with every band moved by `shift_nm` and its response
    stretched about the band's centroid by `width_scale` (1: the published curve).

    Columns sum to 1, as `spectral_response(..., normalize=True)`.
    """
    from keras_hsifusion.data.srf import sensor_table, spectral_response

    wl = np.asarray(wavelengths, dtype=np.float64).reshape(-1)
    if shift_nm == 0 and width_scale == 1:
        return spectral_response(sensor, wl)
    grid, resp, bands = sensor_table(sensor)
    return stretched_response(
        grid,
        resp,
        wl,
        shift_nm,
        width_scale,
        lambda j: (
            f"Band {bands[j]} of sensor {sensor!r} has no response at the given "
            f"`wavelengths` once shifted by {shift_nm} nm and widened by {width_scale}."
        ),
    )


def stretched_response(grid, response, wavelengths, shift_nm, width_scale, missing):
    """`(C, c)` columns of a response table `(grid, response)` at the band centres, each band
    moved by `shift_nm` and stretched about its centroid by `width_scale`; columns sum to 1.

    Band j's response at `wl` is the table's at `centre_j + (wl - centre_j - shift) / w`. A
    band with no response left raises a `ValueError` with the message `missing(j)`.
    """
    wl = np.asarray(wavelengths, dtype=np.float64).reshape(-1)
    cols = []
    for j in range(response.shape[1]):
        centre = np.sum(grid * response[:, j]) / np.sum(response[:, j])
        source = centre + (wl - centre - shift_nm) / width_scale
        col = np.interp(source, grid, response[:, j], left=0.0, right=0.0)
        if col.sum() <= 0:
            raise ValueError(missing(j))
        cols.append(col / col.sum())
    return np.stack(cols, axis=1)
