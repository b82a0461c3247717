"""Training recipes: experiment configs, held-out validation, checkpoints and resume.

One experiment is one plain dict (a JSON file or a Python file defining `CONFIG`), in the
spirit of BasicSR: the data protocol, the model and its arguments, the optimiser and its
schedule, the loss and the number of epochs. `run_experiment(config, out_dir)` builds all of
it and calls `fit`; `training/run.py` is a thin command line around it.

Every epoch the model is evaluated on the whole held-out region (not on patches) with the
numpy metrics of `keras_hsifusion.metrics`, the best model is saved to `best.keras`, the last
one (with its optimiser state) to `last.keras` next to `state.json`, and the epoch logs go to
`log.csv` (and TensorBoard when it is available). `run_experiment(..., resume=True)` continues
an interrupted run from `last.keras` with `initial_epoch`.

Config keys (defaults in `DEFAULT_CONFIG`, `DEFAULT_DATA` and `DEFAULT_PRETRAIN`):

- `name`: experiment name. `seed`: seed of weights, patches and masks.
- `data`: `scene` (`"indian_pines"`), `crop` (HR side of the square crop, 144), `scale` (4),
  `sensor` (spectral response of the HR-MSI, `"sentinel2a-10m"`), `psf_fwhm`,
  `noise_snr_db`, `val_size` (HR columns of the held-out region on the right, 48),
  `band_step` (keep every k-th HSI band, 1; for quick tests), `patch_size` (HR, 32),
  `batch_size` (8), `patches_per_epoch` (64).
- `model`: `{"class": "HSSDCT" | "MSSTNet", **constructor arguments}`; `hsi_bands`,
  `msi_bands` and `scale` come from the data.
- `optimizer`: `{"class": <keras optimizer name>, **arguments}` (default Adam 1e-3).
- `schedule`: None, `{"class": "cosine", "alpha": ...}` (cosine decay over the whole run) or
  `{"class": "multistep", "milestones": [epochs...], "gamma": 0.1}`.
- `loss`: a `keras_hsifusion.losses` class name, a Keras loss name, or
  `{"class": ..., **arguments}`.
- `epochs`, `steps_per_epoch` (None: the whole `patches_per_epoch`), `monitor`
  (`"val_psnr"`, `"val_sam"`, `"val_ergas"` or `"val_rmse"`), `clip` (clip predictions to
  [0, 1] before the metrics, True), `tensorboard` (`"auto"`: when the `tensorflow` and
  `tensorboard` packages are installed; True, False).
- `jit_compile` (`"auto"`: on for JAX; off for TensorFlow, whose whole-network XLA compiles
  of these models take minutes on a CPU, and for PyTorch; or true/false) and `run_eagerly`
  (`"auto"`: on for TensorFlow only, where tracing these graphs into a `tf.function` takes
  minutes on a CPU while eager steps start at once; set false for long GPU runs).
- `pretrain` (MSSTNet only): `{"mbae": {...}, "mpae": {...}}`, each with `epochs`,
  `mask_ratio`, `decoder_num_layers`, `optimizer`, `schedule`, `steps_per_epoch`; the three
  MBAEs (widths D, D/2, 2D) and three MPAEs (patch sizes p, p/2, 2p) are trained on the
  training region and their encoders transferred with `MSSTNet.load_pretrained_encoders`
  before the fine-tuning stage.
"""

import copy
import csv
import importlib.util
import inspect
import json
import math
import os
import runpy
import time

import keras
import numpy as np

from keras_hsifusion import losses as khf_losses
from keras_hsifusion import metrics as khf_metrics

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_DATA",
    "DEFAULT_PRETRAIN",
    "AutoencoderPatches",
    "ExperimentCheckpoint",
    "HeldOutMetrics",
    "bicubic_upsample",
    "build_data",
    "build_loss",
    "build_model",
    "build_optimizer",
    "load_config",
    "read_state",
    "resolve_jit_compile",
    "resolve_run_eagerly",
    "run_experiment",
    "validate_config",
]

