"""The runner: one experiment from its config, with checkpoints and resume, stage by stage.

`run_experiment(config, out_dir)` builds the data, lets the model's training recipe run its
own stages (`ModelSpec.recipe`, e.g. MSST-Net's MBAE/MPAE pretraining), builds and compiles
the model and calls `fit`. Model selection uses the validation strip only (`val_*` logs);
the held-out test region is evaluated once, at the end, on `best.keras`, next to the
classical methods (`keras_hsifusion.evaluation.protocol`: the data, the region metrics and
the baselines are the evaluation protocol's; this module only fits).

A recipe is an object with `config_keys` (`{key: default}`, the config keys it adds),
`validate(config) -> config` (checks those keys) and `prepare(context) -> None | fn`: it
gets a `RecipeContext`, trains its stages through `context.fit_stage` (each in a resumable
sub-folder) and returns None or a function applied to every freshly built model before it
is compiled for the main stage (not to a model resumed from `last.keras`).
"""

import contextlib
import importlib.util
import os
import time

import keras

from keras_hsifusion.evaluation.protocol import baseline_metrics, build_data, evaluate_region
from keras_hsifusion.training.builders import (
    AutoencoderPatches,
    build_loss,
    build_model,
    build_optimizer,
    model_spec,
)
from keras_hsifusion.training.callbacks import (
    LOG_FILE,
    STATE_FILE,
    ExperimentCheckpoint,
    HeldOutMetrics,
    read_state,
    recover_run,
)
from keras_hsifusion.training.config import MONITORS, load_config, validate_config
from keras_hsifusion.training.distributed import (
    DistributedContext,
    check_global_batch,
    setup_distribution,
)
from keras_hsifusion.utils.files import atomic_write_json, load_keras_file
from keras_hsifusion.utils.lock import RunLock
from keras_hsifusion.utils.runtime import resolve_jit_compile, resolve_run_eagerly
from keras_hsifusion.utils.validation import check_int

__all__ = ["RecipeContext", "fit_stage", "run_experiment"]


def _tensorboard_available():
    # Keras' TensorBoard callback writes with tf.summary, which needs both packages.
    return all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "tensorboard"))


# The files of a stage folder that a fresh (not resumed) start replaces.
_RUN_FILES = (STATE_FILE, LOG_FILE, "last.keras", "best.keras")


def _start_fresh(out_dir):
    # state.json first: whatever happens next, a later resume never mixes two runs.
    for name in _RUN_FILES:
        path = os.path.join(out_dir, name)
        if os.path.isfile(path):
            os.remove(path)


def fit_stage(
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
    safe_mode=True,
    dist=None,
):
    """Builds (or resumes) and fits one model in `out_dir`; returns `(model, state)`.

    The one stage of training that `run_experiment`, the recipes (`RecipeContext.fit_stage`)
    and `keras_hsifusion.adaptation` share: `build()` gives a new compiled model, `train` the
    batches (with an `epoch` attribute), `extra_callbacks` run before the checkpoint.

    Runs under the run folder's lock (`run_experiment` holds it). A resume first brings the
    folder back to its last committed epoch (`recover_run`: the checkpoints, `state.json`
    and a `log.csv` of one row per epoch agree), then loads `last.keras` in `safe_mode`.
    With several processes (`dist`), only the chief recovers and writes the folder; the
    others read it after a barrier.
    """
    dist = dist or DistributedContext()
    last = os.path.join(out_dir, "last.keras")
    if dist.is_chief:
        os.makedirs(out_dir, exist_ok=True)
        state = recover_run(out_dir) if resume else None
        if state is not None and not os.path.isfile(last):
            log(f"[{out_dir}] state.json says {state['epoch']} epochs but last.keras is missing.")
            state = None
        if state is None:
            _start_fresh(out_dir)
            recover_run(out_dir)  # removes the temporary files of an interrupted run
    dist.barrier()
    if not dist.is_chief:
        state = read_state(out_dir) if resume else None
    if state is not None and state["epoch"] >= epochs:
        log(f"[{out_dir}] already trained for {state['epoch']} epoch(s); skipping.")
        return load_keras_file(last, safe_mode, what="checkpoint"), state
    if state is not None:
        log(f"[{out_dir}] resuming after epoch {state['epoch']} from {last}")
        model = load_keras_file(last, safe_mode, what="checkpoint")
        initial_epoch = state["epoch"]
    else:
        if resume:
            log(f"[{out_dir}] nothing to resume; starting from scratch.")
        model = build()
        initial_epoch = 0
    model = dist.prepare_model(model)
    train.epoch = initial_epoch  # the patch positions of a resumed run continue the sequence
    callbacks = [*dist.callbacks(), *extra_callbacks]
    if dist.is_chief:
        mode = MONITORS.get(monitor, "max")
        callbacks.append(ExperimentCheckpoint(out_dir, monitor, mode, state, extra_state))
    if tensorboard and dist.is_chief:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(out_dir, "tensorboard")))
    model.fit(
        train,
        epochs=epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        verbose=verbose,
    )
    dist.barrier()  # the chief's last checkpoint is written
    return model, read_state(out_dir)


