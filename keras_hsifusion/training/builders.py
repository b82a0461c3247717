"""Builders: the model, loss and optimiser of an experiment from its config sections.

Each builder checks the section it is given and raises a `ValueError` naming it; models are
found through the zoo registry (`keras_hsifusion.applications.registry`), never by name. The
data of an experiment is the evaluation protocol's (`keras_hsifusion.evaluation.protocol`).
"""

import copy

import keras

from keras_hsifusion import losses as khf_losses
from keras_hsifusion.applications.registry import get_model_spec, model_specs
from keras_hsifusion.data.patches import PatchesView
from keras_hsifusion.utils.validation import check_class_spec, check_schedule

__all__ = [
    "AutoencoderPatches",
    "build_loss",
    "build_model",
    "build_optimizer",
    "model_spec",
]


def model_spec(class_name):
    """The registered `ModelSpec` whose class is named `class_name` (a config's `model.class`)."""
    try:
        spec = get_model_spec(class_name)
    except ValueError:
        spec = None
    if spec is None or spec.cls.__name__ != class_name:
        classes = sorted(s.cls.__name__ for s in model_specs().values())
        raise ValueError(f"`model.class` must be one of {classes}. Received: class={class_name!r}")
    return spec


def build_model(model_config, hsi_bands, msi_bands, scale):
    """Builds the model of a config (`{"class": ..., **arguments}`) for the given data."""
    spec = check_class_spec("model", model_config)
    cls = model_spec(spec.pop("class")).cls
    return cls(hsi_bands=hsi_bands, msi_bands=msi_bands, scale=scale, **spec)


def build_loss(loss_config):
    """A loss from a `keras_hsifusion.losses` class name, a Keras loss name, or a dict."""
    spec = check_class_spec("loss", loss_config)
    name = spec.pop("class")
    cls = getattr(khf_losses, name, None)
    if isinstance(cls, type) and issubclass(cls, keras.losses.Loss):
        try:
            return cls(**spec)
        except TypeError as e:
            raise ValueError(f"Invalid arguments for loss {name!r}: {e}. Received: {spec}") from e
    try:
        if spec:
            return keras.losses.get({"class_name": name, "config": spec})
        loss = keras.losses.get(name)
    except (ValueError, TypeError) as e:
        raise ValueError(f"Unknown loss. Received: loss={name!r}") from e
    if loss is None:
        raise ValueError(f"Unknown loss. Received: loss={name!r}")
    return loss


def build_optimizer(optimizer_config, schedule_config=None, steps_per_epoch=1, epochs=1):
    """An optimiser (`{"class": ..., **arguments}`) with an optional learning-rate schedule.

    Args:
        optimizer_config: e.g. `{"class": "Adam", "learning_rate": 1e-3}`.
        schedule_config: None, `{"class": "cosine", "alpha": a}` (cosine decay from the
            learning rate to `a` times it over `epochs * steps_per_epoch` steps) or
            `{"class": "multistep", "milestones": [e1, e2], "gamma": g}` (multiplied by `g`
            after each milestone epoch, like torch's `MultiStepLR`).
        steps_per_epoch: optimiser steps per epoch.
        epochs: epochs of the whole run.
    """
    spec = check_class_spec("optimizer", optimizer_config)
    name = spec.pop("class")
    schedule = check_schedule("schedule", copy.deepcopy(schedule_config))
    if schedule is not None:
        lr = float(spec.pop("learning_rate", 1e-3))
        if schedule["class"] == "cosine":
            spec["learning_rate"] = keras.optimizers.schedules.CosineDecay(
                lr, decay_steps=max(1, epochs * steps_per_epoch), alpha=schedule["alpha"]
            )
        else:
            boundaries = [m * steps_per_epoch for m in schedule["milestones"]]
            values = [lr * schedule["gamma"] ** i for i in range(len(boundaries) + 1)]
            spec["learning_rate"] = keras.optimizers.schedules.PiecewiseConstantDecay(
                boundaries, values
            )
    return keras.optimizers.get({"class_name": name, "config": spec})


class AutoencoderPatches(PatchesView):
    """`(x, x)` batches of one input of a `FusionPatches` (`"lr_hsi"` or `"hr_msi"`).

    The training data of self-supervised encoder pretraining (e.g. MSST-Net's MBAE on the
    LR-HSI and MPAE on the HR-MSI).

    Args:
        patches: a `FusionPatches`.
        key: `"lr_hsi"` or `"hr_msi"`.
    """

    def __init__(self, patches, key, **kwargs):
        if key not in ("lr_hsi", "hr_msi"):
            raise ValueError(f"`key` must be 'lr_hsi' or 'hr_msi'. Received: key={key!r}")
        super().__init__(patches, **kwargs)
        self.key = key

    def __getitem__(self, index):
        x = self.patches[index][0][self.key]
        return x, x