DEFAULT_DATA = {
    "scene": "indian_pines",
    "crop": 144,
    "scale": 4,
    "sensor": "sentinel2a-10m",
    "psf_fwhm": None,
    "noise_snr_db": None,
    "test_size": 48,
    "val_size": 24,
    "val_axis": 1,
    "band_step": 1,
    "patch_size": 32,
    "batch_size": 8,
    "patches_per_epoch": 64,
}
DEFAULT_CONFIG = {
    "name": "experiment",
    "seed": 0,
    "data": DEFAULT_DATA,
    "model": None,
    "optimizer": {"class": "Adam", "learning_rate": 1e-3},
    "schedule": None,
    "loss": "mae",
    "epochs": 10,
    "steps_per_epoch": None,
    "monitor": "val_psnr",
    "tensorboard": "auto",
    "clip": True,
    "jit_compile": "auto",
    "run_eagerly": "auto",
    "pretrain": None,
}
DEFAULT_PRETRAIN = {
    "epochs": 5,
    "steps_per_epoch": None,
    "mask_ratio": None,
    "decoder_num_layers": 2,
    "optimizer": {"class": "Adam", "learning_rate": 1e-3},
    "schedule": None,
}
_MONITORS = {"val_psnr": "max", "val_sam": "min", "val_ergas": "min", "val_rmse": "min"}
_SCENES = ("indian_pines",)


def _models():
    from keras_hsifusion.applications import HSSDCT, MSSTNet

    return {"HSSDCT": HSSDCT, "MSSTNet": MSSTNet}


# --------------------------------------------------------------------------- config


