"""The opt-in global skip of the zoo models: `GlobalSkip`, `ResidualGate`, `ops.psf_degrade`.

Not in the official networks (docs/differences.md, "Global skip"): off by default, where the
models stay the official ones (their parity tests are unchanged).
"""

import keras
import numpy as np
import pytest
from harness import (
    HSSDCT_TINY,
    MSST_NET_TINY,
    assert_close,
    fusion_inputs,
    run_fusion_model_test,
    run_layer_test,
    run_model,
)

from keras_hsifusion import data
from keras_hsifusion import ops as hops
from keras_hsifusion.applications import HSSDCT, MSSTNet
from keras_hsifusion.layers import GlobalSkip, ResidualGate
from keras_hsifusion.layers.global_skip import GlobalSkipFit, global_skip_statistics
from keras_hsifusion.ops.psf import psf_degrade


@pytest.mark.parametrize(
    "shape,scale,fwhm",
    [
        ((1, 16, 12, 2), 4, None),
        ((2, 9, 6, 3), 3, 2.0),
        ((1, 16, 16, 1), 2, 5.0),
        ((1, 32, 24, 2), 8, None),
    ],
)
def test_psf_degrade_equals_spatial_degrade(shape, scale, fwhm):
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    expected = data.spatial_degrade(x, scale, psf_fwhm=fwhm)
    assert_close(psf_degrade(x, scale, fwhm), expected, rtol=1e-6)


def test_bicubic_is_the_torch_bicubic_upsampling():
    x = fusion_inputs(5, 3, 3, 4, 6, batch=2)
    lr, hr = x["lr_hsi"], x["hr_msi"]
    layer, y = run_layer_test(
        GlobalSkip,
        dict(mode="bicubic", scale=3),
        [lr, hr],
        (2, 12, 18, 5),
        expected_mixed_output_dtype="float32",
    )
    assert_close(y, hops.interpolate(lr, scale_factor=3.0, mode="bicubic"), rtol=1e-6)


def _linear_scene(scale, h, w, seed=0):
    """An HR-HSI that is exactly `msi @ mix + offset`, its LR-HSI (the Wald protocol) and MSI."""
    rng = np.random.default_rng(seed)
    msi = rng.random((1, scale * h, scale * w, 3), dtype=np.float32)
    mix = rng.normal(size=(3, 6)).astype("float32")
    hsi = msi @ mix + rng.normal(size=(6,)).astype("float32")
    return data.spatial_degrade(hsi, scale), msi, hsi


def test_detail_injection_recovers_a_linear_combination_of_the_msi():
    # The LR-HSI of `msi @ mix + offset` is `degrade(msi) @ mix + offset`: the regression
    # finds `mix`, and the bicubic LR-HSI plus the MSI's detail through `mix` is the HR-HSI
    # (bicubic upsampling is linear and keeps constants), which bicubic alone is far from.
    lr, msi, hsi = _linear_scene(4, 6, 5)
    layer, y = run_layer_test(
        GlobalSkip,
        dict(mode="detail_injection", scale=4),
        [lr, msi],
        hsi.shape,
        expected_mixed_output_dtype="float32",
    )
    assert_close(y, hsi, rtol=1e-3)
    bicubic = keras.ops.convert_to_numpy(hops.interpolate(lr, scale_factor=4.0, mode="bicubic"))
    assert np.max(np.abs(bicubic - hsi)) > 0.1 * np.max(np.abs(hsi))
    # In float32 inside a mixed_bfloat16 model too (Keras rounds its inputs to bfloat16).
    mixed = GlobalSkip("detail_injection", 4, dtype="mixed_bfloat16")([lr, msi])
    assert keras.backend.standardize_dtype(mixed.dtype) == "float32"
    assert_close(mixed, hsi, rtol=2e-2)


def test_residual_gate():
    rng = np.random.default_rng(0)
    base, residual = rng.random((2, 2, 3, 4), dtype=np.float32), rng.random((2, 2, 3, 4))
    layer, y = run_layer_test(
        ResidualGate, dict(initial=0.5), [base, residual.astype("float32")], base.shape
    )
    assert_close(y, base + 0.5 * residual, rtol=1e-6)
    assert float(keras.ops.convert_to_numpy(ResidualGate()([base, base]))[0, 0, 0, 0]) == (
        pytest.approx(1.01 * base[0, 0, 0, 0])
    )
    with pytest.raises(ValueError, match="initial='0'"):
        ResidualGate(initial="0")
    with pytest.raises(ValueError, match="global_skip='unet'"):
        HSSDCT(**HSSDCT_TINY, global_skip="unet")


