"""The evaluation protocol: the simulated scene and its regions, and how a result is scored.

One home for what training, the demo, the benchmarks, the robustness sweep and the preset
export share (docs/training.md and docs/data.md):

- `build_data` with `DEFAULT_DATA` (Wald protocol on Indian Pines, or reference scenes in
  files with `FILE_DATA`): the training patches, the validation strip and the held-out test
  region, separated by guard bands;
- `region_metrics`: PSNR, SAM, ERGAS, RMSE (and SSIM) of an estimate of a whole region;
- `evaluate_region`: the same for a model's prediction of the region;
- `baseline_metrics`: every classical method of `keras_hsifusion.baselines.METHODS` on it.

`keras_hsifusion.training` fits models on this data; it does not define it.
"""

import keras
import numpy as np

from keras_hsifusion import baselines
from keras_hsifusion import data as khf_data
from keras_hsifusion import metrics as khf_metrics

__all__ = [
    "BUILTIN_SCENES",
    "DEFAULT_DATA",
    "FILE_DATA",
    "baseline_metrics",
    "build_data",
    "evaluate_region",
    "region_metrics",
]

# The data protocol of `build_data` (the `data` section of a config).
DEFAULT_DATA = {
    "scene": "indian_pines",
    "crop": 144,
    "scale": 4,
    "sensor": "sentinel2a-10m",
    "psf_fwhm": None,
    "noise_snr_db": None,
    "noise_profile": None,
    "noise_profile_depth_db": None,
    "msi_shift_nm": None,
    "msi_width_scale": None,
    "val_conditions": 4,
    "test_size": 48,
    "val_size": 24,
    "val_axis": 1,
    "band_step": 1,
    "patch_size": 32,
    "batch_size": 8,
    "patches_per_epoch": 64,
}
# Keys of scenes in files only (`data.scene` a path): not in validated Indian Pines configs.
FILE_DATA = {"split": "region", "wavelengths": None, "srf": None, "normalise": "max", "key": None}
BUILTIN_SCENES = ("indian_pines",)


