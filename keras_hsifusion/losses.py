"""Training losses for hyperspectral fusion, channels-last, serializable.

`HSSDCTJointLoss` is the loss of the official HSSDCT training script (`train.py` with
`--joint_loss 1`, functions in `trainOps.py`):

    total = SmoothL1(pred, gt) + 0.1 * SAM(pred, gt) + 0.1 * BandWiseMSE(pred, gt)

The official script names its first term `L1Loss` but builds it as `torch.nn.SmoothL1Loss()`
(Huber with beta = 1); we reproduce that. Every loss returns one value per sample, so the
default Keras reduction (`"sum_over_batch_size"`) gives exactly the batch mean that the
official PyTorch code computes.
"""

import keras
from keras import ops

from keras_hsifusion.utils.validation import check_number

__all__ = ["BandWiseMSE", "HSSDCTJointLoss", "SAMLoss", "SmoothL1"]


def _smooth_l1(diff, beta):
    diff = ops.abs(diff)
    return ops.where(diff < beta, 0.5 * ops.square(diff) / beta, diff - 0.5 * beta)


def _per_sample_mean(x):
    return ops.mean(ops.reshape(x, (ops.shape(x)[0], -1)), axis=-1)


def sam_per_sample(y_true, y_pred, eps=1e-6):
    """Mean spectral angle in radians per sample, as the official HSSDCT `sam_loss`.

    `eps` is added to every squared element before summing over bands, the cosine is clipped
    to [-1, 1]. Inputs `(B, H, W, C)`; returns `(B,)`.
    """
    num = ops.sum(y_true * y_pred, axis=-1)
    den = ops.sqrt(
        ops.sum(ops.square(y_pred) + eps, axis=-1) * ops.sum(ops.square(y_true) + eps, axis=-1)
    )
    angle = ops.arccos(ops.clip(num / den, -1.0, 1.0))
    return _per_sample_mean(angle)


def bandwise_mse_per_sample(y_true, y_pred, sigma=1.0, offset=0.1):
    """Band-normalised smooth-L1 per sample, as the official HSSDCT `BandWiseMSE`.

    Per band: `mean_HW(smooth_l1_beta(|pred - true|)) / mean_HW(true^2 + offset)` with
    `beta = 1 / sigma^2`; then the mean over bands. Inputs `(B, H, W, C)`; returns `(B,)`.
    """
    beta = 1.0 / (sigma**2)
    power = ops.mean(ops.square(y_true) + offset, axis=(1, 2))
    loss = ops.mean(_smooth_l1(y_pred - y_true, beta), axis=(1, 2)) / power
    return ops.mean(loss, axis=-1)


@keras.saving.register_keras_serializable(package="keras_hsifusion")
class SmoothL1(keras.losses.Loss):
    """Smooth L1 loss, equal to `torch.nn.SmoothL1Loss(beta=beta)`.

    `0.5 d^2 / beta` where `|d| < beta`, `|d| - 0.5 beta` elsewhere, averaged over every
    element of a sample.

    Args:
        beta: threshold between the quadratic and the linear part. Defaults to 1.
        name: defaults to `"smooth_l1"`.
        **kwargs: `reduction`, `dtype` of `keras.losses.Loss`.

    Examples:
    >>> y_pred = np.array([0.5, -0.5, 2.0, -2.0]).reshape(1, 2, 2, 1)
    >>> float(SmoothL1()(np.zeros((1, 2, 2, 1)), y_pred))  # (0.125 * 2 + 1.5 * 2) / 4
    0.8125
    """

    def __init__(self, beta=1.0, name="smooth_l1", **kwargs):
        check_number("beta", beta)
        super().__init__(name=name, **kwargs)
        self.beta = beta

    def call(self, y_true, y_pred):
        return _per_sample_mean(_smooth_l1(y_pred - y_true, self.beta))

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


@keras.saving.register_keras_serializable(package="keras_hsifusion")
class SAMLoss(keras.losses.Loss):
    """Spectral angle loss in radians (the official HSSDCT `sam_loss`), channels-last.

    Per pixel `arccos(clip(<t, p> / sqrt(sum(t^2 + eps) * sum(p^2 + eps)), -1, 1))`, averaged
    over the pixels of a sample. The `eps` inside the sums keeps the gradient finite for
    identical spectra.

    Args:
        eps: added to each squared element before the band sums. Defaults to 1e-6 (official).
        name: defaults to `"sam_loss"`.
        **kwargs: `reduction`, `dtype` of `keras.losses.Loss`.

    Shapes: `y_true`, `y_pred`: `(B, H, W, C)`.

    Examples:
    >>> y_true, y_pred = np.tile([1.0, 0.0], (1, 2, 2, 1)), np.tile([0.0, 3.0], (1, 2, 2, 1))
    >>> round(float(SAMLoss()(y_true, y_pred)), 4)  # orthogonal spectra: pi / 2
    1.5708
    """

    def __init__(self, eps=1e-6, name="sam_loss", **kwargs):
        check_number("eps", eps, allow_zero=True)
        super().__init__(name=name, **kwargs)
        self.eps = eps

    def call(self, y_true, y_pred):
        return sam_per_sample(y_true, y_pred, self.eps)

    def get_config(self):
        return {**super().get_config(), "eps": self.eps}