def load_config(path):
    """Reads an experiment config from a `.json` file or a `.py` file defining `CONFIG`.

    Args:
        path: path of the file.

    Returns:
        the validated config with every default filled in (see `validate_config`).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No config file at {path!r}")
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            try:
                config = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"Config file {path!r} is not valid JSON: {e}") from e
    elif path.endswith(".py"):
        namespace = runpy.run_path(path)
        if "CONFIG" not in namespace:
            raise ValueError(f"Config file {path!r} must define a dict named `CONFIG`.")
        config = namespace["CONFIG"]
    else:
        raise ValueError(f"Config files are .json or .py. Received: path={path!r}")
    return validate_config(config)


def _check_keys(section, given, allowed):
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(
            f"Unknown key(s) {unknown} in `{section}`. Allowed: {sorted(allowed)}. "
            f"Received: {section}={given!r}"
        )


def _check_int(name, value, minimum=1, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")


def _check_class(section, spec):
    if isinstance(spec, str):
        return {"class": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("class"), str):
        raise ValueError(
            f'`{section}` must be a name or a dict with a "class" name. Received: '
            f"{section}={spec!r}"
        )
    return dict(spec)


def _check_optimizer(section, spec):
    spec = _check_class(section, spec)
    args = {k: v for k, v in spec.items() if k != "class"}
    try:
        keras.optimizers.get({"class_name": spec["class"], "config": args})
    except (ValueError, TypeError) as e:
        raise ValueError(f"Invalid `{section}`: {e}. Received: {section}={spec!r}") from e
    return spec


def _check_schedule(section, spec, epochs):
    if spec is None:
        return None
    spec = _check_class(section, spec)
    kind = spec["class"]
    if kind == "cosine":
        _check_keys(section, spec, {"class", "alpha"})
        alpha = spec.setdefault("alpha", 0.0)
        if not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
            raise ValueError(f"`{section}.alpha` must be in [0, 1]. Received: alpha={alpha!r}")
    elif kind == "multistep":
        _check_keys(section, spec, {"class", "milestones", "gamma"})
        milestones = spec.get("milestones")
        if (
            not isinstance(milestones, (list, tuple))
            or not milestones
            or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in milestones)
            or list(milestones) != sorted(set(milestones))
        ):
            raise ValueError(
                f"`{section}.milestones` must be increasing positive epoch numbers. "
                f"Received: milestones={milestones!r}"
            )
        spec["milestones"] = list(milestones)
        spec.setdefault("gamma", 0.1)
    else:
        raise ValueError(
            f"`{section}.class` must be 'cosine' or 'multistep'. Received: class={kind!r}"
        )
    return spec


def _check_loss(section, spec):
    spec = _check_class(section, spec)
    build_loss(spec)  # raises a ValueError naming the loss
    return spec


def validate_config(config):
    """Checks an experiment config and fills in the defaults.

    Args:
        config: dict (see the module docstring).

    Returns:
        a new dict with every key present.

    Raises:
        ValueError: naming the key and the value received, for unknown keys, wrong types or
            values, unknown model/optimizer/loss classes and constructor arguments the model
            does not take.
    """
    if not isinstance(config, dict):
        raise ValueError(f"A config must be a dict. Received: {type(config).__name__}")
    _check_keys("config", config, DEFAULT_CONFIG)
    out = copy.deepcopy(DEFAULT_CONFIG)
    out.update(copy.deepcopy(config))

    data = out["data"] if out["data"] is not None else {}
    if not isinstance(data, dict):
        raise ValueError(f"`data` must be a dict. Received: data={data!r}")
    _check_keys("data", data, DEFAULT_DATA)
    data = {**DEFAULT_DATA, **data}
    if data["scene"] not in _SCENES:
        raise ValueError(f"`data.scene` must be one of {_SCENES}. Received: {data['scene']!r}")
    for key in ("crop", "scale", "test_size", "val_size", "band_step", "patch_size", "batch_size"):
        _check_int(f"data.{key}", data[key])
    _check_int("data.patches_per_epoch", data["patches_per_epoch"], allow_none=True)
    if data["val_axis"] not in (0, 1):
        raise ValueError(f"`data.val_axis` must be 0 or 1. Received: {data['val_axis']!r}")
    if data["patch_size"] % data["scale"]:
        raise ValueError(
            f"`data.patch_size` must be a multiple of `data.scale` ({data['scale']}). "
            f"Received: patch_size={data['patch_size']}"
        )
    out["data"] = data

    _check_int("seed", out["seed"], minimum=0)
    _check_int("epochs", out["epochs"])
    _check_int("steps_per_epoch", out["steps_per_epoch"], allow_none=True)
    if not isinstance(out["name"], str) or not out["name"]:
        raise ValueError(f"`name` must be a non-empty string. Received: name={out['name']!r}")
    if out["monitor"] not in _MONITORS:
        raise ValueError(
            f"`monitor` must be one of {sorted(_MONITORS)}. Received: monitor={out['monitor']!r}"
        )
    if out["jit_compile"] not in ("auto", True, False):
        raise ValueError(
            f"`jit_compile` must be 'auto', true or false. Received: {out['jit_compile']!r}"
        )
    if out["run_eagerly"] not in ("auto", True, False):
        raise ValueError(
            f"`run_eagerly` must be 'auto', true or false. Received: {out['run_eagerly']!r}"
        )
    if out["tensorboard"] not in ("auto", True, False):
        raise ValueError(
            f"`tensorboard` must be 'auto', true or false. Received: {out['tensorboard']!r}"
        )

    model = out["model"]
    if model is None:
        raise ValueError('`model` is required, e.g. {"class": "HSSDCT", "nf": 32, "gc": 16}.')
    model = _check_class("model", model)
    classes = _models()
    if model["class"] not in classes:
        raise ValueError(
            f"`model.class` must be one of {sorted(classes)}. Received: class={model['class']!r}"
        )
    params = inspect.signature(classes[model["class"]].__init__).parameters
    reserved = {"hsi_bands", "msi_bands", "scale"}
    allowed = {p for p in params if p not in ("self", "kwargs", "dtype")} - reserved
    _check_keys("model", model, allowed | {"class"})
    out["model"] = model

    out["optimizer"] = _check_optimizer("optimizer", out["optimizer"])
    out["schedule"] = _check_schedule("schedule", out["schedule"], out["epochs"])
    out["loss"] = _check_loss("loss", out["loss"])

    pretrain = out["pretrain"]
    if pretrain is not None:
        if model["class"] != "MSSTNet":
            raise ValueError(
                f"`pretrain` is only for MSSTNet (MBAE/MPAE). Received: model.class="
                f"{model['class']!r}"
            )
        if not isinstance(pretrain, dict):
            raise ValueError(f"`pretrain` must be a dict. Received: pretrain={pretrain!r}")
        _check_keys("pretrain", pretrain, {"mbae", "mpae"})
        checked = {}
        for stage in ("mbae", "mpae"):
            spec = pretrain.get(stage)
            if spec is None:
                checked[stage] = None
                continue
            if not isinstance(spec, dict):
                raise ValueError(f"`pretrain.{stage}` must be a dict. Received: {spec!r}")
            _check_keys(f"pretrain.{stage}", spec, DEFAULT_PRETRAIN)
            spec = {**copy.deepcopy(DEFAULT_PRETRAIN), **spec}
            _check_int(f"pretrain.{stage}.epochs", spec["epochs"])
            _check_int(f"pretrain.{stage}.steps_per_epoch", spec["steps_per_epoch"], 1, True)
            _check_int(f"pretrain.{stage}.decoder_num_layers", spec["decoder_num_layers"])
            ratio = spec["mask_ratio"]
            if ratio is not None and (
                isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio < 1
            ):
                raise ValueError(
                    f"`pretrain.{stage}.mask_ratio` must be in [0, 1). Received: {ratio!r}"
                )
            spec["optimizer"] = _check_optimizer(f"pretrain.{stage}.optimizer", spec["optimizer"])
            spec["schedule"] = _check_schedule(
                f"pretrain.{stage}.schedule", spec["schedule"], spec["epochs"]
            )
            checked[stage] = spec
        out["pretrain"] = checked
    return out


# --------------------------------------------------------------------------- builders


def build_data(config):
    """Simulates the scene of a config and cuts its training, validation and test regions.

    The scene (cropped, every `band_step`-th band) is degraded once as a whole (Wald
    protocol, `keras_hsifusion.data.degrade`); `spatial_split` keeps the rightmost
    `test_size` columns as the held-out test region, then carves the bottom `val_size` rows
    of the rest as the validation strip (model selection); guard bands make sure that no HR
    pixel (nor the PSF support of an LR pixel) is shared between any two regions.

    Args:
        config: a validated config (or its `data` dict).

    Returns:
        dict with `train` (a `FusionPatches` over the training region), `val_inputs`
        (`{"lr_hsi": (1, h, w, C), "hr_msi": (1, H, W, c)}` of the validation strip),
        `val_target` (`(1, H, W, C)`), `test_inputs` and `test_target` (the held-out test
        region), `scale`, `hsi_bands`, `msi_bands`, `wavelengths`, `regions` (`{"train",
        "val", "test"}`: `(row_slice, col_slice)` HR boxes) and `seed`.
    """
    from keras_hsifusion import data as khf_data

    seed = config.get("seed", 0) if "data" in config else 0
    d = config["data"] if "data" in config else {**DEFAULT_DATA, **config}
    cube, wavelengths = khf_data.indian_pines()
    crop, scale, step = d["crop"], d["scale"], d["band_step"]
    if crop > min(cube.shape[:2]):
        raise ValueError(
            f"`data.crop` must be at most {min(cube.shape[:2])} for {d['scene']}. "
            f"Received: crop={crop}"
        )
    cube = np.ascontiguousarray(cube[:crop, :crop])
    srf = khf_data.spectral_response(d["sensor"], wavelengths)
    # The MSI sees the whole spectrum; `band_step` only thins the HSI (input and target).
    lr, msi = khf_data.degrade(
        cube, scale, srf, psf_fwhm=d["psf_fwhm"], noise_snr_db=d["noise_snr_db"], seed=seed
    )
    lr, hr = np.ascontiguousarray(lr[..., ::step]), np.ascontiguousarray(cube[..., ::step])
    wavelengths = wavelengths[::step]
    # Held-out test region: the rightmost `test_size` columns. Validation strip (for model
    # selection): the last `val_size` columns (`val_axis` 1, mirroring the test split; 0:
    # the bottom rows) of what is left, with the same kind of guard band.
    train_region, test_region = khf_data.spatial_split(
        crop, crop, scale, val_size=d["test_size"], psf_fwhm=d["psf_fwhm"]
    )
    rows, cols = train_region
    train_region, val_region = khf_data.spatial_split(
        rows.stop, cols.stop, scale, val_size=d["val_size"], axis=d["val_axis"],
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
    }


def build_model(model_config, hsi_bands, msi_bands, scale):
    """Builds the model of a config (`{"class": ..., **arguments}`) for the given data."""
    spec = dict(_check_class("model", model_config))
    name = spec.pop("class")
    classes = _models()
    if name not in classes:
        raise ValueError(f"`model.class` must be one of {sorted(classes)}. Received: {name!r}")
    return classes[name](hsi_bands=hsi_bands, msi_bands=msi_bands, scale=scale, **spec)


def build_loss(loss_config):
    """A loss from a `keras_hsifusion.losses` class name, a Keras loss name, or a dict."""
    spec = dict(_check_class("loss", loss_config))
    name = spec.pop("class")
    cls = getattr(khf_losses, name, None)
    if isinstance(cls, type) and issubclass(cls, keras.losses.Loss):
        try:
            return cls(**spec)
        except TypeError as e:
            raise ValueError(f"Invalid arguments for loss {name!r}: {e}. Received: {spec}") from e
    try:
        if spec:
            return keras.losses.get({"class_name": name, "config": spec})
        loss = keras.losses.get(name)
    except (ValueError, TypeError) as e:
        raise ValueError(f"Unknown loss. Received: loss={name!r}") from e
    if loss is None:
        raise ValueError(f"Unknown loss. Received: loss={name!r}")
    return loss


def build_optimizer(optimizer_config, schedule_config=None, steps_per_epoch=1, epochs=1):
    """An optimiser (`{"class": ..., **arguments}`) with an optional learning-rate schedule.

    Args:
        optimizer_config: e.g. `{"class": "Adam", "learning_rate": 1e-3}`.
        schedule_config: None, `{"class": "cosine", "alpha": a}` (cosine decay from the
            learning rate to `a` times it over `epochs * steps_per_epoch` steps) or
            `{"class": "multistep", "milestones": [e1, e2], "gamma": g}` (multiplied by `g`
            after each milestone epoch, like torch's `MultiStepLR`).
        steps_per_epoch: optimiser steps per epoch.
        epochs: epochs of the whole run.
    """
    spec = dict(_check_class("optimizer", optimizer_config))
    name = spec.pop("class")
    schedule = _check_schedule("schedule", copy.deepcopy(schedule_config), epochs)
    if schedule is not None:
        lr = float(spec.pop("learning_rate", 1e-3))
        if schedule["class"] == "cosine":
            spec["learning_rate"] = keras.optimizers.schedules.CosineDecay(
                lr, decay_steps=max(1, epochs * steps_per_epoch), alpha=schedule["alpha"]
            )
        else:
            boundaries = [m * steps_per_epoch for m in schedule["milestones"]]
            values = [lr * schedule["gamma"] ** i for i in range(len(boundaries) + 1)]
            spec["learning_rate"] = keras.optimizers.schedules.PiecewiseConstantDecay(
                boundaries, values
            )
    return keras.optimizers.get({"class_name": name, "config": spec})


def bicubic_upsample(lr_hsi, scale):
    """Bicubic upsampling of an LR-HSI (torch's kernel, a = -0.75), as a numpy float32 array.

    Args:
        lr_hsi: `(h, w, C)` or `(B, h, w, C)`.
        scale: integer ratio.
    """
    from keras_hsifusion.ops import interpolate

    x = np.asarray(lr_hsi, dtype=np.float32)
    batched = x.ndim == 4
    y = interpolate(x if batched else x[None], scale_factor=scale, mode="bicubic")
    y = np.asarray(keras.ops.convert_to_numpy(y), dtype=np.float32)
    return y if batched else y[0]


class AutoencoderPatches(keras.utils.PyDataset):
    """`(x, x)` batches of one input of a `FusionPatches` (`"lr_hsi"` or `"hr_msi"`).

    The training data of MSST-Net's MBAE (LR-HSI) and MPAE (HR-MSI) pretrainers.

    Args:
        patches: a `FusionPatches`.
        key: `"lr_hsi"` or `"hr_msi"`.
    """

    def __init__(self, patches, key, **kwargs):
        super().__init__(**kwargs)
        if key not in ("lr_hsi", "hr_msi"):
            raise ValueError(f"`key` must be 'lr_hsi' or 'hr_msi'. Received: key={key!r}")
        self.patches, self.key = patches, key

    def __len__(self):
        return len(self.patches)

    def __getitem__(self, index):
        x = self.patches[index][0][self.key]
        return x, x

    def on_epoch_end(self):
        self.patches.on_epoch_end()

    @property
    def epoch(self):
        return self.patches.epoch

    @epoch.setter
    def epoch(self, value):
        self.patches.epoch = value


# --------------------------------------------------------------------------- callbacks


def evaluate_region(model, inputs, target, scale, clip=True, ssim=False):
    """PSNR/SAM/ERGAS/RMSE (and SSIM) of `model` on one whole region (numpy float64 metrics).

    Returns:
        `(metrics_dict, prediction)`; the prediction is a float32 `(1, H, W, C)` array.
    """
    pred = keras.ops.convert_to_numpy(model.predict_on_batch(inputs))
    pred = np.asarray(pred, dtype=np.float32)
    if clip:
        pred = np.clip(pred, 0.0, 1.0)
    return region_metrics(target, pred, scale, ssim=ssim), pred


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


def baseline_metrics(inputs, target, scale, ssim=True):
    """Metrics of the parameter-free estimates (`layers.GlobalSkip`) on one region."""
    from keras_hsifusion.layers.global_skip import GlobalSkip

    out = {}
    for mode in ("bicubic", "detail_injection"):
        est = GlobalSkip(mode, scale)([inputs["lr_hsi"], inputs["hr_msi"]])
        est = np.clip(keras.ops.convert_to_numpy(est), 0.0, 1.0)
        out[mode] = region_metrics(target, est, scale, ssim=ssim)
    return out


class HeldOutMetrics(keras.callbacks.Callback):
    """Evaluates the model on a whole held-out region at the end of every epoch.

    Adds `val_psnr`, `val_sam`, `val_ergas` and `val_rmse` to the epoch logs, so that
    callbacks placed after it in the list (`CSVLogger`, `ExperimentCheckpoint`,
    `TensorBoard`, `EarlyStopping`) see them. The region is predicted in one call (not cut
    into patches) and the metrics are the numpy functions of `keras_hsifusion.metrics`.

    Args:
        inputs: `{"lr_hsi": (1, h, w, C), "hr_msi": (1, H, W, c)}`.
        target: `(1, H, W, C)` reference.
        scale: ratio, for ERGAS.
        clip: clip the prediction to [0, 1] first (the data range). Default True.
        prefix: prefix of the log keys. Default `"val_"`.

    Attributes:
        history: the metrics of every epoch. prediction: the last prediction `(1, H, W, C)`.
    """

    def __init__(self, inputs, target, scale, clip=True, prefix="val_"):
        super().__init__()
        self.inputs, self.target = inputs, np.asarray(target)
        self.scale, self.clip, self.prefix = scale, clip, prefix
        self.history = []
        self.prediction = None

    def on_epoch_end(self, epoch, logs=None):
        values, self.prediction = evaluate_region(
            self.model, self.inputs, self.target, self.scale, self.clip
        )
        self.history.append(values)
        if logs is not None:
            logs.update({self.prefix + k: v for k, v in values.items()})


def read_state(out_dir):
    """The `state.json` of a run directory (`{"epoch": completed epochs, ...}`), or None."""
    path = os.path.join(os.fspath(out_dir), "state.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _atomic_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1)
    os.replace(tmp, path)


def _scalars(logs):
    return {k: float(v) for k, v in logs.items() if np.ndim(v) == 0}


class ExperimentCheckpoint(keras.callbacks.Callback):
    """Saves `best.keras`, `last.keras` and `state.json` at the end of every epoch.

    `last.keras` holds the model with its optimiser state (written to a temporary file and
    renamed, so an interruption never leaves a truncated checkpoint); `state.json` holds the
    number of completed epochs and the best value so far, so that a resumed run continues
    with the right `initial_epoch` and keeps comparing against the same best.

    Args:
        out_dir: directory of the run.
        monitor: log key that decides the best model (e.g. `"val_psnr"`), or None to save
            only the last model.
        mode: `"max"` or `"min"`.
        state: the state of the run being resumed (from `read_state`), or None.
        extra_state: dict stored in `state.json` too.
    """

    def __init__(self, out_dir, monitor=None, mode="max", state=None, extra_state=None):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"`mode` must be 'max' or 'min'. Received: mode={mode!r}")
        self.out_dir, self.monitor, self.mode = os.fspath(out_dir), monitor, mode
        state = state or {}
        self.best = state.get("best")
        self.best_epoch = state.get("best_epoch")
        self.best_logs = state.get("best_logs")
        self.extra_state = dict(extra_state or {})

    def _improved(self, value):
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        os.makedirs(self.out_dir, exist_ok=True)
        if self.monitor is not None:
            if self.monitor not in logs:
                raise ValueError(
                    f"`monitor` {self.monitor!r} is not in the epoch logs {sorted(logs)}; put "
                    "the callback that computes it (e.g. HeldOutMetrics) before this one."
                )
            value = float(logs[self.monitor])
            if math.isfinite(value) and self._improved(value):
                self.best, self.best_epoch = value, epoch + 1
                self.best_logs = _scalars(logs)
                self.model.save(os.path.join(self.out_dir, "best.keras"))
        tmp = os.path.join(self.out_dir, "last_tmp.keras")
        self.model.save(tmp)
        os.replace(tmp, os.path.join(self.out_dir, "last.keras"))
        state = {
            **self.extra_state,
            "epoch": epoch + 1,
            "monitor": self.monitor,
            "mode": self.mode,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "best_logs": self.best_logs,
            "logs": _scalars(logs),
        }
        _atomic_json(os.path.join(self.out_dir, "state.json"), state)


# --------------------------------------------------------------------------- runner


def resolve_jit_compile(value="auto"):
    """`jit_compile` for `compile`: `"auto"` is True on JAX only (see the module docstring)."""
    if value == "auto":
        return keras.backend.backend() == "jax"
    return bool(value)


def resolve_run_eagerly(value="auto"):
    """`run_eagerly` for `compile`: `"auto"` is True on TensorFlow only (module docstring)."""
    if value == "auto":
        return keras.backend.backend() == "tensorflow"
    return bool(value)


def _tensorboard_available():
    # Keras' TensorBoard callback writes with tf.summary, which needs both packages.
    return all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "tensorboard"))


def _truncate_csv(path, rows):
    # A run killed after the CSV row of an epoch but before its checkpoint would log that
    # epoch twice after resuming: keep the header and the rows of the completed epochs.
    if not os.path.isfile(path):
        return
    with open(path, newline="", encoding="utf-8") as f:
        lines = list(csv.reader(f))
    if len(lines) > rows + 1:
        with open(path, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(lines[: rows + 1])


def _fit_stage(
    build,
    train,
    out_dir,
    epochs,
    steps_per_epoch,
    resume,
    verbose,
    extra_callbacks=(),
    monitor=None,
    tensorboard=False,
    log=print,
    extra_state=None,
):
    """Builds (or resumes) and fits one model; returns `(model, state)`."""
    os.makedirs(out_dir, exist_ok=True)
    state = read_state(out_dir) if resume else None
    last = os.path.join(out_dir, "last.keras")
    if state is not None and not os.path.isfile(last):
        state = None
    if state is not None and state["epoch"] >= epochs:
        log(f"[{out_dir}] already trained for {state['epoch']} epoch(s); skipping.")
        return keras.models.load_model(last), state
    if state is not None:
        log(f"[{out_dir}] resuming after epoch {state['epoch']} from {last}")
        model = keras.models.load_model(last)
        initial_epoch = state["epoch"]
    else:
        if resume:
            log(f"[{out_dir}] nothing to resume; starting from scratch.")
        model = build()
        initial_epoch = 0
    train.epoch = initial_epoch  # the patch positions of a resumed run continue the sequence
    csv_path = os.path.join(out_dir, "log.csv")
    if initial_epoch == 0 and os.path.isfile(csv_path):
        os.remove(csv_path)
    _truncate_csv(csv_path, initial_epoch)
    mode = _MONITORS.get(monitor, "max")
    callbacks = [
        *extra_callbacks,
        keras.callbacks.CSVLogger(csv_path, append=True),
        ExperimentCheckpoint(out_dir, monitor, mode, state, extra_state),
    ]
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(out_dir, "tensorboard")))
    model.fit(
        train,
        epochs=epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        verbose=verbose,
    )
    return model, read_state(out_dir)


def _pretrain_stages(config, data, net, out_dir, resume, verbose, log):
    """Trains the three MBAEs and three MPAEs of an MSSTNet; returns their `last.keras` paths."""
    from keras_hsifusion.applications import MBAE, MPAE

    pretrain = config["pretrain"]
    paths = {"mbae": None, "mpae": None}
    d = net.hsi_embed_dim
    p = net.patch_size
    stages = {
        "mbae": [
            (
                f"mbae_{dim}",
                lambda dim=dim, spec=None: MBAE(
                    net.hsi_bands,
                    dim,
                    heads=net.hsi_heads,
                    num_layers=net.hsi_num_layers,
                    decoder_num_layers=spec["decoder_num_layers"],
                    reference_size=net.reference_size,
                    seed=config["seed"],
                    **_ratio(spec),
                ),
            )
            for dim in (d, d // 2, 2 * d)
        ],
        "mpae": [
            (
                f"mpae_{size}",
                lambda size=size, spec=None: MPAE(
                    net.msi_bands,
                    net.msi_embed_dim,
                    size,
                    heads=net.msi_heads,
                    num_layers=net.msi_num_layers,
                    decoder_num_layers=spec["decoder_num_layers"],
                    reference_size=[net.scale * s for s in net.reference_size],
                    seed=config["seed"],
                    **_ratio(spec),
                ),
            )
            for size in (p, p // 2, 2 * p)
        ],
    }
    for kind, key in (("mbae", "lr_hsi"), ("mpae", "hr_msi")):
        spec = pretrain.get(kind)
        if spec is None:
            continue
        stage_paths = []
        for stage_name, make in stages[kind]:
            train = AutoencoderPatches(data["train"], key)
            steps = spec["steps_per_epoch"] or len(train)

            def build(make=make, spec=spec, steps=steps):
                keras.utils.set_random_seed(config["seed"])
                model = make(spec=spec)
                model.compile(
                    optimizer=build_optimizer(
                        spec["optimizer"], spec["schedule"], steps, spec["epochs"]
                    ),
                    loss="mse",
                    jit_compile=resolve_jit_compile(config["jit_compile"]),
                    run_eagerly=resolve_run_eagerly(config["run_eagerly"]),
                )
                return model

            stage_dir = os.path.join(out_dir, stage_name)
            log(f"=== pretraining {stage_name} ({spec['epochs']} epochs)")
            _fit_stage(
                build,
                train,
                stage_dir,
                spec["epochs"],
                spec["steps_per_epoch"],
                resume,
                verbose,
                log=log,
                extra_state={"stage": stage_name},
            )
            stage_paths.append(os.path.join(stage_dir, "last.keras"))
        data["train"].epoch = 0
        paths[kind] = stage_paths
    return paths


def _ratio(spec):
    return {} if spec["mask_ratio"] is None else {"mask_ratio": spec["mask_ratio"]}


def run_experiment(config, out_dir, epochs=None, resume=False, verbose="auto", log=print):
    """Runs one experiment: data, (pretraining,) model, optimiser, loss, `fit`, checkpoints.

    Writes to `out_dir`: `config.json` (the validated config), `best.keras` (best
    `monitor` on the held-out region), `last.keras` + `state.json` (every epoch, for
    `resume`), `log.csv` (one row per epoch: loss, learning rate, `val_psnr`, `val_sam`,
    `val_ergas`, `val_rmse`), `tensorboard/` (when TensorBoard is available), `results.json`
    (bicubic and best-model metrics on the held-out region, wall time). MSSTNet configs with
    `pretrain` first train their MBAEs/MPAEs in `out_dir/mbae_*` and `out_dir/mpae_*`.

    Args:
        config: a config dict (validated here) or a path to a config file.
        out_dir: run directory.
        epochs: overrides `config["epochs"]` (the total, not additional, epochs).
        resume: continue from `out_dir/last.keras` (each stage where it stopped).
        verbose: `fit` verbosity (`"auto"`: a progress bar).
        log: function used for the runner's own messages.

    Returns:
        the `results.json` dict.
    """
    start = time.time()
    config = load_config(config) if isinstance(config, (str, os.PathLike)) else config
    config = validate_config(config)
    if epochs is not None:
        _check_int("epochs", epochs)
        config["epochs"] = epochs
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    _atomic_json(os.path.join(out_dir, "config.json"), config)
    keras.utils.set_random_seed(config["seed"])

    data = build_data(config)
    scale = data["scale"]
    args = (data["hsi_bands"], data["msi_bands"], scale)
    steps = config["steps_per_epoch"] or len(data["train"])

    pretrained = None
    if config["pretrain"] is not None:
        probe = build_model(config["model"], *args)
        pretrained = _pretrain_stages(config, data, probe, out_dir, resume, verbose, log)
        del probe

    def build():
        keras.utils.set_random_seed(config["seed"])
        model = build_model(config["model"], *args)
        if pretrained is not None:
            model.load_pretrained_encoders(mbae=pretrained["mbae"], mpae=pretrained["mpae"])
        model.compile(
            optimizer=build_optimizer(
                config["optimizer"], config["schedule"], steps, config["epochs"]
            ),
            loss=build_loss(config["loss"]),
            jit_compile=resolve_jit_compile(config["jit_compile"]),
            run_eagerly=resolve_run_eagerly(config["run_eagerly"]),
        )
        return model

    tensorboard = config["tensorboard"]
    if tensorboard == "auto":
        tensorboard = _tensorboard_available()
    elif tensorboard and not _tensorboard_available():
        raise ValueError(
            "`tensorboard` is true but TensorBoard logging needs the `tensorflow` and "
            "`tensorboard` packages; install them or set tensorboard to 'auto' or false."
        )
    held_out = HeldOutMetrics(data["val_inputs"], data["val_target"], scale, config["clip"])
    if pretrained is not None:
        log(f"=== fine-tuning {config['model']['class']} ({config['epochs']} epochs)")
    model, state = _fit_stage(
        build,
        data["train"],
        out_dir,
        config["epochs"],
        config["steps_per_epoch"],
        resume,
        verbose,
        extra_callbacks=[held_out],
        monitor=config["monitor"],
        tensorboard=tensorboard,
        log=log,
        extra_state={"stage": "main"},
    )
    results = {
        "name": config["name"],
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "epochs": state["epoch"] if state else config["epochs"],
        "best_epoch": state.get("best_epoch") if state else None,
        "monitor": config["monitor"],
        "val": state.get("best_logs") if state else None,
        "test": None,
        "baselines": baseline_metrics(data["test_inputs"], data["test_target"], scale),
        "wall_time_s": time.time() - start,
    }
    best_path = os.path.join(out_dir, "best.keras")
    if os.path.isfile(best_path):
        # The one evaluation of the held-out test region: after selection, on the best model.
        best_model = keras.models.load_model(best_path)
        results["test"], _ = evaluate_region(
            best_model, data["test_inputs"], data["test_target"], scale, config["clip"], ssim=True
        )
    del model
    _atomic_json(os.path.join(out_dir, "results.json"), results)
    return results
