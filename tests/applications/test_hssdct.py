"""HSSDCT: construction, validation, conversion, generalised scale, saving and training."""

import keras
import numpy as np
import pytest
from harness import (
    BACKEND,
    HSSDCT_TINY,
    fusion_inputs,
    gradients,
    load_fixture,
    run_fusion_model_test,
    run_layer_test,
    run_model,
    split_fixture,
)

import keras_hsifusion as khf

TINY = HSSDCT_TINY


def _inputs(batch=1, h=4, w=5, scale=4, bands=8, seed=0):
    return fusion_inputs(bands, 3, scale, h, w, batch=batch, seed=seed)


def _load_official_tiny(model):
    sd, _ = split_fixture(load_fixture("hssdct_c8_nf32_gc16"))
    khf.convert.load_torch_state_dict(model, sd)


@pytest.fixture(scope="module")
def tiny_model():
    return khf.applications.HSSDCT(**TINY)


def test_mismatched_sizes_raise_a_clear_error(tiny_model):
    inputs = _inputs(1, 4, 5)
    inputs["hr_msi"] = inputs["hr_msi"][:, :15]
    with pytest.raises(
        ValueError, match=r"HSSDCT: `hr_msi` must be exactly scale=4 .*\(1, 15, 20, 3\)"
    ):
        tiny_model(inputs)
    with pytest.raises(ValueError, match="`lr_hsi` must be a 4D"):
        tiny_model({"lr_hsi": inputs["lr_hsi"][0], "hr_msi": inputs["hr_msi"]})


def test_official_default_parameter_count():
    # Official HyDCFN(bands=172, msi_bands=4, nf=96, gc=32): 7,977,406 parameters, of which
    # the 64 of `decoder.norm` (a LayerNorm(32) the forward never calls) are not ported.
    with keras.StatelessScope(initialize_variables=False):
        model = khf.applications.HSSDCT(hsi_bands=172, msi_bands=4, scale=4, nf=96, gc=32)
        count = model.count_params()
    assert count == 7_977_406 - 64 == 7_977_342


def test_any_spatial_size_in_graph_mode(tiny_model):
    # predict() traces a graph with dynamic sizes; TF relaxes its trace after repeated
    # shapes, so three distinct sizes. jit_compile=False: XLA-compiling the
    # whole network takes minutes on this CPU (JAX compiles regardless).
    tiny_model.compile(jit_compile=BACKEND == "jax")
    sizes = [(4, 5, 1), (3, 7, 2), (6, 2, 1)]
    for h, w, batch in sizes if BACKEND == "tensorflow" else sizes[:2]:  # JAX: 1 compile each
        inputs = _inputs(batch, h, w)
        y = tiny_model.predict(inputs, verbose=0)
        assert y.shape == (batch, 4 * h, 4 * w, 8)
        assert np.all(np.isfinite(y))
        if BACKEND != "jax":
            np.testing.assert_allclose(run_model(tiny_model, inputs), y, atol=1e-5)
    # Deterministic (the official wrapper adds noise on every call; docs/differences.md 6).
    np.testing.assert_array_equal(tiny_model.predict(inputs, verbose=0), y)


@pytest.mark.parametrize("scale", [2, 8])
def test_generalised_scale(scale):
    # docs/differences.md "scale": first x2, then x(scale/2); the weights do not depend on
    # the scale, so official scale-4 weights load into a scale-2 or scale-8 model.
    model = khf.applications.HSSDCT(**TINY, scale=scale)
    _load_official_tiny(model)
    inputs = _inputs(1, 3, 5, scale=scale)
    y = run_model(model, inputs)
    assert y.shape == (1, 3 * scale, 5 * scale, 8)
    assert model.get_layer("msi_down").scale_factor == 1.0 / scale
    assert model.get_layer("hsi_up").scale_factor == float(scale)
    if scale == 2:
        assert "hsi_up2" not in [layer.name for layer in model.layers]
    else:
        assert model.get_layer("hsi_up2").size == (scale // 2, scale // 2)
    # The MSI branch sees the bilinear x`scale` LR-HSI: a constant LR-HSI stays constant.
    flat = dict(inputs, lr_hsi=np.full_like(inputs["lr_hsi"], 0.5))
    up = model.get_layer("hsi_up")(flat["lr_hsi"])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(up), 0.5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(hsi_bands=0, msi_bands=3), "hsi_bands=0"),
        (dict(hsi_bands=8, msi_bands="3"), "msi_bands='3'"),
        (dict(hsi_bands=8, msi_bands=3, scale=3), "scale=3"),
        (dict(hsi_bands=8, msi_bands=3, scale=True), "scale=True"),
        (dict(hsi_bands=8, msi_bands=3, nf=33), "nf=33"),
        (dict(hsi_bands=8, msi_bands=3, nf=80), "nf=80, gc=32"),
        (dict(hsi_bands=8, msi_bands=3, nf=32, gc=8), "nf=32, gc=8"),
        (dict(hsi_bands=8, msi_bands=3, gc=0), "gc=0"),
        (dict(hsi_bands=8, msi_bands=3, mlp_ratio=0), "mlp_ratio=0"),
    ],
)
def test_invalid_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        khf.applications.HSSDCT(**kwargs)


