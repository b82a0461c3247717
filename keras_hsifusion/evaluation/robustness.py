"""The robustness sweep: fusion methods on the held-out region under degradations they were
not told about (DESIGN.md section 4).

The protocol's scene (`keras_hsifusion.evaluation.protocol.build_data`: Indian Pines, 144x144
crop, Sentinel-2A B2/B3/B4/B8, x4, held-out test region = the rightmost 48 columns) is
simulated whole under each *condition* of a grid: a Gaussian PSF of another FWHM, white
Gaussian noise at a given SNR on the LR-HSI and on the HR-MSI, or band-dependent LR-HSI noise
(`keras_hsifusion.data.band_snr_offsets`, profile `"sensor"`: noisier in the blue, near the
water-vapour bands and in the far SWIR). Every method then fuses the test region of every
condition and is scored against the clean reference, as the training runner scores presets
(output clipped to [0, 1]; PSNR, SAM, ERGAS, RMSE of `keras_hsifusion.metrics`).

A condition is a plain dict: `name`, `psf_fwhm` (HR pixels), `snr_lr_db` and `snr_msi_db`
(dB, `None`: no noise on that image), `profile` (`"white"`, `"sensor"` or `"smooth"`: the
per-band SNR offsets of the LR-HSI) and `depth_db` (their peak-to-peak range). The noise of a
condition is drawn from a generator seeded by `seed` and the condition's parameters, so a
sweep is reproducible and two methods always see the same noisy pair.

    rows = run_sweep(["gsa", "hssdct_indianpines_s2_x4"], robustness_grid())
    write_sweep(rows, "benchmarks/results/robustness_indianpines_s2_x4")

`khf bench robustness` and `benchmarks/robustness.py` are the command line of `main`.

Examples:
>>> [c["name"] for c in robustness_grid("quick")]
['psf4', 'psf7', 'lr15_msi40', 'lr25_msi40_sensor10']
>>> len(robustness_grid())
22
"""

import argparse
import json
import os
import platform
import shlex
import sys
import time
import zlib

import numpy as np

__all__ = ["GRIDS", "make_condition", "main", "robustness_grid", "run_sweep", "simulate_condition"]

GRIDS = ("default", "quick")
PROFILES = ("white", "sensor", "smooth")
PRESET_NOTE = (
    "Presets are fused by `keras_hsifusion.fuse` with their own tiling defaults and card "
    "normalisation (both inputs divided by the maximum of the region's LR-HSI), so at the "
    "training degradation they can differ from their cards (inputs divided by the whole "
    "cube's maximum) by a few thousandths of a dB."
)
DEFAULT_OUT = os.path.join("benchmarks", "results", "robustness_indianpines_s2_x4")


def _check_positive(name, value, allow_none):
    if value is None and allow_none:
        return None
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not np.isfinite(value) or (name == "psf_fwhm" and value <= 0):
        raise ValueError(
            f"`{name}` must be a finite number{' > 0' if name == 'psf_fwhm' else ''}"
            f"{' or None' if allow_none else ''}. Received: {name}={value!r}"
        )
    return float(value)


