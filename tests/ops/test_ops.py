"""`keras_hsifusion.ops` against the PyTorch ops they stand for, on the active backend."""

import keras
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from harness import BACKEND

from keras_hsifusion import ops as hops

RNG = np.random.default_rng(0)


def _torch_nhwc(fn, x):
    y = fn(torch.from_numpy(np.transpose(x, (0, 3, 1, 2))))
    return np.transpose(y.numpy(), (0, 2, 3, 1))


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "bilinear", "bicubic"])
@pytest.mark.parametrize("scale", [4, 2, 8, 0.25, 0.5, 1 / 3, 1.5, 0.3, 2.5])
def test_interpolate_matches_torch_scale_factor(mode, scale):
    x = RNG.standard_normal((2, 12, 10, 3)).astype("float32")
    expected = _torch_nhwc(
        lambda t: F.interpolate(t, scale_factor=scale, mode=mode, align_corners=None), x
    )
    actual = _np(hops.interpolate(x, scale_factor=scale, mode=mode))
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=1e-5)


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
@pytest.mark.parametrize("size", [(7, 13), (24, 20), (3, 4)])
def test_interpolate_matches_torch_size(mode, size):
    x = RNG.standard_normal((1, 12, 10, 2)).astype("float32")
    expected = _torch_nhwc(lambda t: F.interpolate(t, size=size, mode=mode), x)
    np.testing.assert_allclose(_np(hops.interpolate(x, size=size, mode=mode)), expected, atol=1e-5)


def test_bicubic_differs_from_keras_resize_where_torch_parity_matters():
    # The reason this module exists: Keras' bicubic (a=-0.5 on TF/JAX) is not torch's.
    x = RNG.standard_normal((1, 8, 8, 1)).astype("float32")
    expected = _torch_nhwc(lambda t: F.interpolate(t, scale_factor=4, mode="bicubic"), x)
    ours = _np(hops.interpolate(x, scale_factor=4, mode="bicubic"))
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    if BACKEND != "torch":
        theirs = _np(keras.ops.image.resize(x, (32, 32), interpolation="bicubic"))
        assert np.max(np.abs(theirs - expected)) > 1e-2


def test_interpolate_rejects_bad_arguments():
    x = np.zeros((1, 4, 4, 1), "float32")
    with pytest.raises(ValueError, match="mode='area'"):
        hops.interpolate(x, scale_factor=2, mode="area")
    with pytest.raises(ValueError, match="exactly one"):
        hops.interpolate(x, size=(2, 2), scale_factor=2)
    with pytest.raises(ValueError, match="positive"):
        hops.interpolate(x, scale_factor=-1)


def test_interpolate_with_dynamic_shapes_in_a_model():
    # On TensorFlow the spatial dims are symbolic inside a traced function: ensure the
    # resize works there for several distinct sizes (TF relaxes its trace after repeats).
    from keras_hsifusion.layers import Interpolate

    inp = keras.Input((None, None, 2))
    model = keras.Model(inp, Interpolate(0.25, "bicubic")(inp))
    for h, w in [(16, 12), (20, 28), (8, 36), (12, 12)]:
        x = RNG.standard_normal((1, h, w, 2)).astype("float32")
        expected = _torch_nhwc(lambda t: F.interpolate(t, scale_factor=0.25, mode="bicubic"), x)
        np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)


def test_upsample_nearest_matches_torch():
    x = RNG.standard_normal((2, 5, 3, 4)).astype("float32")
    expected = _torch_nhwc(lambda t: torch.nn.Upsample(scale_factor=2)(t), x)
    np.testing.assert_array_equal(_np(hops.upsample_nearest(x, 2)), expected)


@pytest.mark.parametrize("pad", [(0, 0), (3, 1), (4, 5)])
def test_reflect_pad_matches_torch(pad):
    x = RNG.standard_normal((2, 6, 7, 3)).astype("float32")
    ph, pw = pad
    expected = _torch_nhwc(lambda t: F.pad(t, (0, pw, 0, ph), mode="reflect"), x)
    np.testing.assert_array_equal(_np(hops.reflect_pad(x, ph, pw)), expected)


def test_reflect_pad_beyond_torch_limit_keeps_reflecting_like_numpy():
    # torch raises for pads >= the side; we continue the reflection (docs/differences.md).
    x = RNG.standard_normal((1, 4, 3, 2)).astype("float32")
    with pytest.raises(RuntimeError):
        F.pad(torch.from_numpy(np.transpose(x, (0, 3, 1, 2))), (0, 7, 0, 9), mode="reflect")
    expected = np.pad(x, ((0, 0), (0, 9), (0, 7), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(_np(hops.reflect_pad(x, 9, 7)), expected)


def test_zero_pad_and_pad_amount():
    x = RNG.standard_normal((1, 5, 6, 2)).astype("float32")
    y = _np(hops.zero_pad(x, 3, 2))
    np.testing.assert_array_equal(y, np.pad(x, ((0, 0), (0, 3), (0, 2), (0, 0))))
    assert [hops.pad_amount(n, 4) for n in (4, 5, 7, 8, 1)] == [0, 3, 1, 0, 3]


@pytest.mark.parametrize("window", [4, (2, 3)])
def test_window_partition_matches_unfold_and_reverses(window):
    wh, ww = (window, window) if isinstance(window, int) else window
    x = RNG.standard_normal((2, 4 * wh, 3 * ww, 5)).astype("float32")
    windows = _np(hops.window_partition(x, window))
    # Reference: torch's unfold gives each window's pixels in row-major order.
    t = torch.from_numpy(x).unfold(1, wh, wh).unfold(2, ww, ww)  # B, nh, nw, C, wh, ww
    ref = t.permute(0, 1, 2, 4, 5, 3).reshape(-1, wh * ww, 5).numpy()
    np.testing.assert_array_equal(windows, ref)
    back = _np(hops.window_reverse(windows, window, 4 * wh, 3 * ww))
    np.testing.assert_array_equal(back, x)


def test_pad_to_windows_then_crop_round_trips():
    x = RNG.standard_normal((1, 10, 7, 3)).astype("float32")
    for mode in ("reflect", "zero"):
        padded = _np(hops.pad_to_windows(x, 4, mode=mode))
        assert padded.shape == (1, 12, 8, 3)
        np.testing.assert_array_equal(padded[:, :10, :7], x)
    with pytest.raises(ValueError, match="mode='edge'"):
        hops.pad_to_windows(x, 4, mode="edge")


@pytest.mark.parametrize("r", [2, 3])
def test_pixel_shuffle_and_unshuffle_match_torch(r):
    x = RNG.standard_normal((2, 4, 5, 3 * r * r)).astype("float32")
    expected = _torch_nhwc(lambda t: F.pixel_shuffle(t, r), x)
    np.testing.assert_array_equal(_np(hops.pixel_shuffle(x, r)), expected)
    back = _torch_nhwc(lambda t: F.pixel_unshuffle(t, r), expected)
    np.testing.assert_array_equal(_np(hops.pixel_unshuffle(expected, r)), back)
    with pytest.raises(ValueError, match="channels=5"):
        hops.pixel_shuffle(np.zeros((1, 2, 2, 5), "float32"), 2)