def _final_heads(bands):
    with keras.StatelessScope(initialize_variables=False):
        model = khf.applications.HSSDCT(hsi_bands=bands, msi_bands=3, nf=32, gc=16)
        return [b.num_heads for b in model.get_layer("final_block").blocks]


def test_final_block_heads_follow_the_official_rule_where_it_works():
    # Official: 8 - (C % 8) heads, then h - ((C + 32k) % h) for block k.
    assert _final_heads(172) == [4, 4, 4, 4]
    assert _final_heads(31) == [1, 1, 1, 1]
    assert _final_heads(12) == [4, 4, 4, 4]
    assert _final_heads(200) == [8, 8, 8, 8]


def test_band_counts_the_official_final_block_cannot_split_still_work():
    # Official heads 8 - (10 % 8) = 6 do not divide 10 channels: the official reshape crashes.
    # We lower the head count to the nearest divisor (docs/differences.md "head counts").
    assert _final_heads(10) == [5, 6, 2, 2]  # 10, 42, 74, 106 channels; official 6, 6, 4, 2
    model = khf.applications.HSSDCT(hsi_bands=10, msi_bands=3, nf=32, gc=16)
    y = run_model(model, _inputs(1, 2, 3, bands=10))
    assert y.shape == (1, 8, 12, 10) and np.all(np.isfinite(y))


def test_conversion_is_strict_and_atomic(tiny_model):
    sd, _ = split_fixture(load_fixture("hssdct_c8_nf32_gc16"))
    before = [np.array(keras.ops.convert_to_numpy(w)) for w in tiny_model.weights]

    missing = dict(sd)
    del missing["decoder.last.weight"]
    with pytest.raises(ValueError, match="missing official key: decoder.last.weight"):
        khf.convert.load_torch_state_dict(tiny_model, missing)

    extra = dict(sd, **{"decoder.extra.weight": np.zeros(3, "float32")})
    with pytest.raises(ValueError, match="unexpected official key: decoder.extra.weight"):
        khf.convert.load_torch_state_dict(tiny_model, extra)

    wrong = dict(sd, **{"decoder.hsiconv1.bias": np.zeros(5, "float32")})
    with pytest.raises(ValueError, match=r"decoder.hsiconv1.bias: official shape \(5,\)"):
        khf.convert.load_torch_state_dict(tiny_model, wrong)

    for w, b in zip(tiny_model.weights, before):  # nothing was half-written
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), b)

    report = khf.convert.load_torch_state_dict(tiny_model, missing, strict=False)
    assert report.missing == ["decoder.last.weight"]
    # DataParallel prefixes are accepted.
    report = khf.convert.load_torch_state_dict(
        tiny_model, {"module." + k: v for k, v in sd.items()}
    )
    assert len(report.loaded) == len(sd) - 6
    assert "decoder.norm.weight" in str(report)
    with pytest.raises(TypeError, match="mapping"):
        khf.convert.load_torch_state_dict(tiny_model, [1, 2])


def test_fusion_model(tmp_path):
    # Official weights; the file is loaded under the next backend of tensorflow -> torch ->
    # jax -> tensorflow (MSST-Net goes the other way round: the three CI runs cover all six
    # pairs). Outputs there differ only by float32 rounding of each backend's kernels
    # (measured max 1.1e-6 between JAX and torch, the same as each backend vs official torch).
    run_fusion_model_test(
        khf.applications.HSSDCT,
        TINY,
        _inputs(1, 3, 4),
        (1, 12, 16, 8),
        tmp_path,
        setup=_load_official_tiny,
        cross_backend="next",
        cross_backend_atol=2e-6,
        cross_backend_rtol=0.0,
    )


