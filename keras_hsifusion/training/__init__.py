"""Training recipes: experiment configs, validation-strip selection, checkpoints and resume.

One experiment is one plain dict (a JSON file or a Python file defining `CONFIG`), in the
spirit of BasicSR; `run_experiment(config, out_dir)` builds all of it and calls `fit`, and
`training/run.py` at the top of the repository is a thin command line around it. The
modules, by job:

- `config`: the schema (every key and its default, `DEFAULT_CONFIG`), `validate_config`,
  `load_config`.
- `builders`: `build_model` (through the zoo registry), `build_loss`, `build_optimizer`,
  `AutoencoderPatches`.
- `callbacks`: `HeldOutMetrics`, `ExperimentCheckpoint`, `read_state`.
- `runner`: `run_experiment` with resume, `fit_stage` (one resumable stage), the recipe
  hooks of each model (`RecipeContext`, `ModelSpec.recipe`).
(`keras_hsifusion.adaptation.adapt`, training on one real pair without a reference, builds
on these.) The data, the region metrics and the classical comparison are the evaluation
protocol's (`keras_hsifusion.evaluation.protocol`); the `"auto"` jit/eager choice is
`keras_hsifusion.utils.runtime`'s.
- `distributed`: the config's `distribution` (data parallel on JAX `keras.distribution`,
  `tf.distribute` or `torch.distributed`): `setup_distribution`, `DistributedContext`.
"""

from keras_hsifusion.training.builders import (
    AutoencoderPatches,
    build_loss,
    build_model,
    build_optimizer,
)
from keras_hsifusion.training.callbacks import ExperimentCheckpoint, HeldOutMetrics, read_state
from keras_hsifusion.training.config import (
    DEFAULT_CONFIG,
    MONITORS,
    load_config,
    validate_config,
)
from keras_hsifusion.training.distributed import (
    DistributedContext,
    ShardedBatches,
    check_distribution,
    setup_distribution,
)
from keras_hsifusion.training.runner import RecipeContext, fit_stage, run_experiment

__all__ = [
    "DEFAULT_CONFIG",
    "MONITORS",
    "AutoencoderPatches",
    "DistributedContext",
    "ExperimentCheckpoint",
    "HeldOutMetrics",
    "RecipeContext",
    "ShardedBatches",
    "build_loss",
    "build_model",
    "build_optimizer",
    "check_distribution",
    "fit_stage",
    "load_config",
    "read_state",
    "run_experiment",
    "setup_distribution",
    "validate_config",
]
