"""Training recipes: experiment configs, validation-strip selection, checkpoints and resume.

One experiment is one plain dict (a JSON file or a Python file defining `CONFIG`), in the
spirit of BasicSR; `run_experiment(config, out_dir)` builds all of it and calls `fit`, and
`training/run.py` at the top of the repository is a thin command line around it. The
modules, by job:

- `config`: the schema (every key and its default, `DEFAULT_CONFIG`), `validate_config`,
  `load_config`.
- `builders`: `build_data` (scene simulation; training, validation and test regions),
  `build_model` (through the zoo registry), `build_loss`, `build_optimizer`,
  `AutoencoderPatches`.
- `callbacks`: `evaluate_region`/`region_metrics` (whole-region numpy metrics),
  `HeldOutMetrics`, `ExperimentCheckpoint`, `read_state`.
- `runner`: `run_experiment` with resume, the recipe hooks of each model (`RecipeContext`,
  `ModelSpec.recipe`), `resolve_jit_compile`/`resolve_run_eagerly`.
(`keras_hsifusion.adaptation.adapt`, training on one real pair without a reference, builds
on these.)
- `distributed`: the config's `distribution` (data parallel on JAX `keras.distribution`,
  `tf.distribute` or `torch.distributed`): `setup_distribution`, `DistributedContext`.
"""

from keras_hsifusion.training.builders import (
    DEFAULT_DATA,
    AutoencoderPatches,
    build_data,
    build_loss,
    build_model,
    build_optimizer,
)
from keras_hsifusion.training.callbacks import (
    ExperimentCheckpoint,
    HeldOutMetrics,
    evaluate_region,
    read_state,
    region_metrics,
)
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
from keras_hsifusion.training.runner import (
    RecipeContext,
    baseline_metrics,
    resolve_jit_compile,
    resolve_run_eagerly,
    run_experiment,
)

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_DATA",
    "MONITORS",
    "AutoencoderPatches",
    "DistributedContext",
    "ExperimentCheckpoint",
    "HeldOutMetrics",
    "RecipeContext",
    "ShardedBatches",
    "baseline_metrics",
    "build_data",
    "build_loss",
    "build_model",
    "build_optimizer",
    "check_distribution",
    "evaluate_region",
    "load_config",
    "read_state",
    "region_metrics",
    "resolve_jit_compile",
    "resolve_run_eagerly",
    "run_experiment",
    "setup_distribution",
    "validate_config",
]
