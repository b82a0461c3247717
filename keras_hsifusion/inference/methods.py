"""How `fuse` runs a method: a preset, a zoo model or a classical method as one callable.

`resolve_method` turns what the user passed into a `_Method` (picklable, for Dask workers)
with the model's tiling defaults and the preset card's input normalisation; `fuse_tile`
fuses one tile with it (normalising and restoring the input units).
"""

import numbers
import os
import threading

import keras
import numpy as np

from keras_hsifusion.baselines.global_skip import (
    FITTED_METHODS,
    bicubic,
    fitted_global_skips,
    global_skip_statistics,
    tile_halo,
)

__all__ = ["check_divisor", "fuse_tile", "resolve_method", "scale_inputs"]

# Models without their own `fuse_tile` / `fuse_overlap` class attributes.
MODEL_TILE = 128
MODEL_OVERLAP_FRACTION = 4  # overlap = tile // 4
# One swap of a model's predict function at a time (`_Method._predict`).
_PREDICT_LOCK = threading.Lock()


def _card_divisor(card):
    """How a preset card says to normalise: None (no card or entry), "max" or a number."""
    norm = (card or {}).get("normalisation")
    if not norm:
        return None
    divisor = norm.get("divisor", "max_lr_hsi") if isinstance(norm, dict) else "max_lr_hsi"
    if isinstance(divisor, numbers.Real) and not isinstance(divisor, bool) and divisor > 0:
        return float(divisor)
    if divisor in ("max", "max_lr_hsi"):
        return "max"
    raise ValueError(f"Unknown `normalisation.divisor` in the preset card: {divisor!r}")


