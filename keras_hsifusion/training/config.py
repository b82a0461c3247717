"""Experiment configs: the schema, its defaults and its validation.

One experiment is one plain dict (a JSON file or a Python file defining `CONFIG`), in the
spirit of BasicSR. Keys (defaults in `DEFAULT_CONFIG` and `DEFAULT_DATA`):

- `name`: experiment name. `seed`: seed of weights, patches and masks.
- `data`: `scene` (`"indian_pines"`), `crop` (HR side of the square crop, 144), `scale` (4),
  `sensor` (spectral response of the HR-MSI, `"sentinel2a-10m"`), the degradation —
  `psf_fwhm`, `noise_snr_db`, `noise_profile`, `noise_profile_depth_db`, `msi_shift_nm`,
  `msi_width_scale`: single values or ranges drawn per training patch, see
  `keras_hsifusion.data.conditions` — and `val_conditions` (how many validation conditions
  are drawn once from those ranges, 4), `test_size` (HR columns of the held-out test region
  on the right, 48),
  `val_size` (HR size of the validation strip carved from the training region, 24) and
  `val_axis` (1: its last columns, mirroring the test split; 0: its bottom rows),
  `band_step` (keep every k-th HSI band, 1; for quick tests), `patch_size` (HR, 32),
  `batch_size` (8), `patches_per_epoch` (64).
- `model`: `{"class": <class name of a registered zoo model>, **constructor arguments}`
  (`keras_hsifusion.applications.registry`); `hsi_bands`, `msi_bands` and `scale` come from
  the data.
- `optimizer`: `{"class": <keras optimizer name>, **arguments}` (default Adam 1e-3).
- `schedule`: None, `{"class": "cosine", "alpha": ...}` (cosine decay over the whole run) or
  `{"class": "multistep", "milestones": [epochs...], "gamma": 0.1}`.
- `loss`: a `keras_hsifusion.losses` class name, a Keras loss name, or
  `{"class": ..., **arguments}`.
- `epochs`, `steps_per_epoch` (None: the whole `patches_per_epoch`), `monitor`
  (`"val_psnr"`, `"val_sam"`, `"val_ergas"` or `"val_rmse"`, measured on the validation
  strip), `clip` (clip predictions to [0, 1] before the metrics, True), `tensorboard`
  (`"auto"`: when the `tensorflow` and `tensorboard` packages are installed; True, False).
- `jit_compile` (`"auto"`: on for JAX; off for TensorFlow, whose whole-network XLA compiles
  of these models take minutes on a CPU, and for PyTorch; or true/false) and `run_eagerly`
  (`"auto"`: off — a `tf.function` graph on TensorFlow, 4-5x faster per step than eager —
  except for a TensorFlow stage of fewer than `runner.GRAPH_MIN_STEPS` (32) optimiser
  steps, where tracing would cost more than it saves; or true/false).
- `distribution`: None (one device) or `"data_parallel"` (or `{"class": "data_parallel",
  "devices": N}`): the same recipe on N replicas of the backend's own engine, with
  `data.batch_size` the global batch and the learning rate unscaled
  (`keras_hsifusion.training.distributed`, docs/distributed.md).
- The keys of a model's training recipe (`ModelSpec.recipe.config_keys`), e.g. MSST-Net's
  `pretrain` (its MBAE/MPAE stages: `keras_hsifusion.applications.msst_net.recipe`). Every
  registered recipe key is present in a validated config, at its default unless the
  config's model owns it.
"""

import copy
import inspect
import json
import os
import runpy

import numpy as np

from keras_hsifusion.applications.registry import model_specs
from keras_hsifusion.data.conditions import DegradationSampler
from keras_hsifusion.training.builders import DEFAULT_DATA, build_loss, model_spec
from keras_hsifusion.training.distributed import check_distribution
from keras_hsifusion.utils.validation import (
    check_choice,
    check_class_spec,
    check_int,
    check_keys,
    check_optimizer,
    check_schedule,
)