class RecipeContext:
    """What `run_experiment` hands to a model recipe's `prepare` (see the module docstring).

    Attributes:
        config: the validated config.
        data: the dict of `build_data` (training patches, validation and test regions).
        out_dir: the run folder; stages train in sub-folders of it.
        log: the runner's message function.
    """

    def __init__(
        self,
        config,
        data,
        out_dir,
        resume=False,
        verbose="auto",
        log=print,
        safe_mode=True,
        dist=None,
    ):
        self.config, self.data, self.out_dir = config, data, out_dir
        self.resume, self.verbose, self.log = resume, verbose, log
        self.safe_mode, self.dist = safe_mode, dist

    def build_model(self):
        """A new (uncompiled) model of the config, for the data's bands and scale."""
        d = self.data
        return build_model(self.config["model"], d["hsi_bands"], d["msi_bands"], d["scale"])

    def autoencoder_data(self, key):
        """`(x, x)` batches of the training patches' `"lr_hsi"` or `"hr_msi"`."""
        return AutoencoderPatches(self.data["train"], key)

    def compile(self, model, loss, optimizer, schedule=None, steps_per_epoch=1, epochs=1):
        """Compiles `model` with optimizer/schedule specs and the run's `jit_compile` and
        `run_eagerly`; `loss` is anything `keras.Model.compile` takes."""
        model.compile(
            optimizer=build_optimizer(optimizer, schedule, steps_per_epoch, epochs),
            loss=loss,
            jit_compile=resolve_jit_compile(self.config["jit_compile"]),
            run_eagerly=resolve_run_eagerly(self.config["run_eagerly"], steps_per_epoch * epochs),
        )
        return model

    def fit_stage(self, name, build, train, epochs, steps_per_epoch=None):
        """Fits `build()` (or resumes it) on `train` in `out_dir/name`; returns the path of
        its `last.keras` (with `state.json`, `log.csv`; skipped when already trained)."""
        stage_dir = os.path.join(self.out_dir, name)
        fit_stage(
            build,
            train,
            stage_dir,
            epochs,
            steps_per_epoch,
            self.resume,
            self.verbose,
            log=self.log,
            extra_state={"stage": name},
            safe_mode=self.safe_mode,
            dist=self.dist,
        )
        return os.path.join(stage_dir, "last.keras")


def zero_init(model, names):
    """Sets every weight of the layers `names` of `model` to zero (config key `zero_init`)."""
    known = {layer.name for layer in model.layers}
    for name in names:
        if name not in known:
            raise ValueError(
                f"`zero_init` names a layer that {model.__class__.__name__} does not have. "
                f"Received: zero_init={names!r}; its layers: {sorted(known)}"
            )
        for weight in model.get_layer(name).weights:
            weight.assign(keras.ops.zeros(weight.shape, dtype=weight.dtype))


def _resolve_tensorboard(value):
    if value == "auto":
        return _tensorboard_available()
    if value and not _tensorboard_available():
        raise ValueError(
            "`tensorboard` is true but TensorBoard logging needs the `tensorflow` and "
            "`tensorboard` packages; install them or set tensorboard to 'auto' or false."
        )
    return value


