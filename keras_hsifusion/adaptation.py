"""`adapt`: trains a zoo model on one real (LR-HSI, HR-MSI) pair, without a reference.

One cohesive module (reading and checking the pair, the sensor model, the two training
stages, model selection and the card), hence over 450 lines.

A real pair has no high-resolution hyperspectral truth, so `adapt` learns from the pair
itself (DESIGN.md, "Pairs without a reference"):

1. **Reduced resolution (Wald).** Both images are degraded once more by the scale (Gaussian
   PSF, decimation: `keras_hsifusion.data.spatial_degrade`): the degraded LR-HSI is the
   input LR-HSI, the degraded HR-MSI the input HR-MSI, and the original LR-HSI the target.
   The model learns the mapping one level down and is used one level up (scale invariance).
   A strip of this reduced-resolution pair (the last columns, or rows for a tall image,
   with a guard band from `spatial_split`) is held out: every checkpoint is scored on it
   (PSNR, SAM, ERGAS, RMSE against its own LR-HSI), and that is the only model selection.
2. **Full-resolution consistency** (optional, `full_resolution_steps > 0`). The model
   selected in stage 1 is fine-tuned on the full-resolution pair (the training region's
   pixels only, so the validation strip stays unseen) with `FullResolutionConsistency`:
   the output, blurred and decimated, must give the LR-HSI, and projected through the
   spectral response (known, a sensor's, or estimated by the classical methods' `estR`
   estimator with its offset), the HR-MSI. Its checkpoints are scored on the same
   reduced-resolution strip.

The output folder is a preset (`model.keras` + `preset.json`, `FusionModel.save_to_preset`)
whose card says how the model was trained, its input normalisation (one divisor, the
LR-HSI's maximum, which `khf fuse -m OUT_DIR` and `khf.fuse` apply), its reduced-resolution
validation metrics next to classical methods on the same strip, and its full-resolution
no-reference indices (`metrics.d_lambda`, `d_s`, `qnr`, as `khf evaluate` computes them).
The checkpoints of both stages stay in `OUT_DIR/training/` (`reduced_resolution/`,
`full_resolution/`: `best.keras`, `last.keras`, `state.json`, `log.csv`), so that an
interrupted run continues with `resume=True`.
"""

import math
import os
import platform
import time

import keras
import numpy as np
from keras import ops

from keras_hsifusion import baselines, presets
from keras_hsifusion import metrics as khf_metrics
from keras_hsifusion.applications.registry import get_model_spec, model_specs
from keras_hsifusion.data import raster
from keras_hsifusion.data.degrade import psf_radius, spatial_degrade
from keras_hsifusion.data.patches import FusionPatches, PatchesView, spatial_split
from keras_hsifusion.data.srf import spectral_response
from keras_hsifusion.evaluation.protocol import region_metrics
from keras_hsifusion.inference.fuse import fuse
from keras_hsifusion.inference.methods import check_divisor, scale_inputs
from keras_hsifusion.ops.psf import psf_degrade
from keras_hsifusion.training.builders import build_loss, build_optimizer
from keras_hsifusion.training.callbacks import HeldOutMetrics, read_state
from keras_hsifusion.training.runner import fit_stage
from keras_hsifusion.utils.files import load_keras_file
from keras_hsifusion.utils.lock import RunLock
from keras_hsifusion.utils.runtime import resolve_jit_compile, resolve_run_eagerly
from keras_hsifusion.utils.validation import check_choice, check_int, check_number

__all__ = ["DEFAULT_BASELINES", "FullResolutionConsistency", "adapt", "estimate_psf_fwhm"]

# Classical methods scored on the validation strip next to the model (fast on any size).
DEFAULT_BASELINES = ("bicubic", "sfim", "glp", "poly_detail_injection")
# Candidate PSF widths of `estimate_psf_fwhm`, in multiples of the scale.
PSF_CANDIDATES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
_STAGES = ("reduced_resolution", "full_resolution")
_CONFIG_KEYS = ("name", "trainable", "dtype", "hsi_bands", "msi_bands", "scale")