@pytest.mark.parametrize(
    "cls,kwargs,inputs",
    [
        (HSSDCT, HSSDCT_TINY, fusion_inputs(8, 3, 4, 3, 4)),
        (MSSTNet, MSST_NET_TINY, fusion_inputs(4, 3, 4, 3, 5)),
    ],
    ids=["HSSDCT", "MSSTNet"],
)
def test_models_add_the_gated_residual_of_the_same_network(cls, kwargs, inputs):
    plain = cls(**kwargs)
    model = cls(**kwargs, global_skip="detail_injection")
    # Off by default: the official network, without the two layers.
    assert not [la for la in plain.layers if isinstance(la, (GlobalSkip, ResidualGate))]
    assert model.count_params() == plain.count_params() + 1  # the gate
    for layer in plain.layers:
        if layer.weights:
            model.get_layer(layer.name).set_weights(layer.get_weights())
    skip, gate = model.get_layer("global_skip"), model.get_layer("global_skip_gate")
    parts = keras.Model(model.input, [skip.output, gate.input[1], model.output])
    base, residual, y = run_model(parts, inputs)
    assert float(keras.ops.convert_to_numpy(gate.gate)) == pytest.approx(0.01)
    assert_close(residual, run_model(plain, inputs), rtol=1e-6, what="residual")
    assert_close(y, base + 0.01 * residual, rtol=1e-6)
    expected = GlobalSkip("detail_injection", kwargs.get("scale", 4))(
        [inputs["lr_hsi"], inputs["hr_msi"]]
    )
    assert_close(base, expected, rtol=1e-6, what="global skip")
    # With the gate at 0 the model is exactly the classical estimate.
    gate.gate.assign(0.0)
    base, _, y = run_model(parts, inputs)
    np.testing.assert_array_equal(y, base)


def test_model_with_global_skip_saves_and_loads(tmp_path):
    kwargs = dict(MSST_NET_TINY, global_skip="bicubic")
    model, _ = run_fusion_model_test(
        MSSTNet, kwargs, fusion_inputs(4, 3, 4, 2, 3), (1, 8, 12, 4), tmp_path, cross_backend=None
    )
    assert model.get_config()["global_skip"] == "bicubic"


@pytest.mark.parametrize(
    "mode", ["detail_injection", "poly_detail_injection", "hysime_detail_injection"]
)
def test_scene_fit_in_blocks_is_the_layers_own_fit(mode):
    # `GlobalSkipFit` over blocks of rows (each with its PSF halo) solves the regression of
    # one call on the whole image; inside `global_skip_statistics` the layer applies it.
    rng = np.random.default_rng(0)
    hr = rng.random((1, 72, 40, 3), dtype=np.float32)
    lr = data.spatial_degrade(hr @ rng.random((3, 12)), 4) + 0.05 * rng.random((1, 18, 10, 12))
    lr = lr.astype("float32")
    layer = GlobalSkip(mode, 4)
    own = keras.ops.convert_to_numpy(layer([lr, hr]))
    fit = GlobalSkipFit(mode, 4)
    assert fit.halo == 1  # x4, FWHM 4: HR taps -4..+7 around 4 i, one LR row either side
    for a in range(0, 18, 5):
        b = min(a + 5, 18)
        a0, b0 = max(0, a - fit.halo), min(18, b + fit.halo)
        fit.update(lr[0, a0:b0], hr[0, 4 * a0 : 4 * b0], keep=(a - a0, b - a0))
    stats = fit.result()
    assert stats.pixels == 180 and (stats.projection is None) == (mode != "hysime_detail_injection")
    with global_skip_statistics(stats):
        scene = keras.ops.convert_to_numpy(layer([lr, hr]))
        # A part of the image gets the whole image's regression, not its own.
        part = keras.ops.convert_to_numpy(layer([lr[:, :9], hr[:, :36]]))
        with pytest.raises(ValueError, match="fitted for 12 HSI bands"):
            layer([lr[..., :5], hr])
    assert_close(scene, own, rtol=1e-4, what="scene statistics")  # float32 solves
    assert_close(part[:, :20], own[:, :20], rtol=1e-4, what="upper part, scene statistics")
    alone = keras.ops.convert_to_numpy(layer([lr[:, :9], hr[:, :36]]))
    assert np.abs(alone - part).max() > 1e-4 * np.abs(own).max()  # its own fit differs
    # Another mode, scale or PSF is not matched: the layer fits its input.
    with global_skip_statistics(stats):
        other = GlobalSkip(mode, 4, psf_fwhm=3.0)([lr, hr])
    assert_close(other, GlobalSkip(mode, 4, psf_fwhm=3.0)([lr, hr]), rtol=1e-6)
    with pytest.raises(ValueError, match="mode='bicubic'"):
        GlobalSkipFit("bicubic", 4)