class _Method:
    """A resolved `method`: fuses float32 numpy batches; picklable (for Dask workers).

    Attributes: `kind` ("model" or "classical"), `name`, `scale` (None for classical),
    `hsi_bands` / `msi_bands` (None for classical), `multiple` (HR alignment of tiles, or
    None: the scale), `tile` / `overlap` (defaults, or None), `divisor` (None, "max" or a
    number: the preset normalisation), `statistics` (the scene's `GlobalSkipStatistics`
    that every call applies, set by `fuse`; empty: each tile fits its own).
    """

    def __init__(self, kind, name, model=None, fn=None, preset=None, card=None):
        self.kind, self.name, self.preset = kind, name, preset
        self._model, self.fn = model, fn
        self.divisor = _card_divisor(card)
        self.scale = self.hsi_bands = self.msi_bands = self.multiple = None
        self.tile = self.overlap = None
        if kind == "model":
            self.scale = int(model.scale)
            self.hsi_bands = getattr(model, "hsi_bands", None)
            self.msi_bands = getattr(model, "msi_bands", None)
            multiple = int(getattr(model, "fuse_multiple", None) or self.scale)
            self.multiple = multiple * self.scale // np.gcd(multiple, self.scale)
            tile = getattr(model, "fuse_tile", None) or MODEL_TILE
            self.tile = -(-int(tile) // self.multiple) * self.multiple
            overlap = getattr(model, "fuse_overlap", None)
            self.overlap = int(overlap if overlap is not None else tile // MODEL_OVERLAP_FRACTION)
        self.backend = keras.backend.backend()
        self.statistics = ()
        self._predict_function = None

    def global_skips(self, scale, psf_fwhm=None):
        """`(mode, scale, psf_fwhm)` of every global skip the method fits per image."""
        if self.kind == "model":
            return [(s.mode, s.scale, s.psf_fwhm) for s in fitted_global_skips(self.model)]
        mode = FITTED_METHODS.get(self.fn)
        return [] if mode is None else [(mode, scale, psf_fwhm)]

    def halo(self, scale, psf_fwhm=None, skip_fit="scene"):
        """HR pixels on each side that decide an output pixel when the method is local
        (bicubic, and the fitted detail injections with the scene's regression,
        `baselines.global_skip.tile_halo`), else None: tiles with that margin give the
        one-pass result, so `fuse` writes each tile's core and blends nothing."""
        if self.kind != "classical" or (skip_fit != "scene" and self.fn is not bicubic):
            return None
        return tile_halo(self.fn, scale, psf_fwhm)

    @property
    def model(self):
        if self._model is None:  # on a Dask worker: reload the preset (cached per process)
            self._model = _load_preset(self.preset)
        return self._model

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.preset is not None:
            state["_model"] = None  # workers load the preset from its files
        state["_predict_function"] = None  # a compiled function: traced again there
        return state

    def __call__(self, lr, hr, scale, srf=None, psf_fwhm=None):
        """`lr (B, h, w, C)`, `hr (B, H, W, c)` numpy (float32 for a model) -> `(B, H, W, C)`
        float32, with the scene's global-skip statistics (`statistics`) when set."""
        with global_skip_statistics(*self.statistics):
            return self._call(lr, hr, scale, srf, psf_fwhm)

    def _predict(self, model, inputs):
        if not self.statistics:
            return model.predict_on_batch(inputs)
        # A compiled predict function holds the statistics it was traced with as constants:
        # this method's own one (traced once per tile shape with its statistics), and the
        # model's left as it was, for calls outside `fuse`.
        with _PREDICT_LOCK:
            saved, model.predict_function = model.predict_function, self._predict_function
            try:
                out = model.predict_on_batch(inputs)
                self._predict_function = model.predict_function
            finally:
                model.predict_function = saved
        return out

    def _call(self, lr, hr, scale, srf, psf_fwhm):
        if self.kind == "classical":
            out = [self.fn(a, b, scale, srf=srf, psf_fwhm=psf_fwhm) for a, b in zip(lr, hr)]
            if len(out) == 1:  # a view, not a copy of the (possibly whole-scene) output
                return np.asarray(out[0], dtype=np.float32)[None]
            return np.stack([np.asarray(o, dtype=np.float32) for o in out])
        for arg, x in (("lr_hsi", lr), ("hr_msi", hr)):
            bad = x.size - int(np.count_nonzero(np.isfinite(x)))
            if bad:  # a model spreads a NaN over its windows or its whole tile
                raise ValueError(
                    f"`{arg}` must be finite to be fused by a model. Received: a tile of "
                    f"{arg} of shape {x.shape[1:]} with {bad} NaN/Inf value(s). Fill the "
                    "nodata pixels first (`khf fuse` fills them and keeps them nodata)."
                )
        inputs = {"lr_hsi": np.ascontiguousarray(lr), "hr_msi": np.ascontiguousarray(hr)}
        model = self.model
        if keras.backend.backend() == "tensorflow":
            # Eager: tracing a fusion network costs tens of seconds per tile shape.
            out = model(inputs, training=False)
        else:  # torch: no autograd graph; JAX: compiled once per tile shape
            out = self._predict(model, inputs)
        out = np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)
        if not np.all(np.isfinite(out)):
            peak = max(float(np.abs(lr).max()), float(np.abs(hr).max()))
            raise ValueError(
                f"The model {self.name!r} gave NaN/Inf on finite inputs (largest |value| "
                f"{peak:.6g}): float32 overflowed inside it. The zoo models are trained on "
                "inputs scaled to about [0, 1]: divide both inputs by one constant (e.g. the "
                "maximum of `lr_hsi`) and multiply the result back, or fuse with a preset, "
                "whose card's `normalisation` does it."
            )
        return out


_PRESET_CACHE = {}


def _load_preset(folder):
    from keras_hsifusion import presets

    key = (os.path.abspath(folder), presets.load_card(folder)["sha256"])
    if key not in _PRESET_CACHE:
        _PRESET_CACHE.clear()  # keep one model: a process fuses with one preset at a time
        _PRESET_CACHE[key] = presets.load_preset(folder)
    return _PRESET_CACHE[key]


def resolve_method(method):
    """The `_Method` of a preset name, a preset folder, a `FusionModel` or a classical name.

    Classical names are looked up in `keras_hsifusion.baselines.METHODS` at call time.
    """
    from keras_hsifusion import baselines, presets

    # A zoo model (`FusionModel`), recognised by its interface so that this module and
    # `applications.fusion_model` (whose `fuse` calls here) do not import each other.
    if isinstance(method, keras.Model) and all(
        hasattr(method, a) for a in ("scale", "hsi_bands", "msi_bands")
    ):
        card = getattr(method, "preset_card", None)
        return _Method("model", method.name, model=method, card=card)
    if isinstance(method, (str, os.PathLike)):
        name = os.fspath(method)
        if name in baselines.METHODS:
            return _Method("classical", name, fn=baselines.METHODS[name])
        shipped = presets.shipped_presets()
        folder = shipped.get(name)
        if folder is None and os.path.isfile(os.path.join(name, presets.CARD_FILE)):
            folder = name
        if folder is not None:
            card = presets.load_card(folder)
            model = _load_preset(folder)
            return _Method("model", name, model=model, preset=folder, card=card)
        raise ValueError(
            "Unknown `method`. Expected a preset name "
            f"{sorted(shipped)}, a preset folder, a classical method "
            f"{sorted(baselines.METHODS)} or a FusionModel. Received: method={method!r}"
        )
    raise TypeError(
        "`method` must be a preset name or folder, a classical method name or a FusionModel. "
        f"Received: method of type {type(method).__name__}"
    )


def check_divisor(maximum):
    """The preset normalisation's divisor from the maximum of `lr_hsi`: a positive, finite
    float, else a `ValueError` (dividing by it would give a silently wrong scene)."""
    maximum = float(maximum)
    if not (np.isfinite(maximum) and maximum > 0):
        raise ValueError(
            "A preset divides its inputs by the maximum of `lr_hsi` (its card's "
            "`normalisation`), which must be positive and finite: the LR-HSI must hold some "
            "positive signal and no NaN/Inf. Received: max(lr_hsi)="
            f"{maximum!r}. Fill nodata pixels first, or pass the model itself "
            "(without `preset_card`) to fuse the values as given."
        )
    return maximum


def scale_inputs(lr, hr, divisor, dtype=np.float32):
    """Both inputs as C-contiguous `dtype` arrays, divided by `divisor` (if not None) first.

    The division is done in float64 on the values as read (any dtype) and rounded to float32
    once, so inputs `k` times larger (divided by a `k` times larger maximum) give the same
    float32 numbers, which a model, sensitive to the last bit, then fuses identically; and
    any memory layout (a band-sequential view, a strided slice) gives one contiguous copy.
    Classical methods get float64 (`dtype`), so that float64 input is not rounded.
    """
    if divisor is not None:
        lr = np.asarray(lr, dtype=np.float64) / divisor
        hr = np.asarray(hr, dtype=np.float64) / divisor
    return np.ascontiguousarray(lr, dtype=dtype), np.ascontiguousarray(hr, dtype=dtype)


def fuse_tile(m, lr, hr, scale, srf, psf_fwhm, divisor):
    """One tile, `(h, w, C)` and `(H, W, c)` arrays -> the fused `(H, W, C)` float32."""
    lr, hr = scale_inputs(lr, hr, divisor, np.float32 if m.kind == "model" else np.float64)
    pred = m(lr[None], hr[None], scale, srf, psf_fwhm)[0]
    return pred * np.float32(divisor) if divisor is not None else pred