def make_condition(
    psf_fwhm=None, snr_lr_db=None, snr_msi_db=None, profile="white", depth_db=0.0, scale=4
):
    """One condition of a sweep, with its canonical name.

    Args:
        psf_fwhm: Gaussian PSF FWHM in HR pixels. Defaults to `scale` (the protocol's).
        snr_lr_db: SNR of the LR-HSI in dB (mean over its bands); None: no noise.
        snr_msi_db: SNR of the HR-MSI in dB; None: no noise.
        profile: per-band SNR shape of the LR-HSI noise: `"white"` (the same SNR in every
            band), `"sensor"` or `"smooth"` (`keras_hsifusion.data.band_snr_offsets`).
        depth_db: peak-to-peak range of the per-band offsets (not used by `"white"`).
        scale: the resolution ratio (the default FWHM).

    Returns:
        dict: `name` (e.g. `"psf7"`, `"lr25_msi40"`, `"lr25_msi40_sensor10"`), `psf_fwhm`,
        `snr_lr_db`, `snr_msi_db`, `profile`, `depth_db`.
    """
    fwhm = _check_positive("psf_fwhm", float(scale) if psf_fwhm is None else psf_fwhm, False)
    snr_lr = _check_positive("snr_lr_db", snr_lr_db, True)
    snr_msi = _check_positive("snr_msi_db", snr_msi_db, True)
    if profile not in PROFILES:
        raise ValueError(f"`profile` must be one of {PROFILES}. Received: profile={profile!r}")
    depth = 0.0 if profile == "white" else _check_positive("depth_db", depth_db, False)
    parts = []
    if fwhm != scale or (snr_lr is None and snr_msi is None):
        parts.append(f"psf{fwhm:g}")
    if snr_lr is not None or snr_msi is not None:
        parts.append(
            f"lr{'inf' if snr_lr is None else f'{snr_lr:g}'}_"
            f"msi{'inf' if snr_msi is None else f'{snr_msi:g}'}"
        )
    if profile != "white" and snr_lr is not None:
        parts.append(f"{profile}{depth:g}")
    return {
        "name": "_".join(parts),
        "psf_fwhm": fwhm,
        "snr_lr_db": snr_lr,
        "snr_msi_db": snr_msi,
        "profile": profile,
        "depth_db": depth,
    }


def robustness_grid(grid="default", scale=4):
    """The conditions of a named grid.

    `"default"` (22 conditions): the training degradation (FWHM = `scale`, no noise); FWHM 2,
    3, 5, 6, 7 HR pixels without noise; white noise at LR-HSI SNR 15 to 45 dB (steps of 5)
    with the MSI at 40 dB; the pairs (LR, MSI) = (20, 35), (35, 35), (30, 25), (45, 25),
    (45, 50) dB; band-dependent LR-HSI noise (`"sensor"` profile, 10 dB deep) at 20, 25, 30,
    35 dB with the MSI at 40 dB. `"quick"` (4 conditions, for tests): the training
    degradation, FWHM 7, white 15/40 dB, sensor 25/40 dB.

    Args:
        grid: `"default"` or `"quick"`.
        scale: the resolution ratio (the training FWHM).

    Returns:
        a list of condition dicts (`make_condition`).
    """
    if grid not in GRIDS:
        raise ValueError(f"`grid` must be one of {GRIDS}. Received: grid={grid!r}")

    def c(fwhm=None, lr=None, msi=None, profile="white", depth=0.0):
        return make_condition(fwhm, lr, msi, profile, depth, scale=scale)

    if grid == "quick":
        return [c(), c(7), c(None, 15, 40), c(None, 25, 40, "sensor", 10)]
    return (
        [c()]
        + [c(f) for f in (2, 3, 5, 6, 7)]
        + [c(None, snr, 40) for snr in (15, 20, 25, 30, 35, 40, 45)]
        + [c(None, lr, msi) for lr, msi in ((20, 35), (35, 35), (30, 25), (45, 25), (45, 50))]
        + [c(None, snr, 40, "sensor", 10) for snr in (20, 25, 30, 35)]
    )


def _check_conditions(conditions):
    if isinstance(conditions, dict) or not conditions:
        raise ValueError(
            "`conditions` must be a non-empty list of conditions (`robustness_grid`, "
            f"`make_condition`). Received: conditions={conditions!r}"
        )
    keys = ("name", "psf_fwhm", "snr_lr_db", "snr_msi_db", "profile", "depth_db")
    for cond in conditions:
        if not isinstance(cond, dict) or any(k not in cond for k in keys):
            raise ValueError(
                f"Every condition must be a dict with keys {keys}. Received: condition={cond!r}"
            )
    names = [c["name"] for c in conditions]
    if len(set(names)) != len(names):
        raise ValueError(f"Condition names must be unique. Received: names={names}")
    return list(conditions)