@keras.saving.register_keras_serializable(package="keras_hsifusion")
class FullResolutionConsistency(keras.losses.Loss):
    """Full-resolution consistency of a fused image with the pair it was fused from.

    `L = mean|degrade(F) - L_hsi| + spectral_weight * mean|F @ srf + offset - M|`, per sample:
    `degrade` is the Gaussian PSF blur and decimation of `keras_hsifusion.ops.psf_degrade`
    (`margin` LR pixels at each border are left out, where the blur of a patch sees
    reflected pixels instead of its neighbours), `srf` the `(C, c)` spectral response.

    `y_true` packs both targets in one `(B, H, W, c + C)` tensor (Keras losses take one
    target): the HR-MSI in the first `c` channels, the LR-HSI repeated `scale` times along
    each axis (nearest neighbour) in the others; `y_pred` is the fused `(B, H, W, C)`.

    Args:
        scale: integer resolution ratio.
        srf: `(C, c)` spectral response (nested lists or an array).
        offset: `(c,)` offsets of the MSI bands. Defaults to zeros.
        psf_fwhm: FWHM of the PSF in HR pixels. Defaults to `scale`.
        margin: LR border pixels left out of the spatial term. Defaults to 0.
        spectral_weight: weight of the MSI term. Defaults to 1.
    """

    def __init__(
        self,
        scale,
        srf,
        offset=None,
        psf_fwhm=None,
        margin=0,
        spectral_weight=1.0,
        name="full_resolution_consistency",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.scale = check_int("scale", scale)
        self.srf = np.asarray(srf, dtype=np.float32)
        if self.srf.ndim != 2:
            raise ValueError(f"`srf` must be (C, c). Received shape {self.srf.shape}")
        c = self.srf.shape[1]
        self.offset = np.zeros(c, np.float32) if offset is None else np.asarray(offset, "f4")
        if self.offset.shape != (c,):
            raise ValueError(f"`offset` must be ({c},). Received shape {self.offset.shape}")
        self.psf_fwhm = None if psf_fwhm is None else float(psf_fwhm)
        self.margin = check_int("margin", margin, minimum=0)
        self.spectral_weight = float(spectral_weight)

    def call(self, y_true, y_pred):
        s, c, m = self.scale, self.srf.shape[1], self.margin
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "float32")
        msi = y_true[..., :c]
        lr = y_true[:, ::s, ::s, c:]
        lr_pred = psf_degrade(y_pred, s, self.psf_fwhm)
        if m:
            lr, lr_pred = lr[:, m:-m, m:-m], lr_pred[:, m:-m, m:-m]
        srf, offset = ops.convert_to_tensor(self.srf), ops.convert_to_tensor(self.offset)
        msi_pred = ops.matmul(y_pred, srf) + offset
        spatial = ops.mean(ops.abs(lr_pred - lr), axis=(1, 2, 3))
        spectral = ops.mean(ops.abs(msi_pred - msi), axis=(1, 2, 3))
        return spatial + self.spectral_weight * spectral

    def get_config(self):
        return {
            **super().get_config(),
            "scale": self.scale,
            "srf": self.srf.tolist(),
            "offset": self.offset.tolist(),
            "psf_fwhm": self.psf_fwhm,
            "margin": self.margin,
            "spectral_weight": self.spectral_weight,
        }


class _ConsistencyPatches(PatchesView):
    """Full-resolution patches with the packed target of `FullResolutionConsistency`."""

    def __getitem__(self, index):
        inputs, msi = self.patches[index]  # FusionPatches over (lr, msi, msi)
        s = self.patches.scale
        lr_up = np.repeat(np.repeat(inputs["lr_hsi"], s, axis=1), s, axis=2)
        return inputs, np.concatenate([msi, lr_up], axis=-1)


# --------------------------------------------------------------------------- the pair


def _as_raster(value, arg, key):
    if isinstance(value, raster.Raster):
        return value
    if isinstance(value, (str, os.PathLike)):
        return raster.read_raster(value, key=key)
    array = np.asarray(value)
    if array.ndim != 3 or array.dtype.kind not in "iuf":
        raise ValueError(
            f"`{arg}` must be a numeric (H, W, C) array or a file path. Received: {arg} of "
            f"shape {array.shape} and dtype {array.dtype}"
        )
    return raster.Raster(array)


def _label(r, arg):
    return r.path or f"the `{arg}` array"


def _filled(r, arg, log):
    """The array with nodata pixels set to the band means of the valid ones (as `khf fuse`)."""
    valid = r.valid_mask()
    if not valid.any():
        raise ValueError(f"Every pixel of {_label(r, arg)} is nodata or NaN.")
    array = np.asarray(r.array)
    if valid.all():
        return array
    array = np.array(array, np.float32)
    array[~valid] = array[valid].mean(axis=0)
    log(f"{_label(r, arg)}: {int((~valid).sum())} nodata pixels filled with band means")
    return array


def estimate_psf_fwhm(lr_hsi, hr_msi, scale, candidates=PSF_CANDIDATES):
    """The Gaussian PSF FWHM (HR pixels) under which the pair is most consistent.

    For each candidate FWHM (multiples of `scale`) the HR-MSI is degraded to the LR grid and
    regressed on the LR-HSI bands by the classical methods' SRF estimator
    (`baselines.estimate_srf`: non-negative weights plus an offset); the width
    with the smallest mean relative RMS residual wins.

    Returns:
        `(fwhm, {candidate: residual})`.
    """
    errors = {}
    for factor in candidates:
        fwhm = float(factor * scale)
        errors[fwhm] = float(np.mean(baselines.estimate_srf(lr_hsi, hr_msi, scale, fwhm)[2]))
    return min(errors, key=errors.get), errors


