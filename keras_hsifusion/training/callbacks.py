"""Whole-region evaluation and the callbacks of a run: held-out metrics and checkpoints."""

import json
import math
import os

import keras
import numpy as np

from keras_hsifusion import metrics as khf_metrics
from keras_hsifusion.utils.files import atomic_path, atomic_write_json

__all__ = [
    "ExperimentCheckpoint",
    "HeldOutMetrics",
    "evaluate_region",
    "read_state",
    "region_metrics",
]


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
    pred = np.asarray(pred, dtype=np.float32)
    if clip:
        pred = np.clip(pred, 0.0, 1.0)
    return region_metrics(target, pred, scale, ssim=ssim), pred


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


def _scalars(logs):
    return {k: float(v) for k, v in logs.items() if np.ndim(v) == 0}


class ExperimentCheckpoint(keras.callbacks.Callback):
    """Saves `best.keras`, `last.keras` and `state.json` at the end of every epoch.

    `last.keras` holds the model with its optimiser state; `state.json` holds the number of
    completed epochs, the best value so far and the logs of that best epoch (`best_logs`),
    so that a resumed run continues with the right `initial_epoch` and keeps comparing
    against the same best. Every file is written to a temporary file and renamed, so an
    interruption never leaves a truncated one.

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

    def _save(self, name):
        with atomic_path(os.path.join(self.out_dir, name)) as tmp:
            self.model.save(tmp)

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
                self._save("best.keras")
        self._save("last.keras")
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
        atomic_write_json(os.path.join(self.out_dir, "state.json"), state)