def build_data(config):
    """Simulates the scene of a config and cuts its training, validation and test regions.

    The scene (cropped, every `band_step`-th band) is degraded once as a whole (Wald
    protocol, `keras_hsifusion.data.degrade`); `spatial_split` keeps the rightmost
    `test_size` columns as the held-out test region, then carves the last `val_size` columns
    (`val_axis=1`, mirroring the test split; 0: the bottom rows) of the rest as the
    validation strip (model selection); guard bands make sure that no HR pixel (nor the PSF
    support of an LR pixel) is shared between any two regions.

    Args:
        config: a validated config (or its `data` dict).

    Returns:
        dict with `train` (a `FusionPatches` over the training region; scenes in files:
        `_build_file_data`), `val_inputs`
        (`{"lr_hsi": (1, h, w, C), "hr_msi": (1, H, W, c)}` of the validation strip),
        `val_target` (`(1, H, W, C)`), `test_inputs` and `test_target` (the held-out test
        region), `scale`, `hsi_bands`, `msi_bands`, `wavelengths`, `regions` (`{"train",
        "val", "test"}`: `(row_slice, col_slice)` HR boxes) and `seed`.
    """
    seed = config.get("seed", 0) if "data" in config else 0
    d = config["data"] if "data" in config else config
    if d.get("scene", BUILTIN_SCENES[0]) not in BUILTIN_SCENES:  # files: whole scenes
        return _build_file_data({**DEFAULT_DATA, "crop": None, **FILE_DATA, **d}, seed)
    d = {**DEFAULT_DATA, **d}
    cube, wavelengths = khf_data.indian_pines()
    crop, scale, step = d["crop"], d["scale"], d["band_step"]
    if crop > min(cube.shape[:2]):
        raise ValueError(
            f"`data.crop` must be at most {min(cube.shape[:2])} for {d['scene']}. "
            f"Received: crop={crop}"
        )
    cube = np.ascontiguousarray(cube[:crop, :crop])
    sampler = khf_data.DegradationSampler(d, scale, wavelengths, d["sensor"])
    if sampler.random:
        return _build_random_data(d, seed, cube, wavelengths, sampler)
    srf = khf_data.spectral_response(d["sensor"], wavelengths)
    # The MSI sees the whole spectrum; `band_step` only thins the HSI (input and target).
    lr, msi = khf_data.degrade(
        cube, scale, srf, psf_fwhm=d["psf_fwhm"], noise_snr_db=d["noise_snr_db"], seed=seed
    )
    lr, hr = np.ascontiguousarray(lr[..., ::step]), np.ascontiguousarray(cube[..., ::step])
    wavelengths = wavelengths[::step]
    # Held-out test region: the rightmost `test_size` columns. Validation strip (for model
    # selection): the last `val_size` columns (or rows) of the rest, with its own guard band.
    # Columns, as the test split: a strip of bottom rows disagreed with the test region on
    # whether a correction over detail injection helps (docs/training.md).
    train_region, test_region = khf_data.spatial_split(
        crop, crop, scale, val_size=d["test_size"], psf_fwhm=d["psf_fwhm"]
    )
    rows, cols = train_region
    train_region, val_region = khf_data.spatial_split(
        rows.stop,
        cols.stop,
        scale,
        val_size=d["val_size"],
        axis=d["val_axis"],
        psf_fwhm=d["psf_fwhm"],
    )
    train = khf_data.FusionPatches(
        hr,
        scale,
        lr_hsi=lr,
        hr_msi=msi,
        patch_size=d["patch_size"],
        batch_size=d["batch_size"],
        patches_per_epoch=d["patches_per_epoch"],
        region=train_region,
        seed=seed,
    )

    def cut(region):
        rows, cols = region
        lr_rows = slice(rows.start // scale, rows.stop // scale)
        lr_cols = slice(cols.start // scale, cols.stop // scale)
        inputs = {"lr_hsi": lr[None, lr_rows, lr_cols], "hr_msi": msi[None, rows, cols]}
        return inputs, hr[None, rows, cols]

    val_inputs, val_target = cut(val_region)
    test_inputs, test_target = cut(test_region)
    return {
        "train": train,
        "val_inputs": val_inputs,
        "val_target": val_target,
        "test_inputs": test_inputs,
        "test_target": test_target,
        "scale": scale,
        "hsi_bands": hr.shape[-1],
        "msi_bands": msi.shape[-1],
        "wavelengths": wavelengths,
        "regions": {"train": train_region, "val": val_region, "test": test_region},
        "seed": seed,
        "val_conditions": None,
        "test_condition": {"psf_fwhm": d["psf_fwhm"], "noise_snr_db": d["noise_snr_db"]},
    }


def _fixed_or_none(spec):
    return None if isinstance(spec, dict) else spec


def _build_random_data(d, seed, hr, wavelengths, sampler):
    """`build_data` when the degradation is drawn from ranges (`data.DegradationSampler`).

    Training patches are simulated one by one under drawn conditions; the validation strip
    is simulated whole under `val_conditions` conditions drawn once from the same ranges
    (a batch of that many strips, recorded in the returned `val_conditions`); the test region
    under the nominal condition: the fixed values of the config, the protocol's defaults
    (FWHM = scale, no noise) for the parameters given as ranges. As in the fixed protocol,
    the HR-MSI sees every band; `band_step` thins the LR-HSI and the target.
    """
    scale, keep = d["scale"], slice(None, None, d["band_step"])
    cube = hr
    max_fwhm = sampler.max_psf_fwhm
    train_region, test_region = khf_data.spatial_split(
        hr.shape[0], hr.shape[1], scale, val_size=d["test_size"], psf_fwhm=max_fwhm
    )
    rows, cols = train_region
    train_region, val_region = khf_data.spatial_split(
        rows.stop, cols.stop, scale, val_size=d["val_size"], axis=d["val_axis"], psf_fwhm=max_fwhm
    )
    train = khf_data.FusionPatches(
        hr,
        scale,
        patch_size=d["patch_size"],
        batch_size=d["batch_size"],
        patches_per_epoch=d["patches_per_epoch"],
        region=train_region,
        seed=seed,
        degradations=sampler,
        hsi_bands=keep,
    )

    def cut(region, lr, msi):
        rows, cols = region
        lr_rows = slice(rows.start // scale, rows.stop // scale)
        lr_cols = slice(cols.start // scale, cols.stop // scale)
        lr = lr[None, lr_rows, lr_cols, keep]
        return lr, msi[None, rows, cols], cube[None, rows, cols, keep]

    conditions = sampler.fixed_conditions(d["val_conditions"], seed)
    val = []
    for k, cond in enumerate(conditions):
        lr, msi = khf_data.degrade(
            cube,
            scale,
            sampler.srf(cond),
            psf_fwhm=cond["psf_fwhm"],
            noise_snr_db=sampler.noise_snr_db(cond),
            seed=[seed, 0x7A1, k],
        )
        val.append(cut(val_region, lr, msi))
    snr = d["noise_snr_db"]
    if isinstance(snr, (list, tuple)):
        test_snr = [_fixed_or_none(s) for s in snr]
        test_snr = None if test_snr == [None, None] else test_snr
    else:
        test_snr = _fixed_or_none(snr)
    test_cond = {"psf_fwhm": _fixed_or_none(d["psf_fwhm"]), "noise_snr_db": test_snr}
    srf = khf_data.spectral_response(d["sensor"], wavelengths)
    lr, msi = khf_data.degrade(
        cube, scale, srf, psf_fwhm=test_cond["psf_fwhm"], noise_snr_db=test_snr, seed=seed
    )
    test_lr, test_msi, test_hr = cut(test_region, lr, msi)
    return {
        "train": train,
        "val_inputs": {
            "lr_hsi": np.concatenate([v[0] for v in val]),
            "hr_msi": np.concatenate([v[1] for v in val]),
        },
        "val_target": np.concatenate([v[2] for v in val]),
        "test_inputs": {"lr_hsi": test_lr, "hr_msi": test_msi},
        "test_target": test_hr,
        "scale": scale,
        "hsi_bands": test_hr.shape[-1],
        "msi_bands": test_msi.shape[-1],
        "wavelengths": wavelengths[keep],
        "regions": {"train": train_region, "val": val_region, "test": test_region},
        "seed": seed,
        "val_conditions": conditions,
        "test_condition": test_cond,
    }


def _build_file_data(d, seed):
    """`build_data` for reference scenes in files (`keras_hsifusion.data.open_scenes`).

    Regions: `data.split_scenes`; divisor: `normalise` or the training regions' maximum;
    training patches read from disk and simulated one by one (`LazyFusionPatches`);
    validation under `val_conditions` conditions drawn once from the degradation ranges,
    else, as the test region, under `nominal_condition`. Returns `build_data`'s keys, with
    `regions` as `[(scene name, box)]` lists, and `scenes` (names) and `divisor`.
    """
    scenes = khf_data.open_scenes(d["scene"], d["wavelengths"], d["key"], prefix="data.")
    scale, keep = d["scale"], slice(None, None, d["band_step"])
    sampler = khf_data.response_sampler(d, scale, scenes.wavelengths, scenes.bands)
    parts, joins = khf_data.split_scenes(
        scenes, d["split"], scale, d["crop"], d["test_size"], d["val_size"], d["val_axis"],
        psf_fwhm=sampler.max_psf_fwhm, prefix="data.",
    )  # fmt: skip
    noisy = sampler.snr_lr is not None or sampler.snr_msi is not None
    divisor, stats = d["normalise"], None
    if divisor == "max":  # one pass over the training regions, for the noise levels too
        stats = [khf_data.region_statistics(scenes[i], r, gram=noisy) for i, r in parts["train"]]
        divisor = max(st["max"] for st in stats)
    if not divisor > 0:
        raise ValueError(f"`data.normalise`='max': the training scenes are all <= 0 ({divisor})")
    train = khf_data.LazyFusionPatches(
        [scenes[i] for i, _ in parts["train"]], scale, sampler, [r for _, r in parts["train"]],
        divisor, d["patch_size"], d["batch_size"], d["patches_per_epoch"], hsi_bands=keep,
        statistics=stats, seed=seed,
    )  # fmt: skip
    val_conditions = sampler.fixed_conditions(d["val_conditions"], seed) if sampler.random else None
    test_condition = khf_data.nominal_condition(sampler)
    held_out = {
        key: khf_data.simulate_regions(
            scenes, parts[key], scale, sampler, conditions, divisor, keep, joins[key],
            seed=[seed, 0x7A1 if key == "val" else 0x7E5],
        )
        for key, conditions in (("val", val_conditions or [test_condition]),
                                ("test", [test_condition]))
    }  # fmt: skip
    return {
        "train": train,
        "val_inputs": held_out["val"][0],
        "val_target": held_out["val"][1],
        "test_inputs": held_out["test"][0],
        "test_target": held_out["test"][1],
        "scale": scale,
        "hsi_bands": held_out["test"][1].shape[-1],
        "msi_bands": held_out["test"][0]["hr_msi"].shape[-1],
        "wavelengths": None if scenes.wavelengths is None else scenes.wavelengths[keep],
        "regions": {k: [(scenes[i].name, r) for i, r in v] for k, v in parts.items()},
        "scenes": {k: [scenes[i].name for i, _ in v] for k, v in parts.items()},
        "divisor": float(divisor),
        "seed": seed,
        "val_conditions": val_conditions,
        "test_condition": {k: v for k, v in test_condition.items() if k != "lr_band_offsets_db"},
    }


def region_metrics(ref, est, scale, ssim=False):
    """PSNR, SAM, ERGAS, RMSE (and SSIM) of `est` against `ref` (`keras_hsifusion.metrics`)."""
    ref, est = np.asarray(ref), np.asarray(est)
    values = {
        "psnr": khf_metrics.psnr(ref, est),
        "sam": khf_metrics.sam(ref, est),
        "ergas": khf_metrics.ergas(ref, est, scale),
        "rmse": khf_metrics.rmse(ref, est),
    }
    if ssim:
        values["ssim"] = float(np.mean([khf_metrics.ssim(r, e) for r, e in zip(ref, est)]))
    return values


def evaluate_region(model, inputs, target, scale, clip=True, ssim=False):
    """PSNR/SAM/ERGAS/RMSE (and SSIM) of `model` on one whole region (numpy float64 metrics).

    Returns:
        `(metrics_dict, prediction)`; the prediction is a float32 `(1, H, W, C)` array.
    """
    pred = keras.ops.convert_to_numpy(model.predict_on_batch(inputs))
    # Under a tf.distribute strategy, `predict_on_batch` runs the whole batch on every
    # replica and concatenates their outputs: keep the first copy.
    pred = np.asarray(pred, dtype=np.float32)[: len(keras.tree.flatten(inputs)[0])]
    if clip:
        pred = np.clip(pred, 0.0, 1.0)
    return region_metrics(target, pred, scale, ssim=ssim), pred


def baseline_metrics(inputs, target, scale, ssim=True, clip=True):
    """Metrics of every method of `keras_hsifusion.baselines.METHODS` on one region."""
    out = {}
    for name, method in baselines.METHODS.items():
        est = method(inputs["lr_hsi"], inputs["hr_msi"], scale)
        if clip:
            est = est.clip(0.0, 1.0)
        out[name] = region_metrics(target, est, scale, ssim=ssim)
    return out
