"""`FusionModel`: the base class of every model of the zoo."""

import keras

from keras_hsifusion import presets
from keras_hsifusion.utils.config import ConstructorConfig
from keras_hsifusion.utils.validation import check_int


def check_fusion_inputs(model, inputs):
    """Raises a `ValueError` naming the shapes when the inputs cannot be fused by `model`.

    Checks the rank, non-empty heights and widths, the band counts against `model.hsi_bands` /
    `model.msi_bands`, and that `hr_msi` is exactly `scale` x `lr_hsi`, wherever the sizes are
    known (eager calls, and every traced call of `fit`, `predict` and `evaluate`, which see
    concrete shapes). Sizes smaller than a window or patch are padded inside the model.
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
        if any(isinstance(n, int) and n < 1 for n in shape[1:3]):
            raise ValueError(
                f"{name}: `{arg}` is empty: its height and width must be at least 1. "
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


class FusionModel(ConstructorConfig, keras.Model):
    """Base class of the zoo's HSI/MSI fusion models.

    A `keras.Model` whose subclasses build a functional graph with the inputs
    `{"lr_hsi": (B, h, w, hsi_bands), "hr_msi": (B, scale*h, scale*w, msi_bands)}` inside
    `__init__` (as keras-hub's `Backbone`), then call `super().__init__(inputs=..., outputs=...)`
    and `self._keep_config(locals())`, which keeps every constructor argument (at least
    `hsi_bands`, `msi_bands` and `scale`) as an attribute. It gives every model:

    - the input check of `check_fusion_inputs` on every call (clear `ValueError`s);
    - `get_config`: the constructor arguments with `name`, `trainable` and `dtype`, and
      `from_config` that restores the dtype policy (`utils.config.ConstructorConfig`);
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
        expected = None if cls is FusionModel else cls
        return presets.load_preset(preset, expected_class=expected, safe_mode=safe_mode)

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
        return presets.save_preset(self, preset_dir, **card)

    def fuse(self, lr_hsi, hr_msi, tile=None, overlap=None, batch_size=1, progress=False, out=None):
        """Fuses one whole scene of any size in overlapping, blended tiles.

        `keras_hsifusion.fuse(lr_hsi, hr_msi, method=self, ...)`: tiles aligned to the scale
        and to this model's windows/patches (`fuse_multiple`), cross-faded with raised-cosine
        weights, written row strip by row strip (see docs/fuse.md).

        Args:
            lr_hsi: `(h, w, hsi_bands)` channels-last array (numpy of any float or integer
                dtype, np.memmap, h5py/zarr dataset, or Dask array). No batch axis.
            hr_msi: `(scale*h, scale*w, msi_bands)` array of the same kinds.
            tile: tile side in HR pixels (int or `(rows, cols)`), a multiple of
                `fuse_multiple`. Defaults to the class's `fuse_tile`.
            overlap: least overlap of neighbouring tiles in HR pixels. Defaults to the
                class's `fuse_overlap`.
            batch_size: tiles per model call. Default 1.
            progress: show a progress bar over the tiles. Default False.
            out: None, or a `(H, W, hsi_bands)` target written row strip by row strip
                (np.memmap, h5py or zarr dataset, raster writer).

        Returns:
            the fused `(H, W, hsi_bands)` float32 numpy array (or `out`; a Dask array for
            Dask inputs).

        Examples:
        >>> import numpy as np, keras_hsifusion as khf
        >>> model = khf.applications.HSSDCT(hsi_bands=8, msi_bands=3, nf=32, gc=16, window_size=4)
        >>> rng = np.random.default_rng(0)
        >>> lr, hr = rng.random((24, 16, 8)), rng.random((96, 64, 3))
        >>> fused = model.fuse(lr, hr, tile=64, overlap=32)  # two tiles of 64 x 64
        >>> fused.shape, fused.dtype
        ((96, 64, 8), dtype('float32'))
        """
        from keras_hsifusion.inference import fuse

        return fuse(
            lr_hsi,
            hr_msi,
            self,
            tile=tile,
            overlap=overlap,
            batch_size=batch_size,
            progress=progress,
            out=out,
        )


def check_model_bands(hsi_bands, msi_bands):
    check_int("hsi_bands", hsi_bands)
    check_int("msi_bands", msi_bands)
