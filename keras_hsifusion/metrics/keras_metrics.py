"""Keras metric classes: the full-reference metrics as stateful `keras.metrics.Metric`s.

The `keras.metrics.Metric` classes `PSNR`, `SAM`, `ERGAS` and `RMSE` compute the same
per-image values with `keras.ops` (float32) and report the mean over every image seen since
the last reset (weighted by `sample_weight` when given). Their result after several batches
therefore equals the numpy function applied to the concatenation of those batches.
"""

import keras
import numpy as np
from keras import ops

from keras_hsifusion.utils.validation import check_number

__all__ = ["ERGAS", "PSNR", "RMSE", "SAM"]


class _MeanOverImages(keras.metrics.Metric):
    """Mean over every image seen of a per-image value computed by `_per_image`.

    Args:
        name: defaults to the class name in lower case (`"psnr"`, `"rmse"`, `"sam"`, ...).
        dtype: dtype of the metric's state.
    """

    def __init__(self, name=None, dtype=None):
        super().__init__(name=name or type(self).__name__.lower(), dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.cast(y_pred, "float32")
        if len(y_true.shape) == 3:
            y_true, y_pred = y_true[None], y_pred[None]
        values = self._per_image(y_true, y_pred)
        if sample_weight is None:
            weights = ops.ones_like(values)
        else:
            weights = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
            weights = ops.broadcast_to(weights, ops.shape(values))
        self.total.assign_add(ops.cast(ops.sum(values * weights), self.dtype))
        self.count.assign_add(ops.cast(ops.sum(weights), self.dtype))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


@keras.saving.register_keras_serializable(package="keras_hsifusion")
class PSNR(_MeanOverImages):
    """Peak signal-to-noise ratio in dB, mean over images (peak = max of each reference).

    Per image as `keras_hsifusion.metrics.psnr`; the MSE is floored at 1e-12 so that a
    perfect image gives a large finite value instead of `inf`. Inside a compiled step the
    inputs are not checked: a reference of peak 0 gives `-inf` where `psnr` raises. Args:
    `name` (default `"psnr"`) and `dtype`, as every metric class here.

    Examples:
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Dense(3)])
    >>> model.compile(optimizer="adam", loss="mae", metrics=[PSNR(), SAM(), ERGAS(scale=4)])
    >>> psnr = PSNR()
    >>> psnr.update_state(np.full((1, 4, 4, 3), 0.5), np.full((1, 4, 4, 3), 0.55))
    >>> round(float(psnr.result()), 2)  # 10 log10(0.5^2 / 0.05^2)
    20.0
    """

    def _per_image(self, y_true, y_pred):
        mse = ops.mean(ops.square(y_true - y_pred), axis=(1, 2, 3))
        peak = ops.max(y_true, axis=(1, 2, 3))
        return 10.0 * ops.log10(ops.square(peak) / ops.maximum(mse, 1e-12))


@keras.saving.register_keras_serializable(package="keras_hsifusion")
class RMSE(_MeanOverImages):
    """Root mean squared error, per image (as `keras_hsifusion.metrics.rmse`), mean over images.

    Examples:
    >>> rmse, ref = RMSE(), np.zeros((1, 4, 4, 3))
    >>> rmse.update_state(ref, ref + 0.5)
    >>> rmse.update_state(ref, ref + 1.5)
    >>> float(rmse.result())  # the mean of the per-image values 0.5 and 1.5
    1.0
    """

    def _per_image(self, y_true, y_pred):
        return ops.sqrt(ops.mean(ops.square(y_true - y_pred), axis=(1, 2, 3)))


@keras.saving.register_keras_serializable(package="keras_hsifusion")
class SAM(_MeanOverImages):
    """Spectral angle in degrees, per image (as `keras_hsifusion.metrics.sam`), mean over images.

    Pixels where either spectrum is all-zero are skipped; the cosine is clipped to [-1, 1].

    Examples:
    >>> sam = SAM()
    >>> sam.update_state(np.tile([1.0, 0.0], (1, 2, 2, 1)), np.tile([1.0, 1.0], (1, 2, 2, 1)))
    >>> round(float(sam.result()), 3)  # (1, 0) against (1, 1) in every pixel
    45.0
    """

    def _per_image(self, y_true, y_pred):
        dot = ops.sum(y_true * y_pred, axis=-1)
        nt = ops.sqrt(ops.sum(ops.square(y_true), axis=-1))
        np_ = ops.sqrt(ops.sum(ops.square(y_pred), axis=-1))
        valid = ops.cast(ops.logical_and(nt > 0, np_ > 0), "float32")
        cos = ops.clip(ops.divide_no_nan(dot, nt * np_), -1.0, 1.0)
        angle = ops.arccos(cos) * (180.0 / np.pi) * valid
        return ops.divide_no_nan(ops.sum(angle, axis=(1, 2)), ops.sum(valid, axis=(1, 2)))


@keras.saving.register_keras_serializable(package="keras_hsifusion")
class ERGAS(_MeanOverImages):
    """ERGAS, per image (as `keras_hsifusion.metrics.ergas`), mean over images.

    Inside a compiled step the inputs are not checked: a reference band of mean 0 gives
    `inf` (or NaN for an exact estimate) where `ergas` raises.

    Args:
        scale: resolution ratio between HR and LR images. Defaults to 4.
        name: defaults to `"ergas"`.
        dtype: dtype of the metric's state.

    Examples:
    >>> ergas, ref = ERGAS(scale=4), np.ones((1, 8, 8, 3))
    >>> ergas.update_state(ref, 1.1 * ref)  # RMSE 0.1 of every band, band means 1
    >>> round(float(ergas.result()), 3)  # 100 / 4 * 0.1
    2.5
    """

    def __init__(self, scale=4, name="ergas", dtype=None):
        check_number("scale", scale)
        super().__init__(name=name, dtype=dtype)
        self.scale = scale

    def _per_image(self, y_true, y_pred):
        rmse_k = ops.sqrt(ops.mean(ops.square(y_true - y_pred), axis=(1, 2)))
        mu_k = ops.mean(y_true, axis=(1, 2))
        return (100.0 / self.scale) * ops.sqrt(ops.mean(ops.square(rmse_k / mu_k), axis=-1))

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}
