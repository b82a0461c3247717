"""Load official PyTorch ``state_dict`` files into keras_hsifusion models.

Each model family registers a mapping function (see ``register_converter``) that walks the
Keras model and names, for every Keras weight, the official tensor that fills it. The common
code here checks everything before a single weight is written: on a strict load, a key the
official forward never uses must be in the model's documented ``ignored`` list, and a Keras
weight without an official counterpart must be in its documented ``keras_only`` list.
"""

import dataclasses

import numpy as np

_CONVERTERS = []


def register_converter(model_cls):
    """Decorator registering ``fn(model, mapper)`` as the converter for ``model_cls``."""

    def decorator(fn):
        _CONVERTERS.append((model_cls, fn))
        return fn

    return decorator


@dataclasses.dataclass
class ConversionReport:
    """What `load_torch_state_dict` did.

    Attributes:
        loaded: official keys copied into the model.
        ignored: official keys the official forward never uses -> why.
        keras_only: Keras weight paths with no official counterpart -> why (left as they are,
            or set to the value that reproduces the official behaviour).
        missing: official keys the model needed but the state dict lacked (only when
            ``strict=False``; a strict load raises instead).
        unexpected: keys of the state dict that no mapping used (only when ``strict=False``).
    """

    loaded: list
    ignored: dict
    keras_only: dict
    missing: list
    unexpected: list

    def __str__(self):
        lines = [
            f"loaded {len(self.loaded)} official tensors",
            f"ignored {len(self.ignored)} official keys the official forward never uses",
            f"{len(self.keras_only)} Keras weights have no official counterpart",
            f"missing {len(self.missing)}, unexpected {len(self.unexpected)}",
        ]
        for title, items in (
            ("ignored", self.ignored.items()),
            ("keras_only", self.keras_only.items()),
        ):
            for key, why in items:
                lines.append(f"  {title}: {key} ({why})")
        for key in self.missing:
            lines.append(f"  missing: {key}")
        for key in self.unexpected:
            lines.append(f"  unexpected: {key}")
        return "\n".join(lines)


def _to_numpy(value, key):
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except Exception as e:  # noqa: BLE001
        raise TypeError(f"state_dict[{key!r}] is not an array or tensor: {type(value)}") from e


class WeightMapper:
    """Collects (Keras variable <- official array) pairs and the documented leftovers."""

    def __init__(self, state_dict, prefix=""):
        self._sd = state_dict
        self._prefix = prefix
        self._pairs = []  # (variable, array, key)
        self._set_ids = set()
        self.used = []
        self.missing = []
        self.errors = []
        self.ignored = {}
        self.keras_only = {}

    # -- official side -------------------------------------------------------------------
    def has(self, key):
        return self._prefix + key in self._sd

    def get(self, key):
        full = self._prefix + key
        if full not in self._sd:
            self.missing.append(full)
            return None
        self.used.append(full)
        return self._sd[full]

    def ignore(self, key, why):
        """Documents an official key that the official forward never reads."""
        full = self._prefix + key
        if full in self._sd:
            self.ignored[full] = why

    def ignore_matching(self, predicate, why):
        for key in self._sd:
            rel = key[len(self._prefix) :] if key.startswith(self._prefix) else None
            if rel is not None and predicate(rel):
                self.ignored[key] = why

    # -- Keras side ----------------------------------------------------------------------
    def assign(self, variable, key, transform=None):
        array = self.get(key)
        if array is None:
            return
        if transform is not None:
            array = transform(array)
        array = np.asarray(array)
        if tuple(array.shape) != tuple(variable.shape):
            self.errors.append(
                f"{self._prefix + key}: official shape {tuple(array.shape)} does not fit Keras "
                f"weight {variable.path} of shape {tuple(variable.shape)}"
            )
            return
        self._pairs.append((variable, array, self._prefix + key))
        self._set_ids.add(id(variable))

    def keras_only_weight(self, variable, why, value=None):
        """Documents a Keras weight the official model lacks; optionally sets its value."""
        self.keras_only[variable.path] = why
        self._set_ids.add(id(variable))
        if value is not None:
            self._pairs.append((variable, np.broadcast_to(value, variable.shape), None))

    # Common torch module layouts.
    def conv2d(self, layer, prefix, bias=True):
        self.assign(layer.kernel, prefix + ".weight", lambda w: np.transpose(w, (2, 3, 1, 0)))
        if bias:
            self.assign(layer.bias, prefix + ".bias")

    def conv1x1_as_dense(self, layer, prefix, bias=True):
        self.assign(layer.kernel, prefix + ".weight", lambda w: np.transpose(w[:, :, 0, 0]))
        if bias:
            self.assign(layer.bias, prefix + ".bias")

    def conv_transpose2d(self, layer, prefix, bias=True):
        self.assign(layer.kernel, prefix + ".weight", lambda w: np.transpose(w, (2, 3, 1, 0)))
        if bias:
            self.assign(layer.bias, prefix + ".bias")

    def dense(self, layer, prefix, bias=True):
        self.assign(layer.kernel, prefix + ".weight", np.transpose)
        if bias:
            self.assign(layer.bias, prefix + ".bias")

    def layer_norm(self, layer, prefix):
        self.assign(layer.gamma, prefix + ".weight")
        self.assign(layer.beta, prefix + ".bias")

    def unset_variables(self, model):
        return [v for v in model.weights if id(v) not in self._set_ids]


