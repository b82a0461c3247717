"""The zoo registry: each model folder registers one `ModelSpec`; generic code reads it.

Training (config validation, `build_model`, recipe stages), profiling (`count_flops`
formulas are registered by the folders themselves), the benchmark runner (`--model`, sizes),
presets and the command line find models here and never name one.
"""

import dataclasses

__all__ = ["ModelSpec", "get_model_spec", "model_names", "model_specs", "register_model"]

_SPECS = {}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything generic code needs to know about one zoo model.

    Attributes:
        name: short snake-case name (`"hssdct"`): benchmark `--model`, preset prefix.
        cls: the `FusionModel` subclass; configs name it by `cls.__name__`.
        benchmark_kwargs: constructor arguments of the benchmark model besides
            `hsi_bands`, `msi_bands`, `scale` (which come from the size).
        benchmark_sizes: `{size name: ((h, w, C), (H, W, c))}` LR-HSI and HR-MSI shapes of
            the benchmarks at batch 1; `"default"` is the official default size.
        recipe: optional object with the model's own training stages (see
            `keras_hsifusion.training`): `config_keys` (`{key: default}` extra config keys),
            `validate(config) -> config`, and `prepare(context) -> fn(model)` run before
            fine-tuning (MSST-Net's MBAE/MPAE pretraining).
        presets_dir: folder of the shipped presets (one sub-folder each), or None.
        training_step: the loss and optimiser of the official training script,
            `{"loss": <keras_hsifusion.losses or Keras loss spec>, "optimizer": {"class":
            ..., **arguments}}`: the benchmarks time a training step of ours with them next
            to the official step. None: Adam and MAE.
    """

    name: str
    cls: type
    benchmark_kwargs: dict = dataclasses.field(default_factory=dict)
    benchmark_sizes: dict = dataclasses.field(default_factory=dict)
    recipe: object = None
    presets_dir: str = None
    training_step: dict = None


def register_model(spec):
    """Adds a `ModelSpec` (replacing one of the same name); returns it."""
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"`spec` must be a ModelSpec. Received: {type(spec).__name__}")
    _SPECS[spec.name] = spec
    return spec


def model_specs():
    """All registered specs, by name."""
    return dict(_SPECS)


def model_names():
    return sorted(_SPECS)


def get_model_spec(name_or_class):
    """The spec of a model given its short name (`"hssdct"`) or class name (`"HSSDCT"`)."""
    for spec in _SPECS.values():
        if name_or_class in (spec.name, spec.cls.__name__, spec.cls):
            return spec
    known = sorted({s.name for s in _SPECS.values()} | {s.cls.__name__ for s in _SPECS.values()})
    raise ValueError(f"Unknown model. Expected one of {known}. Received: {name_or_class!r}")