def _sensor(srf, psf_fwhm, lr, msi, scale, wavelengths, names):
    """Resolves `psf_fwhm` and `srf`: `(fwhm, srf (C, c), offset (c,), card entries)`."""
    if psf_fwhm is None:
        fwhm, psf_info = float(scale), {"fwhm": float(scale), "source": "assumed: the scale"}
    elif isinstance(psf_fwhm, str):
        check_choice("psf_fwhm", psf_fwhm, ("estimate",))
        fwhm, errors = estimate_psf_fwhm(lr, msi, scale)
        psf_info = {
            "fwhm": fwhm,
            "source": "estimated: Gaussian FWHM whose degraded HR-MSI the LR-HSI explains "
            "best (estimate_psf_fwhm)",
            "candidates_relative_rms": {f"{k:g}": v for k, v in errors.items()},
        }
    else:
        fwhm = float(check_number("psf_fwhm", psf_fwhm))
        psf_info = {"fwhm": fwhm, "source": "given"}
    bands, msi_bands = lr.shape[-1], msi.shape[-1]
    if srf is None or (isinstance(srf, str) and srf == "estimate"):
        weights, offset, error = baselines.estimate_srf(lr, msi, scale, fwhm)
        srf_info = {
            "source": "estimated from the pair (baselines estimate_srf: Yokoya's estR, "
            "non-negative weights and an offset, in normalised units)",
            "relative_rms_error": error.tolist(),
        }
        matrix = weights.T
    elif isinstance(srf, str):
        if wavelengths is None:
            raise ValueError(
                f"`srf`={srf!r} is a sensor and needs the band centres of the LR-HSI "
                f"{names[0]}, which has none: pass `wavelengths`."
            )
        matrix, offset = spectral_response(srf, wavelengths), np.zeros(msi_bands)
        srf_info = {"source": f"sensor {srf!r} (keras_hsifusion.data.spectral_response)"}
    else:
        matrix, offset = np.asarray(srf, dtype=np.float64), np.zeros(msi_bands)
        srf_info = {"source": "given"}
    if matrix.shape != (bands, msi_bands):
        raise ValueError(
            f"`srf` must be (C, c) = ({bands}, {msi_bands}) for the LR-HSI {names[0]} and the "
            f"HR-MSI {names[1]}. Received shape {matrix.shape}"
        )
    srf_info.update(matrix=matrix.tolist(), offset=np.asarray(offset).tolist())
    return fwhm, matrix, np.asarray(offset, np.float64), psf_info, srf_info


# --------------------------------------------------------------------------- the model


def _small_arguments(cls):
    """The arguments of `cls`'s first shipped preset (the CPU-trained size), or {}."""
    for card in presets.list_presets().values():
        if card["class"] == cls.__name__:
            return {k: v for k, v in card.get("config", {}).items() if k not in _CONFIG_KEYS}
    return {}


def _is_preset(name):
    try:
        presets.load_card(name)
    except (ValueError, FileNotFoundError):
        return False
    return True


def _starting_model(model, model_kwargs, bands, msi_bands, scale, names, safe_mode, seed):
    """`(build, card entries)`: `build()` returns the (uncompiled) starting model."""
    pair = f"the pair {names[0]} ({bands} bands) + {names[1]} ({msi_bands} bands, scale {scale})"

    def check(what, hsi_b, msi_b, s):
        if s != scale:
            raise ValueError(
                f"{what} fuses at scale {s}, but {pair} has scale {scale}; start from scratch "
                "(a model class) or from a model of that scale."
            )
        if (hsi_b, msi_b) != (bands, msi_bands):
            raise ValueError(
                f"{what} needs hsi_bands={hsi_b} and msi_bands={msi_b}, but {pair} has "
                f"{bands} and {msi_bands}; start from scratch (a model class) instead."
            )

    if isinstance(model, (str, os.PathLike)) and os.fspath(model).endswith(".keras"):
        model = load_keras_file(os.fspath(model), safe_mode, compile=False)
    if isinstance(model, keras.Model):
        name = type(model).__name__
        check(
            f"The model {name}",
            getattr(model, "hsi_bands", None),
            getattr(model, "msi_bands", None),
            getattr(model, "scale", None),
        )
        config, weights = model.get_config(), model.get_weights()

        def build():
            clone = type(model).from_config(config)
            clone.set_weights(weights)
            return clone

        return build, {"start": f"the given {name} model (its weights)", "class": name}
    if isinstance(model, (str, os.PathLike)) and _is_preset(os.fspath(model)):
        card = presets.load_card(os.fspath(model))
        what = f"The preset {card.get('name', model)!r}"
        check(what, card.get("hsi_bands"), card.get("msi_bands"), card.get("scale"))
        return (
            lambda: presets.load_preset(os.fspath(model), safe_mode=safe_mode),
            {"start": f"preset {card.get('name', model)} (fine-tuning)", "class": card["class"]},
        )
    spec = dict(model) if isinstance(model, dict) else {"class": model}
    class_name = spec.pop("class", None)
    try:
        cls = get_model_spec(class_name).cls
    except ValueError:
        cls = None
    if cls is None or cls.__name__ != class_name:
        known = sorted(s.cls.__name__ for s in model_specs().values())
        raise ValueError(
            f"`model` must be a preset name ({sorted(presets.list_presets())}), a preset "
            f"folder, a zoo model class ({known}) or a model. Received: model={model!r}"
        )
    kwargs = {**_small_arguments(cls), **spec, **(model_kwargs or {})}
    keras.utils.set_random_seed(seed)  # the initial weights
    try:
        first = cls(hsi_bands=bands, msi_bands=msi_bands, scale=scale, **kwargs)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{class_name} cannot be built for {pair}: {e}") from None
    built = [first]

    def build():
        return (
            built.pop()
            if built
            else cls(hsi_bands=bands, msi_bands=msi_bands, scale=scale, **kwargs)
        )

    return build, {"start": f"{class_name} from scratch", "class": class_name, "arguments": kwargs}