__all__ = ["DEFAULT_CONFIG", "DEFAULT_DATA", "MONITORS", "load_config", "validate_config"]

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
    "distribution": None,
}
# Model selection: the monitored validation metric and whether larger is better.
MONITORS = {"val_psnr": "max", "val_sam": "min", "val_ergas": "min", "val_rmse": "min"}
_SCENES = ("indian_pines",)
_MODEL_RESERVED = ("self", "kwargs", "dtype", "hsi_bands", "msi_bands", "scale")


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


def _recipe_keys():
    # {key: (default, [class names of the models whose recipe owns it])}
    keys = {}
    for spec in model_specs().values():
        for key, default in getattr(spec.recipe, "config_keys", {}).items():
            keys.setdefault(key, (default, []))[1].append(spec.cls.__name__)
    return keys


def _check_data(data):
    data = data if data is not None else {}
    if not isinstance(data, dict):
        raise ValueError(f"`data` must be a dict. Received: data={data!r}")
    check_keys("data", data, DEFAULT_DATA)
    data = {**DEFAULT_DATA, **data}
    if data["scene"] not in _SCENES:
        raise ValueError(f"`data.scene` must be one of {_SCENES}. Received: {data['scene']!r}")
    for key in ("crop", "scale", "test_size", "val_size", "band_step", "patch_size", "batch_size"):
        check_int(f"data.{key}", data[key])
    check_int("data.patches_per_epoch", data["patches_per_epoch"], allow_none=True)
    check_int("data.val_conditions", data["val_conditions"])
    # raises a ValueError naming the key for a malformed degradation spec
    DegradationSampler(data, data["scale"], np.linspace(400.0, 2500.0, 8))
    if data["val_axis"] not in (0, 1):
        raise ValueError(f"`data.val_axis` must be 0 or 1. Received: val_axis={data['val_axis']!r}")
    if data["patch_size"] % data["scale"]:
        raise ValueError(
            f"`data.patch_size` must be a multiple of `data.scale` ({data['scale']}). "
            f"Received: patch_size={data['patch_size']}"
        )
    return data


def _check_model(model):
    if model is None:
        classes = sorted(spec.cls.__name__ for spec in model_specs().values())
        raise ValueError(f'`model` is required: {{"class": <one of {classes}>, **arguments}}.')
    model = check_class_spec("model", model)
    spec = model_spec(model["class"])
    params = inspect.signature(spec.cls.__init__).parameters
    check_keys("model", model, {p for p in params if p not in _MODEL_RESERVED} | {"class"})
    return model, spec


def validate_config(config):
    """Checks an experiment config and fills in the defaults.

    The model's training recipe, if its `ModelSpec` has one, checks its own keys.

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
    recipe_keys = _recipe_keys()
    check_keys("config", config, {**DEFAULT_CONFIG, **recipe_keys})
    out = copy.deepcopy(DEFAULT_CONFIG)
    out.update({key: copy.deepcopy(default) for key, (default, _) in recipe_keys.items()})
    out.update(copy.deepcopy(config))

    out["data"] = _check_data(out["data"])
    check_int("seed", out["seed"], minimum=0)
    check_int("epochs", out["epochs"])
    check_int("steps_per_epoch", out["steps_per_epoch"], allow_none=True)
    if not isinstance(out["name"], str) or not out["name"]:
        raise ValueError(f"`name` must be a non-empty string. Received: name={out['name']!r}")
    check_choice("monitor", out["monitor"], sorted(MONITORS))
    for key in ("jit_compile", "run_eagerly", "tensorboard"):
        check_choice(key, out[key], ("auto", True, False))

    out["distribution"] = check_distribution(out["distribution"])
    out["model"], spec = _check_model(out["model"])
    out["optimizer"] = check_optimizer("optimizer", out["optimizer"])
    out["schedule"] = check_schedule("schedule", out["schedule"])
    out["loss"] = check_class_spec("loss", out["loss"])
    build_loss(out["loss"])  # raises a ValueError naming the loss

    own = getattr(spec.recipe, "config_keys", {})
    for key, (default, owners) in recipe_keys.items():
        if key not in own and out[key] != default:
            raise ValueError(
                f"`{key}` is only for {', '.join(owners)} (a key of its training recipe). "
                f"Received: model.class={out['model']['class']!r}, {key}={out[key]!r}"
            )
    if spec.recipe is not None:
        out = spec.recipe.validate(out)
    return out
