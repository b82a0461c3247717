"""`FusionModel`: the base class of every model of the zoo."""

import keras

from keras_hsifusion.utils.validation import check_int


def check_fusion_inputs(model, inputs):
    """Raises a `ValueError` naming the shapes when the inputs cannot be fused by `model`.

    Checks the rank, the band counts against `model.hsi_bands` / `model.msi_bands`, and that
    `hr_msi` is exactly `scale` x `lr_hsi`, wherever the sizes are known (eager calls, and every
    traced call of `fit`, `predict` and `evaluate`, which see concrete shapes).
    """
    if not isinstance(inputs, dict) or "lr_hsi" not in inputs or "hr_msi" not in inputs:
        return  # Keras reports missing or unnamed inputs itself
    lr, hr = tuple(inputs["lr_hsi"].shape), tuple(inputs["hr_msi"].shape)
    name = type(model).__name__
    for arg, shape, bands in (("lr_hsi", lr, "hsi_bands"), ("hr_msi", hr, "msi_bands")):
        if len(shape) != 4:
            raise ValueError(
                f"{name}: `{arg}` must be a 4D (batch, height, width, bands) tensor. "
                f"Received: {arg} with shape {shape}"
            )
        expected = getattr(model, bands, None)
        if isinstance(shape[3], int) and expected is not None and shape[3] != expected:
            raise ValueError(
                f"{name}: `{arg}` must have {bands}={expected} bands (the model was built or "
                f"trained for {expected}). Received: {arg} with shape {shape}"
            )
    s = model.scale
    for axis in (1, 2):
        known = isinstance(lr[axis], int) and isinstance(hr[axis], int)
        if known and hr[axis] != s * lr[axis]:
            raise ValueError(
                f"{name}: `hr_msi` must be exactly scale={s} times the height and width of "
                f"`lr_hsi`. Received: lr_hsi with shape {lr} and hr_msi with shape {hr} "
                f"(expected hr_msi of height x width {s * lr[1]} x {s * lr[2]})"
            )


class FusionModel(keras.Model):
    """Base class of the zoo's HSI/MSI fusion models.

    A `keras.Model` whose subclasses build a functional graph with the inputs
    `{"lr_hsi": (B, h, w, hsi_bands), "hr_msi": (B, scale*h, scale*w, msi_bands)}` inside
    `__init__` (as keras-hub's `Backbone`), then call `super().__init__(inputs=..., outputs=...)`
    and set `hsi_bands`, `msi_bands` and `scale`. It gives every model:

    - the input check of `check_fusion_inputs` on every call (clear `ValueError`s);
    - `get_config` with `name`, `trainable` and `dtype` (subclasses add their constructor
      arguments) and `from_config` that restores the dtype policy;
    - presets: `from_preset(name_or_path)` and `save_to_preset(folder)`
      (`keras_hsifusion.presets`).

    Subclasses register themselves with `keras.saving.register_keras_serializable` and in the
    zoo registry (`keras_hsifusion.applications.registry.register_model`).
    """

    def __call__(self, inputs, *args, **kwargs):
        # Before Keras' own input-spec check, so that users get the fusion-specific message.
        check_fusion_inputs(self, inputs)
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=None, mask=None, **kwargs):
        # JAX's trainer reaches `call` through `stateless_call`, not `__call__`.
        check_fusion_inputs(self, inputs)
        return super().call(inputs, training=training, mask=mask, **kwargs)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)

    @classmethod
    def from_preset(cls, preset, safe_mode=True):
        """Loads a shipped preset by name, or a preset folder saved by `save_to_preset`.

        Args:
            preset: a name of `keras_hsifusion.list_presets()` or a path to a folder with
                `preset.json` and `model.keras`.
            safe_mode: passed to `keras.models.load_model` (default True: no Lambda layers,
                no unknown code).

        Returns:
            the model (not compiled). Raises a `ValueError` when the preset holds another
            class than `cls` (`FusionModel.from_preset` accepts any zoo model), and when the
            file's sha256 does not match its card.
        """
        from keras_hsifusion import presets

        return presets.load_preset(preset, expected_class=cls, safe_mode=safe_mode)

    def save_to_preset(self, preset_dir, **card):
        """Saves the model as a preset folder: `model.keras` plus its card `preset.json`.

        Args:
            preset_dir: folder to create (or overwrite the two files of).
            **card: extra card entries (JSON-serialisable), e.g. `description`,
                `hsi_wavelengths_nm`, `msi_sensor`, `normalisation`, `metrics`.

        Returns:
            the card (dict), with `class`, `config`, `scale`, band counts, `params` and the
            file's `sha256` filled in.
        """
        from keras_hsifusion import presets

        return presets.save_preset(self, preset_dir, **card)


def check_model_bands(hsi_bands, msi_bands):
    check_int("hsi_bands", hsi_bands)
    check_int("msi_bands", msi_bands)
