"""The zoo registry: each model folder registers one `ModelSpec`; generic code reads it.

Push, not pull: a model folder hands everything about its model to `register_model` (its
class, benchmark sizes, training recipe, FLOP formulas of its private layers, presets
folder), and nothing below the zoo imports the zoo. Training (config validation,
`build_model`, recipe stages), profiling (`count_flops` reads `flop_formulas()`), the
benchmark runner (`--model`, sizes) and the command line find models here and never name
one; the presets folder is pushed on to `keras_hsifusion.presets` at registration.
"""

import dataclasses

from keras_hsifusion.presets import register_presets

__all__ = [
    "ModelSpec",
    "flop_formulas",
    "get_model_spec",
    "model_names",
    "model_specs",
    "register_model",
]

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
        presets_dir: folder of the shipped presets (one sub-folder each), or None;
            registered with `keras_hsifusion.presets.register_presets`.
        flops: `{layer class: formula}`, the FLOP formulas of the model's private layers
            (`formula(layer, input_shapes, output_shapes) -> (flops, elementwise)`, as
            `keras_hsifusion.profiling.register_flops` takes), which `count_flops` uses.
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
    flops: dict = dataclasses.field(default_factory=dict)


def register_model(spec):
    """Adds a `ModelSpec` (replacing one of the same name) and registers its presets folder;
    returns it."""
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"`spec` must be a ModelSpec. Received: {type(spec).__name__}")
    for cls, formula in spec.flops.items():
        if not isinstance(cls, type) or not callable(formula):
            raise TypeError(
                "`flops` must map layer classes to formulas. "
                f"Received: {cls!r}: {type(formula).__name__}"
            )
    _SPECS[spec.name] = spec
    if spec.presets_dir:
        register_presets(spec.presets_dir)
    return spec


def model_specs():
    """All registered specs, by name."""
    return dict(_SPECS)


def flop_formulas():
    """The FLOP formulas of every registered model's private layers, `{layer class: formula}`."""
    formulas = {}
    for spec in _SPECS.values():
        formulas.update(spec.flops)
    return formulas


def model_names():
    return sorted(_SPECS)


def get_model_spec(name_or_class):
    """The spec of a model given its short name (`"hssdct"`) or class name (`"HSSDCT"`)."""
    for spec in _SPECS.values():
        if name_or_class in (spec.name, spec.cls.__name__, spec.cls):
            return spec
    known = sorted({s.name for s in _SPECS.values()} | {s.cls.__name__ for s in _SPECS.values()})
    raise ValueError(f"Unknown model. Expected one of {known}. Received: {name_or_class!r}")