def _data_config(data_config):
    from keras_hsifusion.evaluation.protocol import DEFAULT_DATA

    d = {**DEFAULT_DATA, **(data_config or {})}
    if d["scene"] != "indian_pines":
        raise ValueError(
            "The robustness sweep simulates the protocol's built-in scene only. Received: "
            f"data_config['scene']={d['scene']!r}"
        )
    for key in ("crop", "scale", "test_size", "band_step"):
        value = d[key]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"`data_config[{key!r}]` must be a positive int. Received: {value!r}")
    return d


def _noise_seed(condition, seed):
    # the degradation's parameters (not the name): the same pair whatever a condition is called
    params = {k: condition[k] for k in sorted(condition) if k != "name"}
    return [int(seed), zlib.crc32(json.dumps(params, sort_keys=True).encode())]


def simulate_condition(condition, data_config=None, seed=0):
    """The held-out test region of the protocol's scene simulated under one condition.

    Exactly as `build_data` simulates the scene (same crop, normalisation, spectral response,
    whole-scene degradation, band thinning and test region: the rightmost `test_size`
    columns), with the condition's PSF and noise; the noise generator is seeded by `seed` and
    the condition's parameters. The training degradation without noise gives `build_data`'s
    `test_inputs` and `test_target` bit for bit.

    Args:
        condition: a condition dict (`make_condition`).
        data_config: overrides of `keras_hsifusion.evaluation.protocol.DEFAULT_DATA` (`crop`,
            `scale`, `sensor`, `test_size`, `band_step`); its own degradation keys are
            ignored (the condition's stand).
        seed: base seed of the noise.

    Returns:
        dict: `inputs` (`{"lr_hsi": (1, h, w, C), "hr_msi": (1, H, W, c)}`), `target`
        (`(1, H, W, C)`, the clean reference), `scale`, `wavelengths` (`(C,)`), `srf`
        (`(C, c)`: the true response restricted to the kept bands, columns summing to 1;
        None when a thinned band set misses an MSI band) and `condition`.
    """
    from keras_hsifusion import data as khf_data

    _check_conditions([condition])
    d = _data_config(data_config)
    cube, wavelengths = khf_data.indian_pines()
    crop, scale, step = d["crop"], d["scale"], d["band_step"]
    if crop > min(cube.shape[:2]) or crop % scale or d["test_size"] >= crop:
        raise ValueError(
            f"`data_config`: crop must be a multiple of scale, at most {min(cube.shape[:2])} and "
            f"larger than test_size. Received: crop={crop}, scale={scale}, "
            f"test_size={d['test_size']}"
        )
    cube = np.ascontiguousarray(cube[:crop, :crop])
    srf = khf_data.spectral_response(d["sensor"], wavelengths)
    snr_lr = condition["snr_lr_db"]
    noise_seed = _noise_seed(condition, seed)
    if snr_lr is not None and condition["profile"] != "white":
        rng = np.random.default_rng([*noise_seed, 1])
        offsets = khf_data.band_snr_offsets(
            wavelengths, condition["profile"], condition["depth_db"], rng
        )
        snr_lr = snr_lr + offsets
    noise = None
    if snr_lr is not None or condition["snr_msi_db"] is not None:
        noise = (snr_lr, condition["snr_msi_db"])
    lr, msi = khf_data.degrade(
        cube, scale, srf, psf_fwhm=condition["psf_fwhm"], noise_snr_db=noise, seed=noise_seed
    )
    # as `build_data`: the MSI sees every band; `band_step` thins the LR-HSI and the target
    lr, hr = lr[..., ::step], cube[..., ::step]
    _, (rows, cols) = khf_data.spatial_split(crop, crop, scale, val_size=d["test_size"])
    lr_rows = slice(rows.start // scale, rows.stop // scale)
    lr_cols = slice(cols.start // scale, cols.stop // scale)
    kept = srf[::step]
    kept = kept / kept.sum(axis=0, keepdims=True) if np.all(kept.sum(axis=0) > 0) else None
    return {
        "inputs": {
            "lr_hsi": np.ascontiguousarray(lr[None, lr_rows, lr_cols]),
            "hr_msi": np.ascontiguousarray(msi[None, rows, cols]),
        },
        "target": np.ascontiguousarray(hr[None, rows, cols]),
        "scale": scale,
        "wavelengths": wavelengths[::step],
        "srf": kept,
        "condition": dict(condition),
    }


def _resolve(method):
    """`(name, kind, callable-or-model)` of one entry of `methods`."""
    import keras

    from keras_hsifusion import baselines, presets

    if isinstance(method, keras.Model):
        return method.name, "model", method
    if isinstance(method, (str, os.PathLike)):
        name = os.fspath(method)
        if name in baselines.METHODS:
            return name, "classical", baselines.METHODS[name]
        if name in presets.list_presets() or os.path.isfile(os.path.join(name, presets.CARD_FILE)):
            label = os.path.basename(os.path.normpath(name))
            return label, "preset", name
    raise ValueError(
        "Unknown entry of `methods`: expected a classical method "
        f"{sorted(baselines.METHODS)}, a preset name {sorted(presets.list_presets())}, a "
        f"preset folder or a Keras model. Received: method={method!r}"
    )


def run_sweep(methods, conditions, data_config=None, seed=0, known_srf=False, log=print):
    """Scores every method on the held-out region under every condition.

    Every condition is simulated once (`simulate_condition`); each method then fuses the
    test region of each condition: a classical method of `keras_hsifusion.baselines.METHODS`
    through its function (blind: no SRF or PSF, unless `known_srf`), a preset (name or
    folder, loaded once) or a Keras model through `keras_hsifusion.fuse` with its own tiling
    defaults and its card's input normalisation. Outputs are clipped to [0, 1] and scored
    against the clean reference with `keras_hsifusion.evaluation.protocol.region_metrics`.

    Args:
        methods: list of classical method names, preset names or folders, or `FusionModel`s.
        conditions: list of condition dicts (`robustness_grid`, `make_condition`).
        data_config: overrides of the protocol's data config (`simulate_condition`).
        seed: base seed of the noise.
        known_srf: give classical methods the true SRF and the condition's PSF FWHM.
        log: called with one line per result (None: silent).

    Returns:
        a list of rows, one per (method, condition), in the order of `methods` then
        `conditions`: `method`, `kind` ("classical", "preset" or "model"), `condition` (its
        name), `scale`, the condition's `psf_fwhm`, `snr_lr_db`, `snr_msi_db`, `profile`,
        `depth_db`, then `psnr`, `sam`, `ergas`, `rmse` and `seconds` (the fusion call).
    """
    from keras_hsifusion import presets
    from keras_hsifusion.evaluation.protocol import region_metrics
    from keras_hsifusion.inference import fuse

    if isinstance(methods, (str, os.PathLike)) or not methods:
        raise ValueError(
            f"`methods` must be a non-empty list of methods. Received: methods={methods!r}"
        )
    resolved = [_resolve(m) for m in methods]
    names = [r[0] for r in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"`methods` must not repeat a method. Received: methods={names}")
    conditions = _check_conditions(conditions)
    log = log or (lambda message: None)
    scenes = [simulate_condition(c, data_config, seed) for c in conditions]
    if known_srf and scenes[0]["srf"] is None:
        raise ValueError(
            "`known_srf=True` needs every MSI band to see some kept HSI band. "
            f"Received: data_config={data_config!r}"
        )
    rows = []
    for name, kind, method in resolved:
        if kind == "preset":
            method = presets.from_preset(method)
        for scene in scenes:
            lr, hr = scene["inputs"]["lr_hsi"][0], scene["inputs"]["hr_msi"][0]
            cond, scale = scene["condition"], scene["scale"]
            start = time.perf_counter()
            if kind == "classical":
                sensor = {"srf": scene["srf"], "psf_fwhm": cond["psf_fwhm"]} if known_srf else {}
                est = method(lr, hr, scale, **sensor)
            else:
                est = fuse(lr, hr, method, scale=scale)
            seconds = time.perf_counter() - start
            values = region_metrics(scene["target"], np.clip(est, 0.0, 1.0)[None], scale)
            row = {"method": name, "kind": kind, "condition": cond["name"], "scale": scale}
            row.update({k: cond[k] for k in cond if k != "name"})
            row.update({k: float(v) for k, v in values.items()}, seconds=seconds)
            log(
                f"{name:28s} {cond['name']:22s} PSNR {row['psnr']:7.3f}  SAM "
                f"{row['sam']:6.3f}  ERGAS {row['ergas']:6.3f}  {seconds:6.2f} s"
            )
            rows.append(row)
    return rows


def _parser(prog):
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Fusion methods on the held-out Indian Pines region under a grid of PSF "
        "widths and noise levels (keras_hsifusion.evaluation.robustness).",
    )
    parser.add_argument(
        "--methods",
        nargs="*",
        default=None,
        help="classical methods (default: every one of keras_hsifusion.baselines.METHODS; "
        "an empty list: none)",
    )
    parser.add_argument(
        "--presets",
        nargs="*",
        default=None,
        help="preset names or folders (default: every shipped preset; empty: none)",
    )
    parser.add_argument("--grid", default="default", choices=GRIDS, help="default: 22 conditions")
    parser.add_argument("--known-srf", action="store_true", help="give classical methods the SRF")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the noise")
    parser.add_argument("--crop", type=int, default=None, help="scene crop (default 144)")
    parser.add_argument("--test-size", type=int, default=None, help="test columns (default 48)")
    parser.add_argument("--band-step", type=int, default=None, help="keep every N-th band")
    parser.add_argument("--note", action="append", default=[], help="a line for the .md notes")
    parser.add_argument(
        "--out", default=DEFAULT_OUT, help="output prefix: writes .json, .md and .png"
    )
    return parser


def main(argv=None, prog="khf bench robustness"):
    """The command line of the sweep (`khf bench robustness`, `benchmarks/robustness.py`):
    runs `run_sweep` on the chosen methods, presets and grid, then `write_sweep`."""
    import keras

    from keras_hsifusion import baselines, presets
    from keras_hsifusion.evaluation.report import write_sweep

    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser(prog).parse_args(argv)
    methods = list(baselines.METHODS) if args.methods is None else args.methods
    chosen = list(presets.list_presets()) if args.presets is None else args.presets
    data_config = {
        k: v
        for k, v in (
            ("crop", args.crop),
            ("test_size", args.test_size),
            ("band_step", args.band_step),
        )
        if v is not None
    }
    for name in methods:
        if name not in baselines.METHODS:
            raise ValueError(
                f"`--methods` takes classical methods {sorted(baselines.METHODS)}. "
                f"Received: {name!r}"
            )
    conditions = robustness_grid(args.grid, scale=_data_config(data_config)["scale"])
    for method in chosen:  # a bad name fails before any work
        _resolve(method)
    start = time.time()
    rows = run_sweep(
        methods + chosen, conditions, data_config, args.seed, args.known_srf, log=print
    )
    meta = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "known_srf": args.known_srf,
        "seed": args.seed,
        "grid": args.grid,
        "data": data_config,
        "wall_s": round(time.time() - start, 1),
    }
    notes = list(args.note)
    if chosen:
        notes.append(PRESET_NOTE)
    command = f"{prog} {shlex.join(argv)}".strip()
    paths = write_sweep(rows, args.out, command=command, meta=meta, notes=notes)
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m keras_hsifusion.evaluation.robustness"))
