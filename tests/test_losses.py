import keras
import numpy as np
import pytest

from keras_hsifusion import losses

# numpy versions of the official formulas (trainOps.py), written on NCHW tensors like the
# official code; inputs are converted from channels-last.


def _nchw(x):
    return np.transpose(np.asarray(x, np.float64), (0, 3, 1, 2))


def _official_smooth_l1(pred, gt, beta=1.0):
    d = np.abs(pred - gt)
    return np.mean(np.where(d < beta, 0.5 * d**2 / beta, d - 0.5 * beta))


def _official_sam(pred, gt):
    x, y = _nchw(pred), _nchw(gt)
    num = np.sum(x * y, 1)
    den = np.sqrt(np.sum(x**2 + 1e-6, 1) * np.sum(y**2 + 1e-6, 1))
    return np.mean(np.arccos(np.clip(num / den, -1, 1)))


def _official_bandwise(pred, gt, sigma=1.0):
    x, y = _nchw(pred), _nchw(gt)
    beta = 1.0 / sigma**2
    yp = np.mean(y**2 + 0.1, (2, 3))
    d = np.abs(x - y)
    loss = np.where(d < beta, 0.5 * d**2 / beta, d - 0.5 * beta)
    return np.mean(np.mean(loss, (2, 3)) / yp)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(-1, 1, (3, 6, 5, 7)).astype("float32")
    # large errors too, so both branches of the smooth-L1 are exercised
    pred = (gt + rng.normal(0, 0.8, gt.shape)).astype("float32")
    return gt, pred


def _value(loss, gt, pred):
    return float(keras.ops.convert_to_numpy(loss(gt, pred)))


def test_sam_loss_matches_official_formula():
    gt, pred = _data()
    assert _value(losses.SAMLoss(), gt, pred) == pytest.approx(_official_sam(pred, gt), rel=1e-5)


def test_bandwise_mse_matches_official_formula():
    gt, pred = _data(1)
    expected = _official_bandwise(pred, gt)
    assert _value(losses.BandWiseMSE(), gt, pred) == pytest.approx(expected, rel=1e-5)
    expected = _official_bandwise(pred, gt, sigma=2.0)
    assert _value(losses.BandWiseMSE(sigma=2.0), gt, pred) == pytest.approx(expected, rel=1e-5)


def test_smooth_l1_matches_torch_definition():
    gt, pred = _data(2)
    expected = _official_smooth_l1(pred.astype(np.float64), gt.astype(np.float64))
    assert _value(losses.SmoothL1(), gt, pred) == pytest.approx(expected, rel=1e-5)
    if keras.backend.backend() == "torch":
        import torch

        ref = torch.nn.SmoothL1Loss(beta=0.5)(torch.tensor(pred), torch.tensor(gt)).item()
        assert _value(losses.SmoothL1(beta=0.5), gt, pred) == pytest.approx(ref, rel=1e-5)


def test_joint_loss_official_weights():
    gt, pred = _data(3)
    p64, g64 = pred.astype(np.float64), gt.astype(np.float64)
    expected = (
        _official_smooth_l1(p64, g64)
        + 0.1 * _official_sam(p64, g64)
        + 0.1 * _official_bandwise(p64, g64)
    )
    loss = losses.HSSDCTJointLoss()
    assert _value(loss, gt, pred) == pytest.approx(expected, rel=1e-5)
    # sample weights act per sample: weight 0 drops a sample from the sum
    w = np.array([1.0, 0.0, 1.0], "float32")
    per = [
        _official_smooth_l1(p64[i : i + 1], g64[i : i + 1])
        + 0.1 * _official_sam(p64[i : i + 1], g64[i : i + 1])
        + 0.1 * _official_bandwise(p64[i : i + 1], g64[i : i + 1])
        for i in range(3)
    ]
    got = float(keras.ops.convert_to_numpy(loss(gt, pred, sample_weight=w)))
    assert got == pytest.approx((per[0] + per[2]) / 3, rel=1e-5)


@pytest.mark.parametrize(
    "loss",
    [
        losses.SAMLoss(eps=1e-5),
        losses.BandWiseMSE(sigma=0.5, offset=0.2),
        losses.SmoothL1(beta=0.3),
        losses.HSSDCTJointLoss(sam_weight=0.2),
    ],
)
def test_serialization_round_trip(loss):
    gt, pred = _data(4)
    config = keras.saving.serialize_keras_object(loss)
    assert config["registered_name"].startswith("keras_hsifusion>")
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is type(loss)
    assert clone.get_config() == loss.get_config()
    assert _value(clone, gt, pred) == pytest.approx(_value(loss, gt, pred), rel=1e-6)


def test_joint_loss_trains_a_model_and_gradients_are_finite_on_perfect_fit():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (4, 6, 6, 5)).astype("float32")
    inp = keras.Input((None, None, 5))
    model = keras.Model(inp, keras.layers.Dense(5, kernel_initializer="identity")(inp))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=losses.HSSDCTJointLoss())
    # identical prediction and target: the SAM term must not give nan gradients
    history = model.fit(x, x, epochs=2, batch_size=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    w = model.layers[-1].get_weights()[0]
    assert np.all(np.isfinite(w))


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="sigma"):
        losses.BandWiseMSE(sigma=0)
    with pytest.raises(ValueError, match="sam_weight"):
        losses.HSSDCTJointLoss(sam_weight=-1)