# --------------------------------------------------------------------------- regions


def _regions(height, width, scale, fwhm, val_fraction, patch_size, names, log):
    """The training and validation regions of the reduced-resolution target, and the patch."""
    axis = 1 if width >= height else 0
    size = (height, width)[axis]
    val_size = max(scale, int(round(val_fraction * size / scale)) * scale)
    too_small = (
        f"The pair {names[0]} + {names[1]} is too small for `adapt`: its reduced-resolution "
        f"target ({height}x{width} LR-HSI pixels)"
    )
    try:
        train, val = spatial_split(height, width, scale, val_size, axis=axis, psf_fwhm=fwhm)
    except ValueError:
        raise ValueError(
            f"{too_small} cannot hold a validation strip of {val_size} pixels, a guard band "
            "and a training region."
        ) from None
    rows, cols = train
    room = min(rows.stop - rows.start, cols.stop - cols.start)
    patch = min(patch_size, (room // scale) * scale)
    if patch < 2 * scale:
        raise ValueError(
            f"{too_small} leaves a training region of {rows.stop}x{cols.stop} pixels, less "
            f"than a patch of two reduced-resolution pixels (2 x scale {scale})."
        )
    if patch != patch_size:
        log(f"patch_size {patch_size} does not fit the training region; using {patch}")
    return train, val, patch


def _cut(lr, msi, target, region, scale):
    rows, cols = region
    lr_rows = slice(rows.start // scale, rows.stop // scale)
    lr_cols = slice(cols.start // scale, cols.stop // scale)
    inputs = {"lr_hsi": lr[None, lr_rows, lr_cols], "hr_msi": msi[None, rows, cols]}
    return inputs, target[None, rows, cols]


def _box(region):
    return [[region[0].start, region[0].stop], [region[1].start, region[1].stop]]


# --------------------------------------------------------------------------- stages


def _compile(model, loss, learning_rate, steps_per_epoch, epochs, modes):
    model.compile(
        optimizer=build_optimizer(
            {"class": "Adam", "learning_rate": learning_rate},
            {"class": "cosine", "alpha": 0.05},
            steps_per_epoch,
            epochs,
        ),
        loss=loss,
        jit_compile=resolve_jit_compile(modes[0]),
        run_eagerly=resolve_run_eagerly(modes[1], steps_per_epoch * epochs),
    )
    return model


def _epochs(steps, steps_per_epoch):
    per_epoch = min(steps_per_epoch, steps)
    return -(-steps // per_epoch), per_epoch


def _best(folder):
    """The checkpoint of a stage folder that validation selects: `path`, `epoch`, `val_psnr`,
    `val` (its validation metrics as `HeldOutMetrics` logged them) and the stage's `history`."""
    state = read_state(folder) or {}
    history = [
        {k: row[k] for k in ("epoch", "loss", "val_psnr", "val_sam", "val_ergas") if k in row}
        for row in state.get("history", [])
    ]
    best = os.path.join(folder, "best.keras")
    if os.path.isfile(best) and state.get("best") is not None:
        path, epoch, logs = best, state.get("best_epoch"), state.get("best_logs") or {}
    else:  # no finite validation score in any epoch: the last one
        path, epoch, logs = os.path.join(folder, "last.keras"), state["epoch"], state["logs"]
    val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
    score = val.get("psnr", -math.inf)
    score = score if math.isfinite(score) else -math.inf
    return {"path": path, "epoch": epoch, "val_psnr": score, "val": val, "history": history}


def _full_resolution_stage(context, rr_best, steps):
    """Fine-tunes the stage-1 model with `FullResolutionConsistency`; returns card entries."""
    c = context
    s = c["scale"]
    rows, cols = c["train_region"]
    region = (slice(rows.start * s, rows.stop * s), slice(cols.start * s, cols.stop * s))
    room = min(rows.stop - rows.start, cols.stop - cols.start) * s
    patch = 2 * c["patch"] * s if 2 * c["patch"] * s <= room else c["patch"] * s
    margin = math.ceil((psf_radius(s, c["fwhm"]) - (s - 1) / 2.0) / s)
    margin = margin if patch // s > 2 * margin else 0
    epochs, per_epoch = _epochs(steps, c["steps_per_epoch"])
    # FusionPatches over (lr, msi, msi): the HR-MSI doubles as the placeholder target.
    patches = FusionPatches(
        c["hr"],
        s,
        lr_hsi=c["lr"],
        hr_msi=c["hr"],
        patch_size=patch,
        batch_size=c["batch_size"],
        patches_per_epoch=per_epoch * c["batch_size"],
        region=region,
        seed=c["seed"] + 1,
    )
    loss = FullResolutionConsistency(s, c["srf"], c["offset"], c["fwhm"], margin=margin)
    learning_rate = c["fr_learning_rate"]

    def build():
        model = load_keras_file(rr_best, c["safe_mode"], compile=False, what="checkpoint")
        return _compile(model, loss, learning_rate, per_epoch, epochs, c["modes"])

    c["log"](
        f"=== full resolution: {epochs * per_epoch} steps of {c['batch_size']} patches of "
        f"{patch} HR px (the output degraded vs the LR-HSI, through the SRF vs the HR-MSI)"
    )
    fit_stage(
        build,
        _ConsistencyPatches(patches),
        c["stage_dirs"]["full_resolution"],
        epochs,
        per_epoch,
        c["resume"],
        c["verbose"],
        extra_callbacks=[HeldOutMetrics(c["val_inputs"], c["val_target"], s)],
        monitor="val_psnr",
        log=c["log"],
        extra_state={"stage": "full_resolution"},
        safe_mode=c["safe_mode"],
    )
    return {
        "steps": epochs * per_epoch,
        "steps_per_epoch": per_epoch,
        "patch_size_hr_px": patch,
        "batch_size": c["batch_size"],
        "learning_rate": learning_rate,
        "loss": "FullResolutionConsistency: mean|degrade(F) - LR-HSI| + "
        "mean|F @ srf + offset - HR-MSI|, L1, both in normalised units",
        "border_lr_px_left_out": margin,
        "region": "the training region's columns/rows at full resolution (the validation "
        "strip is not seen)",
    }


def _metrics(final, c, methods, block, model_rr):
    """Validation metrics (the model's, logged when its checkpoint was written, and classical
    methods') and the full-resolution indices of the whole pair fused by `final`."""
    s, fwhm = c["scale"], c["fwhm"]
    rr = {"model": model_rr}
    lr_val, msi_val = c["val_inputs"]["lr_hsi"][0], c["val_inputs"]["hr_msi"][0]
    for name in methods:
        est = baselines.METHODS[name](lr_val, msi_val, s, psf_fwhm=fwhm)
        rr[name] = region_metrics(c["val_target"], np.clip(est[None], 0.0, 1.0), s)
    c["log"]("fusing the whole pair for the no-reference indices ...")
    fused = np.asarray(fuse(c["lr_full"], c["hr_full"], final, scale=s), np.float64)
    lo, m = np.asarray(c["lr_full"], np.float64), np.asarray(c["hr_full"], np.float64)
    d_lambda = khf_metrics.d_lambda(fused, lo, block_size=block, scale=s)
    d_s = khf_metrics.d_s(fused, lo, m, block_size=block, scale=s)
    full = {
        "d_lambda": d_lambda,
        "d_s": d_s,
        "qnr": (1.0 - d_lambda) * (1.0 - d_s),
        "block_size": block,
        "lr_consistency_rmse": float(np.sqrt(np.mean((spatial_degrade(fused, s, fwhm) - lo) ** 2))),
        "msi_consistency_rmse": float(np.sqrt(np.mean((fused @ c["srf"] + c["offset"] - m) ** 2))),
        "definition": "khf.metrics.d_lambda / d_s / qnr (Alparone et al. 2008 as in Vivone "
        "et al. 2015, D_s extended to several MSI bands; alpha = beta = p = q = 1) of the "
        "fused whole pair against its inputs, in normalised units; consistency RMSEs: the "
        "fused image degraded with the PSF vs the LR-HSI, projected with the SRF (+ offset) "
        "vs the HR-MSI",
    }
    c["log"](
        f"validation strip: PSNR {model_rr['psnr']:.3f} dB, SAM {model_rr['sam']:.3f} deg, "
        f"ERGAS {model_rr['ergas']:.3f}; whole pair: QNR {full['qnr']:.4f} "
        f"(D_lambda {d_lambda:.4f}, D_s {d_s:.4f})"
    )
    return {"reduced_resolution_validation": rr, "full_resolution": full}


def _card(c, start_info, selected, stages, rr_info, fr_info, card_metrics, elapsed):
    hsi, msi, names, s = c["hsi"], c["msi"], c["names"], c["scale"]
    fr_text = (
        f", then {fr_info['steps']} steps of full-resolution consistency (the output "
        "blurred and decimated vs the LR-HSI, projected through the spectral response vs "
        "the HR-MSI)"
        if fr_info
        else ""
    )
    description = (
        f"{start_info['class']} adapted to one pair without a reference ({names[0]} + "
        f"{names[1]}, x{s}): {rr_info['steps']} steps of reduced-resolution (Wald) "
        f"self-supervision (both images blurred with a Gaussian PSF of FWHM {c['fwhm']:g} "
        f"HR px and decimated by {s}; target: the LR-HSI){fr_text}; checkpoint selected on "
        "a held-out strip of the reduced-resolution pair. No reference was used."
    )
    card = {
        "description": description,
        "training": {
            "method": "keras_hsifusion.adapt",
            "description": description,
            "start": start_info,
            "reduced_resolution": rr_info,
            "full_resolution": fr_info,
            "selected": selected,
            "history": stages,
            "psf": c["psf_info"],
            "srf": c["srf_info"],
            "checkpoints": "training/ (reduced_resolution/, full_resolution/)",
            "backend": keras.backend.backend(),
            "keras": keras.__version__,
            "machine": f"{os.cpu_count()}-core {platform.machine()}, {platform.system()}",
            "wall_time_s": elapsed,
        },
        "data": {
            "lr_hsi": names[0],
            "hr_msi": names[1],
            "lr_hsi_shape": list(hsi.shape),
            "hr_msi_shape": list(msi.shape),
            "crs": hsi.crs or msi.crs,
        },
        "normalisation": {
            "divisor": c["divisor"],
            "input": f"divide the LR-HSI and the HR-MSI by {c['divisor']:.10g} (the maximum "
            "of the LR-HSI it was adapted to)",
            "output": "multiply the fused HR-HSI by the same constant",
        },
        "metrics": card_metrics,
    }
    if c["wavelengths"] is not None:
        card["hsi_wavelengths_nm"] = np.asarray(c["wavelengths"], np.float64).tolist()
    if msi.band_names:
        card["msi_band_names"] = list(msi.band_names)
    if isinstance(c["srf_arg"], str) and c["srf_arg"] != "estimate":
        card["msi_sensor"] = c["srf_arg"]
    return card


# --------------------------------------------------------------------------- adapt


def adapt(
    lr_hsi,
    hr_msi,
    model,
    out_dir,
    *,
    scale=None,
    model_kwargs=None,
    steps=500,
    full_resolution_steps=100,
    steps_per_epoch=25,
    patch_size=32,
    batch_size=8,
    learning_rate=5e-4,
    full_resolution_learning_rate=None,
    loss=None,
    srf="estimate",
    psf_fwhm=None,
    wavelengths=None,
    val_fraction=0.25,
    selection="validation",
    compare=DEFAULT_BASELINES,
    qnr_block_size=32,
    seed=0,
    jit_compile="auto",
    run_eagerly="auto",
    resume=False,
    overwrite=False,
    verbose="auto",
    log=print,
    hsi_key=None,
    msi_key=None,
    safe_mode=True,
):
    """Trains a zoo model on one real (LR-HSI, HR-MSI) pair without a reference; writes a preset.

    See the module docstring for the method. Everything is computed on the pair divided by
    one constant, the maximum of the LR-HSI, which the card records (`normalisation`), so
    that `khf.fuse(lr, hr, out_dir)` and `khf fuse LR HR -m OUT_DIR` apply it and undo it.

    Args:
        lr_hsi: `(h, w, C)` array, a `data.Raster`, or a file that `data.read_raster` reads
            (GeoTIFF, ENVI, HDF5, .mat, .npz, .npy). Nodata pixels are filled with band means.
        hr_msi: `(scale*h, scale*w, c)` array, `Raster` or file; the footprints must agree
            (`data.check_footprints`).
        model: where to start. A preset name or folder (fine-tuning: its scale and band
            counts must be the pair's); a zoo model class name such as `"HSSDCT"` (from
            scratch, with the arguments of that class's shipped preset, the small size this
            project trains on a CPU, or else the class defaults; `model_kwargs` overrides);
            a dict `{"class": ..., **arguments}`; or a zoo model object or `.keras` file
            (copied: its weights are the start, the object is not changed).
        out_dir: the preset folder to write.
        scale: expected resolution ratio. Defaults to the one the files or sizes give.
        model_kwargs: constructor arguments for a class name.
        steps: optimiser steps of the reduced-resolution stage (rounded up to whole epochs).
            Defaults to 500.
        full_resolution_steps: steps of the full-resolution consistency stage; 0 skips it.
            Defaults to 100.
        steps_per_epoch: steps between two validations (and checkpoints). Defaults to 25.
        patch_size: side of the reduced-resolution training patches in LR-HSI pixels (their
            target), a multiple of `scale`; reduced to fit the training region. The
            full-resolution stage uses HR patches of twice that many LR pixels when they fit.
            Defaults to 32.
        batch_size: patches per step. Defaults to 8.
        learning_rate: Adam's learning rate of the first stage, cosine decay to 5 % of it.
            Defaults to 5e-4.
        full_resolution_learning_rate: the same for the second stage. Defaults to
            `learning_rate / 10`.
        loss: loss of the first stage (a `training.build_loss` spec). Defaults to the
            model's official training loss (`ModelSpec.training_step`), else L1.
        srf: spectral response of the consistency stage and its indices: `"estimate"` (the
            default: from the pair, with an offset), a sensor of `data.list_sensors()` (needs
            the LR-HSI's wavelengths), or a `(C, c)` array.
        psf_fwhm: Gaussian PSF FWHM in HR pixels of every degradation: None (the scale), a
            number, or `"estimate"` (`estimate_psf_fwhm`).
        wavelengths: `(C,)` band centres of the LR-HSI in nm. Defaults to the file's.
        val_fraction: share of the reduced-resolution target held out as validation strip
            (columns, or rows of a taller image). Defaults to 0.25.
        selection: `"validation"` (default: the checkpoint of either stage with the best
            validation PSNR) or `"full_resolution"` (the best one of the second stage).
        compare: classical methods of `baselines.METHODS` scored on the validation strip
            for the card. Defaults to `DEFAULT_BASELINES`.
        qnr_block_size: window of the QNR indices in HR pixels (as `khf evaluate`).
        seed: seed of the initialisation and the patches. Defaults to 0.
        jit_compile: `compile`'s, `"auto"`: True on JAX (`utils.runtime.resolve_jit_compile`).
        run_eagerly: `compile`'s, `"auto"`: eager only for a TensorFlow stage of fewer than
            32 steps (`utils.runtime.resolve_run_eagerly`).
        resume: continue an interrupted run in `out_dir` (each stage where it stopped).
        overwrite: start again in a folder that already holds something.
        verbose: `fit` verbosity (`"auto"`: a progress bar per epoch).
        log: function for the messages (stages, sensor model, selection, results).
        hsi_key: array name in an .h5/.mat/.npz LR-HSI file.
        msi_key: array name in an .h5/.mat/.npz HR-MSI file.
        safe_mode: how presets and checkpoints are loaded (`utils.files.load_keras_file`).

    Returns:
        the adapted model loaded from `out_dir` (`keras_hsifusion.from_preset`), with its
        card as `model.preset_card`.

    Raises:
        ValueError: naming the file and the value: footprints that disagree, band counts or
            a scale that the starting preset or model class does not fit, a pair too small
            for the split, an unreadable file. FileNotFoundError: a missing file.
        FileExistsError: `out_dir` is not empty and neither `resume` nor `overwrite` is set.

    Examples:
    >>> import keras_hsifusion as khf
    >>> model = khf.adapt("lr_hsi.tif", "hr_msi.tif", "HSSDCT", "my_preset")  # doctest: +SKIP
    >>> fused = khf.fuse(lr_hsi, hr_msi, "my_preset")  # doctest: +SKIP
    """
    start_time = time.time()
    check_int("steps", steps)
    check_int("full_resolution_steps", full_resolution_steps, minimum=0)
    check_int("steps_per_epoch", steps_per_epoch)
    check_int("patch_size", patch_size)
    check_int("batch_size", batch_size)
    check_int("qnr_block_size", qnr_block_size, minimum=2)
    check_int("seed", seed, minimum=0)
    check_number("learning_rate", learning_rate)
    check_choice("selection", selection, ("validation", "full_resolution"))
    if isinstance(val_fraction, bool) or not (
        isinstance(val_fraction, (int, float)) and 0 < val_fraction < 1
    ):
        raise ValueError(f"`val_fraction` must be in (0, 1). Received: val_fraction={val_fraction}")
    for name in compare:
        check_choice("compare", name, tuple(baselines.METHODS))

    hsi = _as_raster(lr_hsi, "lr_hsi", hsi_key)
    msi = _as_raster(hr_msi, "hr_msi", msi_key)
    scale = raster.check_footprints(hsi, msi, scale=scale)
    names = (_label(hsi, "lr_hsi"), _label(msi, "hr_msi"))
    if wavelengths is None:
        wavelengths = hsi.wavelengths
    elif np.size(wavelengths) != hsi.shape[-1]:
        raise ValueError(
            f"`wavelengths` must have one entry per band of {names[0]} ({hsi.shape[-1]}). "
            f"Received {np.size(wavelengths)} wavelengths"
        )
    bands, msi_bands = hsi.shape[-1], msi.shape[-1]
    build_start, start_info = _starting_model(
        model, model_kwargs, bands, msi_bands, scale, names, safe_mode, seed
    )
    if isinstance(model, (str, os.PathLike)) and _is_preset(os.fspath(model)):
        card = presets.load_card(os.fspath(model))
        presets.check_wavelengths(card, wavelengths, name=f"LR-HSI {names[0]}")
    out_dir = os.fspath(out_dir)
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not (resume or overwrite):
        raise FileExistsError(
            f"{out_dir} is not empty (a preset or a run is there); pass resume=True to "
            "continue its run or overwrite=True to start again."
        )
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise FileExistsError(f"{out_dir} exists and is not a folder.")

    lr_filled, hr_filled = _filled(hsi, "lr_hsi", log), _filled(msi, "hr_msi", log)
    try:
        divisor = check_divisor(np.max(lr_filled))
    except ValueError:
        raise ValueError(
            f"The LR-HSI {names[0]} must hold positive values to be normalised by its "
            f"maximum. Received: max={float(np.max(lr_filled))!r}"
        ) from None
    lr, hr = scale_inputs(lr_filled, hr_filled, divisor)
    # The reduced-resolution pair needs whole LR pixels: crop to multiples of the scale.
    h, w = (lr.shape[0] // scale) * scale, (lr.shape[1] // scale) * scale
    if min(h, w) < 2 * scale:
        raise ValueError(
            f"The LR-HSI {names[0]} ({lr.shape[0]}x{lr.shape[1]} px) is too small for a "
            f"reduced-resolution pair at scale {scale}: it needs {2 * scale} pixels a side."
        )
    lr_crop, hr_crop = lr[:h, :w], hr[: h * scale, : w * scale]
    fwhm, srf_matrix, offset, psf_info, srf_info = _sensor(
        srf, psf_fwhm, lr_crop, hr_crop, scale, wavelengths, names
    )
    log(
        f"pair {names[0]} + {names[1]}: scale {scale}, {bands} + {msi_bands} bands, divided "
        f"by {divisor:g}; PSF FWHM {fwhm:g} HR px ({psf_info['source']})"
    )
    rr_lr = spatial_degrade(lr_crop, scale, fwhm)
    rr_msi = spatial_degrade(hr_crop, scale, fwhm)
    train_region, val_region, patch = _regions(
        h, w, scale, fwhm, val_fraction, patch_size, names, log
    )
    val_inputs, val_target = _cut(rr_lr, rr_msi, lr_crop, val_region, scale)
    train_dir = os.path.join(out_dir, "training")
    c = {
        "hsi": hsi,
        "msi": msi,
        "names": names,
        "scale": scale,
        "fwhm": fwhm,
        "srf": srf_matrix,
        "offset": offset,
        "srf_arg": srf,
        "psf_info": psf_info,
        "srf_info": srf_info,
        "divisor": divisor,
        "wavelengths": wavelengths,
        "lr": lr_crop,
        "hr": hr_crop,
        "lr_full": lr,
        "hr_full": hr,
        "train_region": train_region,
        "patch": patch,
        "batch_size": batch_size,
        "steps_per_epoch": steps_per_epoch,
        "fr_learning_rate": full_resolution_learning_rate or learning_rate / 10.0,
        "seed": seed,
        "val_inputs": val_inputs,
        "val_target": val_target,
        "resume": resume,
        "verbose": verbose,
        "log": log,
        "safe_mode": safe_mode,
        "stage_dirs": {stage: os.path.join(train_dir, stage) for stage in _STAGES},
        "modes": (jit_compile, run_eagerly),
    }
    if loss is None:
        spec = get_model_spec(start_info["class"])
        loss = (spec.training_step or {}).get("loss", "mean_absolute_error")
    epochs, per_epoch = _epochs(steps, steps_per_epoch)
    rr_dir = c["stage_dirs"]["reduced_resolution"]

    with RunLock(out_dir):
        train = FusionPatches(
            lr_crop,
            scale,
            lr_hsi=rr_lr,
            hr_msi=rr_msi,
            patch_size=patch,
            batch_size=batch_size,
            patches_per_epoch=per_epoch * batch_size,
            region=train_region,
            seed=seed,
        )

        def build():
            keras.utils.set_random_seed(seed)
            return _compile(
                build_start(), build_loss(loss), learning_rate, per_epoch, epochs, c["modes"]
            )

        log(
            f"=== reduced resolution: {epochs * per_epoch} steps of {batch_size} patches of "
            f"{patch} px; validation strip: LR-HSI rows {val_region[0].start}-"
            f"{val_region[0].stop}, columns {val_region[1].start}-{val_region[1].stop}"
        )
        fit_stage(
            build,
            train,
            rr_dir,
            epochs,
            per_epoch,
            resume,
            verbose,
            extra_callbacks=[HeldOutMetrics(val_inputs, val_target, scale)],
            monitor="val_psnr",
            log=log,
            extra_state={"stage": "reduced_resolution"},
            safe_mode=safe_mode,
        )
        rr_info = {
            "steps": epochs * per_epoch,
            "steps_per_epoch": per_epoch,
            "patch_size_lr_px": patch,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "schedule": "cosine decay to 5 %",
            "loss": loss,
            "seed": seed,
            "train_region_lr_px": _box(train_region),
            "validation_region_lr_px": _box(val_region),
        }
        candidates = {"reduced_resolution": _best(rr_dir)}
        fr_info = None
        if full_resolution_steps:
            fr_info = _full_resolution_stage(
                c, candidates["reduced_resolution"]["path"], full_resolution_steps
            )
            candidates["full_resolution"] = _best(c["stage_dirs"]["full_resolution"])
        if selection == "full_resolution" and fr_info:
            stage = "full_resolution"
        else:
            stage = max(candidates, key=lambda k: candidates[k]["val_psnr"])
        chosen = candidates[stage]
        log(
            f"selected: the {stage} stage's epoch {chosen['epoch']} (validation PSNR "
            f"{chosen['val_psnr']:.3f} dB)"
        )
        final = load_keras_file(chosen["path"], safe_mode, compile=False, what="checkpoint")
        selected = {
            "stage": stage,
            "epoch": chosen["epoch"],
            "rule": "best validation PSNR of both stages"
            if selection == "validation"
            else "best validation PSNR of the full-resolution stage",
            "validation_psnr": chosen["val_psnr"],
        }
        stages = {k: v["history"] for k, v in candidates.items()}
        card_metrics = _metrics(final, c, compare, qnr_block_size, chosen["val"])
        card = _card(
            c,
            start_info,
            selected,
            stages,
            rr_info,
            fr_info,
            card_metrics,
            time.time() - start_time,
        )
        final.save_to_preset(out_dir, **card)
    log(f"wrote the preset {out_dir} ({time.time() - start_time:.0f} s)")
    return presets.from_preset(out_dir, safe_mode=safe_mode)
