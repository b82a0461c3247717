"""Experiment configs: the schema, its defaults and its validation.

One experiment is one plain dict (a JSON file or a Python file defining `CONFIG`), in the
spirit of BasicSR. Keys (defaults in `DEFAULT_CONFIG` and `DEFAULT_DATA`):

- `name`: experiment name. `seed`: seed of weights, patches and masks.
- `data`: `scene` (`"indian_pines"`, or reference scenes in files: below), `crop` (HR side
  of the square crop, 144), `scale` (4),
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
- `data` with `scene` a file, a list of files or a folder (every readable file in it, or
  CAVE-style folders of numbered single-band PNGs; `keras_hsifusion.data.open_scenes`;
  relative paths from the working directory): `crop` defaults to None (whole scenes; a
  number cuts every scene to its top-left square), and these keys (defaults in
  `FILE_DATA`): `split` (`"region"`: in every scene, the test region and the validation
  strip as above; or `{"train": [...], "val": [...], "test": [...]}`, scene names or paths,
  `train` defaulting to the rest), `wavelengths` (band centres in nm, overriding or filling
  the files'), `srf` (None: `sensor`; a CSV table `wavelength_nm,<band>,...`; or a `(C, c)`
  list), `normalise` (`"max"`: divide by the maximum over the training regions; or a
  number, e.g. 65535 for 16-bit PNGs) and `key` (the array's name in `.mat`/`.npz`/HDF5
  files). Training patches are read from disk one by one and simulated with the
  degradation above (`keras_hsifusion.data.LazyFusionPatches`; docs/training.md, "Your own
  data").
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
- `zero_init`: names of model layers whose weights start at zero (default none), e.g.
  `["last_conv"]`, so that a model with a `global_skip` starts exactly at its classical skip
  (its best validation epoch cannot then fall below the skip); checked when it is built.
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
from keras_hsifusion.data.responses import read_response_table
from keras_hsifusion.data.scene_files import find_scenes
from keras_hsifusion.evaluation.protocol import BUILTIN_SCENES, DEFAULT_DATA, FILE_DATA
from keras_hsifusion.training.builders import build_loss, model_spec
from keras_hsifusion.training.distributed import check_distribution
from keras_hsifusion.utils.validation import (
    check_choice,
    check_class_spec,
    check_int,
    check_keys,
    check_number,
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
    "zero_init": [],
}
# Model selection: the monitored validation metric and whether larger is better.
MONITORS = {"val_psnr": "max", "val_sam": "min", "val_ergas": "min", "val_rmse": "min"}
_SCENES = BUILTIN_SCENES
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


def _check_file_data(data):
    """The keys of reference scenes in files (`FILE_DATA`); no pixel is read."""
    scene = data["scene"]
    if isinstance(scene, str) and not os.path.exists(scene):
        raise ValueError(
            f"`data.scene`: no such file or folder: {scene!r} (built-in scenes: {_SCENES})"
        )
    found = find_scenes(scene, "data.scene")
    split = data["split"]
    if split != "region":
        if not isinstance(split, dict) or not split or set(split) - {"train", "val", "test"}:
            raise ValueError(
                "`data.split` must be 'region' or {'train': [...], 'val': [...], 'test': [...]} "
                f"(scene names or paths; train defaults to the rest). Received: split={split!r}"
            )
        known = {n for n, _, _ in found} | {os.path.abspath(p) for _, p, _ in found}
        for part, entries in split.items():
            if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
                raise ValueError(
                    f"`data.split.{part}` must be a list of scene names or paths. "
                    f"Received: {entries!r}"
                )
            for e in entries:
                if e not in known and os.path.abspath(e) not in known:
                    names = sorted(n for n, _, _ in found)
                    raise ValueError(f"`data.split.{part}`: no scene {e!r}. Scenes: {names}")
        for part in ("val", "test"):
            if not split.get(part):
                raise ValueError(
                    f"`data.split.{part}` must name one or more scenes. Received: split={split!r}"
                )
    wl = data["wavelengths"]
    numbers = isinstance(wl, list) and all(isinstance(v, (int, float)) for v in wl)
    if wl is not None and not (numbers and wl and all(0 < v < float("inf") for v in wl)):
        raise ValueError(
            f"`data.wavelengths` must be a list of band centres in nm. Received: wavelengths={wl!r}"
        )
    srf = data["srf"]
    if isinstance(srf, str):
        read_response_table(srf, "data.srf")
    elif srf is not None:
        matrix = np.asarray(srf, dtype=object)
        ok = matrix.ndim == 2 and all(isinstance(v, (int, float)) for v in matrix.flat)
        ok = ok and np.all(np.isfinite(matrix.astype(float))) and np.all(matrix.astype(float) >= 0)
        if not ok or np.any(matrix.astype(float).sum(axis=0) <= 0):
            raise ValueError(
                "`data.srf` must be a sensor table (a CSV path) or a (C, c) list of non-negative "
                f"responses, every column with some response. Received: srf={srf!r}"
            )
        for key in ("msi_shift_nm", "msi_width_scale"):
            if data[key] is not None:
                raise ValueError(
                    f"`data.{key}` needs a response table (`data.sensor` or a CSV `data.srf`), "
                    f"not a matrix. Received: {key}={data[key]!r}"
                )
    if data["normalise"] != "max":
        check_number("data.normalise", data["normalise"])
    if data["key"] is not None and not (isinstance(data["key"], str) and data["key"]):
        raise ValueError(f"`data.key` must be an array name. Received: key={data['key']!r}")
    check_int("data.crop", data["crop"], allow_none=True)


def _check_data(data):
    data = data if data is not None else {}
    if not isinstance(data, dict):
        raise ValueError(f"`data` must be a dict. Received: data={data!r}")
    scene = data.get("scene", DEFAULT_DATA["scene"])
    if isinstance(scene, str) and scene in _SCENES:
        for key in sorted(set(data) & set(FILE_DATA)):
            raise ValueError(
                f"`data.{key}` is for scenes in files (`data.scene` a path, a list of paths or "
                f"a folder), not {scene!r}. Received: {key}={data[key]!r}"
            )
        check_keys("data", data, DEFAULT_DATA)
        data = {**DEFAULT_DATA, **data}
        check_int("data.crop", data["crop"])
    else:  # scenes in files: their own keys; the whole scenes unless `crop` is given
        check_keys("data", data, {**DEFAULT_DATA, **FILE_DATA})
        data = {**DEFAULT_DATA, "crop": None, **FILE_DATA, **data}
        _check_file_data(data)
    for key in ("scale", "test_size", "val_size", "band_step", "patch_size", "batch_size"):
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
    zero = out["zero_init"]
    if not isinstance(zero, (list, tuple)) or not all(isinstance(n, str) and n for n in zero):
        raise ValueError(f"`zero_init` must be a list of layer names. Received: zero_init={zero!r}")
    out["zero_init"] = list(zero)
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
