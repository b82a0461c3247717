"""The callbacks of a run: held-out metrics (the protocol's `evaluate_region` at every epoch's
end) and checkpoints (committed epoch by epoch, recoverable after a kill: `recover_run`)."""

import csv
import json
import math
import os
import shutil

import keras
import numpy as np

from keras_hsifusion.evaluation.protocol import evaluate_region
from keras_hsifusion.utils.files import atomic_path, atomic_write_json

__all__ = [
    "ExperimentCheckpoint",
    "HeldOutMetrics",
    "read_state",
    "recover_run",
    "write_log",
]


class HeldOutMetrics(keras.callbacks.Callback):
    """Evaluates the model on a whole held-out region at the end of every epoch.

    Adds `val_psnr`, `val_sam`, `val_ergas` and `val_rmse` to the epoch logs, so that
    callbacks placed after it in the list (`CSVLogger`, `ExperimentCheckpoint`,
    `TensorBoard`, `EarlyStopping`) see them. The region is predicted in one call (not cut
    into patches) and the metrics are the protocol's
    (`keras_hsifusion.evaluation.protocol.evaluate_region`).

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


STATE_FILE = "state.json"
LOG_FILE = "log.csv"
_PENDING = ".pending-"


def _pending(epoch, name):
    return f"{_PENDING}{epoch}-{name}"


def read_state(out_dir):
    """The `state.json` of a run directory (`{"epoch": completed epochs, ...}`), or None."""
    path = os.path.join(os.fspath(out_dir), STATE_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"Cannot read the run state {path!r}: {e}") from None
    if not isinstance(state, dict) or not isinstance(state.get("epoch"), int):
        raise ValueError(f"The run state {path!r} has no integer `epoch`.")
    return state


def write_log(path, history):
    """Writes `log.csv` atomically: a header (`epoch`, then the sorted log keys) and one row
    per entry of `history` (dicts with `epoch`, 0-based, and scalar logs)."""
    keys = sorted({k for row in history for k in row} - {"epoch"})
    with atomic_path(path, ".csv") as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["epoch", *keys])
            writer.writerows([row["epoch"], *(row.get(k, "") for k in keys)] for row in history)


def _history_from_csv(path, epochs):
    # state.json files written before the history was kept in them: the CSV's first rows.
    if not os.path.isfile(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:epochs]
    return [
        {k: int(v) if k == "epoch" else float(v) for k, v in row.items() if v not in ("", None)}
        for row in rows
    ]


def recover_run(out_dir):
    """Brings a run folder back to its last committed epoch after an interruption.

    An epoch is committed when its `state.json` is written (see `ExperimentCheckpoint`).
    Checkpoints that a committed epoch had not yet renamed into place are renamed now;
    files of an uncommitted epoch and temporary files of interrupted writes are deleted;
    `log.csv` is rewritten with exactly one row per committed epoch. Call it only while
    holding the folder's `RunLock` (it deletes files no other process may be writing).

    Returns:
        the state (`read_state`), or None when no epoch was ever committed.
    """
    out_dir = os.fspath(out_dir)
    if not os.path.isdir(out_dir):
        return None
    state = read_state(out_dir)
    if state is not None:
        for name in state.get("pending", ()):
            src = os.path.join(out_dir, _pending(state["epoch"], name))
            if os.path.isfile(src):
                os.replace(src, os.path.join(out_dir, name))
        history = state.get("history")
        if history is None:
            history = _history_from_csv(os.path.join(out_dir, LOG_FILE), state["epoch"])
        write_log(os.path.join(out_dir, LOG_FILE), history[: state["epoch"]])
    for name in os.listdir(out_dir):
        if name.startswith((_PENDING, ".tmp-")):
            os.remove(os.path.join(out_dir, name))
    return state


def _scalars(logs):
    return {k: float(v) for k, v in logs.items() if np.ndim(v) == 0}


class ExperimentCheckpoint(keras.callbacks.Callback):
    """Saves `best.keras`, `last.keras`, `state.json` and `log.csv` at every epoch's end.

    `last.keras` holds the model with its optimiser state; `state.json` holds the number of
    completed epochs, the best value so far, the logs of that best epoch (`best_logs`) and
    of every epoch (`history`), so that a resumed run continues with the right
    `initial_epoch` and keeps comparing against the same best; `log.csv` (one row per
    epoch) is written from that history.

    Every file is written to a temporary file and renamed, and the files of one epoch are
    committed together: the checkpoints are written under pending names, then `state.json`
    (the commit), then the pending files are renamed and `log.csv` is rewritten. A process
    killed at any point leaves the previous epoch or this one, never a mix:
    `recover_run` finishes or rolls back what the kill interrupted.

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
        epochs = state.get("epoch", 0)
        history = state.get("history")
        if history is None and epochs:
            history = _history_from_csv(os.path.join(self.out_dir, LOG_FILE), epochs)
        self.history = list(history or [])[:epochs]
        self.extra_state = dict(extra_state or {})

    def _improved(self, value):
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def _save(self, name):
        path = os.path.join(self.out_dir, name)
        with atomic_path(path, ".keras") as tmp:
            self.model.save(tmp)
        return path

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        os.makedirs(self.out_dir, exist_ok=True)
        pending = []
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
                pending.append("best.keras")
        pending.append("last.keras")
        last = self._save(_pending(epoch + 1, "last.keras"))
        if "best.keras" in pending:  # the same model: a copy is cheaper than a second save
            with atomic_path(os.path.join(self.out_dir, _pending(epoch + 1, "best.keras"))) as tmp:
                shutil.copyfile(last, tmp)
        self.history = [*self.history[:epoch], {"epoch": epoch, **_scalars(logs)}]
        state = {
            **self.extra_state,
            "epoch": epoch + 1,
            "monitor": self.monitor,
            "mode": self.mode,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "best_logs": self.best_logs,
            "logs": _scalars(logs),
            "history": self.history,
            "pending": pending,
        }
        atomic_write_json(os.path.join(self.out_dir, STATE_FILE), state)  # the commit
        for name in pending:
            os.replace(
                os.path.join(self.out_dir, _pending(epoch + 1, name)),
                os.path.join(self.out_dir, name),
            )
        write_log(os.path.join(self.out_dir, LOG_FILE), self.history)