@pytest.fixture(scope="module")
def model_nf64():
    # nf=64: with nf=32 the MSI branch has 16 channels, so the official position MLP is
    # 16 // 16 = 1 unit wide; a LayerNorm over one feature outputs its bias whatever the
    # input, so the weights before it get no gradient (true of the official network too).
    return khf.applications.HSSDCT(hsi_bands=8, msi_bands=3, nf=64, gc=16)


def test_every_weight_gets_a_finite_nonzero_gradient(model_nf64):
    model = model_nf64
    inputs = _inputs(2, 3, 4, seed=1)
    target = np.random.default_rng(2).random((2, 12, 16, 8), dtype=np.float32)
    grads = gradients(model, inputs, target)
    assert len(grads) == len(model.trainable_weights) > 0
    bad = [p for p, g in grads.items() if g is None or not np.all(np.isfinite(g))]
    zero = [p for p, g in grads.items() if g is not None and not np.any(g)]
    assert not bad and not zero, (bad, zero)


def test_fit_step_updates_every_weight(model_nf64):
    model = model_nf64
    # TF: eager, as the training runner defaults to (tracing this train step takes minutes on
    # this CPU); graph-mode training on TF is covered by the MSST-Net fit test.
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="mae",
        jit_compile=BACKEND == "jax",
        run_eagerly=BACKEND == "tensorflow",
    )
    inputs = _inputs(2, 3, 4, seed=3)
    target = np.random.default_rng(4).random((2, 12, 16, 8), dtype=np.float32)
    before = [np.array(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]
    history = model.fit(inputs, target, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    unchanged = {
        w.path
        for w, b in zip(model.trainable_weights, before)
        if np.array_equal(keras.ops.convert_to_numpy(w), b)
    }
    # A LayerNorm over 2 features outputs +-1 whatever its input (up to epsilon), so in the
    # 2-unit-wide position MLPs of the 32-channel MSI blocks the weights before the last
    # layer get gradients ~1e-12 that Adam cannot move in float32 (true of the official too).
    narrow = {
        w.path
        for layer in model.msi_blocks
        for block in layer.blocks
        if block.correlation.pos_proj.units <= 2
        for sub in (
            block.correlation.pos_proj,
            *block.correlation.pos_norms,
            *block.correlation.pos_fcs[:2],
        )
        for w in sub.trainable_weights
    }
    assert unchanged <= narrow, unchanged - narrow


@pytest.mark.parametrize(
    "cls,kwargs,shape",
    [
        (khf.layers.SSCL, dict(num_heads=2, window_size=16, base_window_size=8), (1, 10, 12, 32)),
        (khf.layers.HierarchicalTransformerBlock, dict(num_heads=4, window_size=8), (1, 8, 8, 32)),
        (khf.layers.HDRTB, dict(num_heads=8, gc=16, hier_win_ratios=(0.5, 1, 1, 2)), (1, 8, 6, 32)),
        (khf.layers.WindowTransformerBlock, dict(num_heads=3, window_size=4), (1, 6, 8, 12)),
        (khf.layers.DenseWindowBlock, dict(num_heads=4, gc=8), (1, 6, 8, 12)),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_layers(cls, kwargs, shape):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    run_layer_test(cls, kwargs, x, shape)


def test_interpolate_layer():
    x = np.random.default_rng(0).normal(size=(2, 8, 6, 3)).astype("float32")
    layer, y = run_layer_test(
        khf.layers.Interpolate, dict(scale_factor=0.5, mode="bicubic"), x, (2, 4, 3, 3)
    )
    np.testing.assert_allclose(
        y, keras.ops.convert_to_numpy(khf.ops.interpolate(x, scale_factor=0.5, mode="bicubic"))
    )


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: khf.layers.SSCL(num_heads=3, window_size=8).build((1, 8, 8, 32)), "num_heads=3"),
        (lambda: khf.layers.SSCL(num_heads=2, window_size=12), "window_size=12"),
        (lambda: khf.layers.SSCL(num_heads=2, window_size=0), "window_size=0"),
        (lambda: khf.layers.HDRTB(num_heads=8, gc=8).build((1, 8, 8, 32)), "channels=40"),
        (
            lambda: khf.layers.WindowTransformerBlock(num_heads=5).build((1, 8, 8, 12)),
            "num_heads=5",
        ),
        (lambda: khf.layers.Interpolate(0, "bicubic"), "scale_factor=0"),
    ],
)
def test_layers_reject_invalid_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()