def run_experiment(
    config, out_dir, epochs=None, resume=False, verbose="auto", log=print, safe_mode=True
):
    """Runs one experiment: data, recipe stages, model, optimiser, loss, `fit`, checkpoints.

    Writes to `out_dir`: `config.json` (the validated config), `best.keras` (best `monitor`
    on the validation strip), `last.keras` + `state.json` (every epoch, for `resume`),
    `log.csv` (one row per epoch: loss, learning rate, `val_psnr`, `val_sam`, `val_ergas`,
    `val_rmse`), `tensorboard/` (when TensorBoard is available), `results.json`. A recipe's
    stages train in sub-folders (MSST-Net's `mbae_*` and `mpae_*`).

    Nothing is lost when the process is killed (docs/reliability.md): every file is written
    atomically (temporary file, then rename; TensorBoard's event files excepted), the files
    of an epoch are committed together (`ExperimentCheckpoint`), and `resume` continues from
    the last committed epoch with one `log.csv` row per epoch. The folder is locked for the
    whole run (`keras_hsifusion.utils.lock.RunLock`): a second run on it is refused with a
    `RunLockedError` naming the host and PID of the first, before anything is written.

    With `config["distribution"]` (`keras_hsifusion.training.distributed`), the models are
    built, loaded and fitted under the backend's data-parallel engine; with several
    processes (torchrun, multi-host), only rank 0 takes the lock, writes files and logs.

    Args:
        config: a config dict (validated here) or a path to a config file.
        out_dir: run directory.
        epochs: overrides `config["epochs"]` (the total, not additional, epochs).
        resume: continue from `out_dir/last.keras` (each stage where it stopped). Without
            it, the run starts from scratch and replaces the run files of the folder.
        verbose: `fit` verbosity (`"auto"`: a progress bar).
        log: function used for the runner's own messages.
        safe_mode: how the checkpoints are loaded back (resume, `best.keras`): True (the
            default) refuses files that would run Python code (`Lambda` layers); pass
            False only for a folder whose files you trust.

    Returns:
        the `results.json` dict: `val` (the validation logs of the best epoch), `test` (the
        best model on the test region, with SSIM; None if no epoch improved), `baselines`
        (every classical method on the test region), `epochs`, `best_epoch`, `monitor`,
        `name`, `backend`, `keras`, `replicas`, `wall_time_s`; None on ranks other than 0.
    """
    start = time.time()
    config = load_config(config) if isinstance(config, (str, os.PathLike)) else config
    config = validate_config(config)
    if epochs is not None:
        check_int("epochs", epochs)
        config["epochs"] = epochs
    out_dir = os.fspath(out_dir)
    dist = setup_distribution(config["distribution"])
    if not dist.is_chief:
        verbose, log = 0, lambda *args: None
    with RunLock(out_dir) if dist.is_chief else contextlib.nullcontext(), dist.scope():
        return _run(config, out_dir, resume, verbose, log, safe_mode, start, dist)


def _run(config, out_dir, resume, verbose, log, safe_mode, start, dist):
    results_path = os.path.join(out_dir, "results.json")
    if dist.is_chief and os.path.isfile(results_path):
        os.remove(results_path)  # the results of this run are written when it ends
    if dist.is_chief:
        atomic_write_json(os.path.join(out_dir, "config.json"), config)
    keras.utils.set_random_seed(config["seed"])

    data = build_data(config)
    scale, batch = data["scale"], config["data"]["batch_size"]
    if dist.num_replicas > 1:
        check_global_batch(batch, data["train"].patches_per_epoch, dist.num_replicas)
    log(dist.describe(batch))
    data["train"] = dist.shard(data["train"])
    steps = config["steps_per_epoch"] or len(data["train"])
    context = RecipeContext(config, data, out_dir, resume, verbose, log, safe_mode, dist)
    recipe = model_spec(config["model"]["class"]).recipe
    prepare_model = recipe.prepare(context) if recipe is not None else None

    def build():
        keras.utils.set_random_seed(config["seed"])
        model = context.build_model()
        if prepare_model is not None:
            prepare_model(model)
        zero_init(model, config["zero_init"])
        loss = build_loss(config["loss"])
        return context.compile(
            model, loss, config["optimizer"], config["schedule"], steps, config["epochs"]
        )

    held_out = HeldOutMetrics(data["val_inputs"], data["val_target"], scale, config["clip"])
    if prepare_model is not None:
        log(f"=== fine-tuning {config['model']['class']} ({config['epochs']} epochs)")
    model, state = fit_stage(
        build,
        data["train"],
        out_dir,
        config["epochs"],
        config["steps_per_epoch"],
        resume,
        verbose,
        extra_callbacks=[held_out],
        monitor=config["monitor"],
        tensorboard=_resolve_tensorboard(config["tensorboard"]),
        log=log,
        extra_state={"stage": "main"},
        safe_mode=safe_mode,
        dist=dist,
    )
    if not dist.is_chief:
        return None
    results = {
        "name": config["name"],
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "replicas": dist.num_replicas,
        "epochs": state["epoch"] if state else config["epochs"],
        "best_epoch": state.get("best_epoch") if state else None,
        "monitor": config["monitor"],
        "val": state.get("best_logs") if state else None,
        "test": None,
        "baselines": baseline_metrics(data["test_inputs"], data["test_target"], scale),
        "val_conditions": data.get("val_conditions"),
        "test_condition": data.get("test_condition"),
        "wall_time_s": time.time() - start,
    }
    best_path = os.path.join(out_dir, "best.keras")
    if os.path.isfile(best_path):
        # The one evaluation of the held-out test region: after selection, on the best model.
        best_model = load_keras_file(best_path, safe_mode, what="checkpoint")
        results["test"], _ = evaluate_region(
            best_model, data["test_inputs"], data["test_target"], scale, config["clip"], ssim=True
        )
    del model
    atomic_write_json(results_path, results)
    return results