def _normalise_state_dict(state_dict):
    if not hasattr(state_dict, "items"):
        raise TypeError(
            "`state_dict` must be a mapping of names to tensors or arrays, as returned by "
            f"`torch_model.state_dict()`. Received: {type(state_dict).__name__}"
        )
    out = {}
    for key, value in state_dict.items():
        name = key[len("module.") :] if key.startswith("module.") else key
        out[name] = _to_numpy(value, key)
    return out


def load_torch_state_dict(model, state_dict, strict=True):
    """Copy official PyTorch weights into a keras_hsifusion model.

    Args:
        model: a built keras_hsifusion model (`HSSDCT`, `MSSTNet`, `MBAE`, `MPAE`).
        state_dict: mapping name -> torch tensor or numpy array, exactly as the official
            `model.state_dict()` returns it (a leading `module.` from DataParallel is fine).
        strict: if True (default), raise `ValueError` unless every official key is loaded or
            documented as unused by the official forward, and every Keras weight is filled or
            documented as having no official counterpart. If False, load what matches.

    Returns:
        A `ConversionReport`.

    Raises:
        ValueError: on shape mismatches (always) and on missing/unexpected keys (strict).
            The model is left untouched when an error is raised.
    """
    converter = None
    for cls, fn in _CONVERTERS:
        if isinstance(model, cls):
            converter = fn
    if converter is None:
        names = sorted({cls.__name__ for cls, _ in _CONVERTERS})
        raise ValueError(
            f"No official-weight converter for {type(model).__name__}. Supported: {names}"
        )
    sd = _normalise_state_dict(state_dict)
    mapper = WeightMapper(sd)
    converter(model, mapper)

    unexpected = sorted(set(sd) - set(mapper.used) - set(mapper.ignored))
    unset = [v.path for v in mapper.unset_variables(model)]
    problems = list(mapper.errors)
    if strict:
        problems += [f"missing official key: {k}" for k in mapper.missing]
        problems += [f"unexpected official key: {k}" for k in unexpected]
        problems += [f"Keras weight not filled: {p}" for p in unset]
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ValueError(
            f"Cannot load this state dict into {type(model).__name__} "
            f"({model.name}):\n  {shown}{more}"
        )
    for variable, array, _ in mapper._pairs:
        variable.assign(np.asarray(array, dtype=variable.dtype))
    return ConversionReport(
        loaded=list(mapper.used),
        ignored=dict(mapper.ignored),
        keras_only=dict(mapper.keras_only),
        missing=list(mapper.missing),
        unexpected=unexpected,
    )