@keras.saving.register_keras_serializable(package="keras_hsifusion")
class BandWiseMSE(keras.losses.Loss):
    """Band-wise normalised loss of HSSDCT (the official `BandWiseMSE`), channels-last.

    Despite its official name it is a smooth-L1 error normalised per band by the band's
    power: per band `mean_HW(smooth_l1(pred - true; beta = 1 / sigma^2)) /
    mean_HW(true^2 + offset)`, then averaged over bands. Dim bands weigh as much as bright
    ones.

    Args:
        sigma: `beta = 1 / sigma^2` of the smooth-L1. Defaults to 1 (official).
        offset: added to `true^2` in the band power. Defaults to 0.1 (official).
        name: defaults to `"bandwise_mse"`.
        **kwargs: `reduction`, `dtype` of `keras.losses.Loss`.

    Shapes: `y_true`, `y_pred`: `(B, H, W, C)`.

    Examples:
    >>> y_true = np.ones((1, 4, 4, 2))
    >>> round(float(BandWiseMSE()(y_true, 1.5 * y_true)), 4)  # 0.5 * 0.5^2 / (1 + 0.1)
    0.1136
    """

    def __init__(self, sigma=1.0, offset=0.1, name="bandwise_mse", **kwargs):
        check_number("sigma", sigma)
        check_number("offset", offset)
        super().__init__(name=name, **kwargs)
        self.sigma = sigma
        self.offset = offset

    def call(self, y_true, y_pred):
        return bandwise_mse_per_sample(y_true, y_pred, self.sigma, self.offset)

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma, "offset": self.offset}


@keras.saving.register_keras_serializable(package="keras_hsifusion")
class HSSDCTJointLoss(keras.losses.Loss):
    """The joint training loss of the official HSSDCT code.

    `l1_weight * SmoothL1 + sam_weight * SAMLoss + bandwise_weight * BandWiseMSE`, with the
    official weights 1, 0.1, 0.1 (`train.py`, `--joint_loss 1`; its "L1" is
    `torch.nn.SmoothL1Loss()`, beta 1).

    Args:
        l1_weight: weight of the smooth-L1 term. Defaults to 1.0.
        sam_weight: weight of the SAM term (radians). Defaults to 0.1.
        bandwise_weight: weight of the band-wise term. Defaults to 0.1.
        name: defaults to `"hssdct_joint_loss"`.
        **kwargs: `reduction`, `dtype` of `keras.losses.Loss`.

    Shapes: `y_true`, `y_pred`: `(B, H, W, C)`.

    Examples:
    >>> model = keras.Sequential([keras.Input((None, None, 4)), keras.layers.Dense(4)])
    >>> model.compile(optimizer=keras.optimizers.Adam(5.5e-5), loss=HSSDCTJointLoss())
    """

    def __init__(
        self,
        l1_weight=1.0,
        sam_weight=0.1,
        bandwise_weight=0.1,
        name="hssdct_joint_loss",
        **kwargs,
    ):
        check_number("l1_weight", l1_weight, allow_zero=True)
        check_number("sam_weight", sam_weight, allow_zero=True)
        check_number("bandwise_weight", bandwise_weight, allow_zero=True)
        super().__init__(name=name, **kwargs)
        self.l1_weight = l1_weight
        self.sam_weight = sam_weight
        self.bandwise_weight = bandwise_weight

    def call(self, y_true, y_pred):
        total = self.l1_weight * _per_sample_mean(_smooth_l1(y_pred - y_true, 1.0))
        total = total + self.sam_weight * sam_per_sample(y_true, y_pred)
        return total + self.bandwise_weight * bandwise_mse_per_sample(y_true, y_pred)

    def get_config(self):
        return {
            **super().get_config(),
            "l1_weight": self.l1_weight,
            "sam_weight": self.sam_weight,
            "bandwise_weight": self.bandwise_weight,
        }
