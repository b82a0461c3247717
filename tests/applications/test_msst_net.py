"""MSST-Net: golden parity with the official code, the four bug fixes, saving, training."""

import ast
import contextlib

import keras
import numpy as np
import pytest
from harness import (
    BACKEND,
    MSST_NET_TINY,
    assert_close,
    fusion_inputs,
    gradients,
    load_fixture,
    nchw_to_nhwc,
    run_fusion_model_test,
    run_layer_test,
    run_model,
    split_fixture,
)

import keras_hsifusion as khf
from keras_hsifusion.applications import MBAE, MPAE, MSSTNet
from keras_hsifusion.applications.msst_net import _layers
from keras_hsifusion.convert import load_torch_state_dict

OFFICIAL_ARGS = (
    "n_feats",
    "hsi_embed_dim",
    "msi_embed_dim",
    "hsi_heads",
    "msi_heads",
    "patch_size",
    "hsi_res_blocks",
    "msi_res_blocks",
    "hsi_num_layers",
    "msi_num_layers",
)
TINY = MSST_NET_TINY


_NETS = {}
_SDS = {}


def _official_net(name):
    """The converted official net (built once per module: compiling it is slow on JAX).

    Tests that change weights restore them with `_restore`.
    """
    if name not in _NETS:
        _NETS[name] = _build_official_net(name)
    return _NETS[name]


@contextlib.contextmanager
def _official_net_to_modify(name):
    """`_official_net(name)`, with the official weights loaded again afterwards."""
    try:
        yield _official_net(name)
    finally:
        model = _NETS[name][0]
        load_torch_state_dict(model, _SDS[name])


def _build_official_net(name):
    sd, data = split_fixture(load_fixture(name))
    _SDS[name] = sd
    cfg = ast.literal_eval(str(data["config"]))
    model = MSSTNet(
        hsi_bands=cfg["hsi_channel"],
        msi_bands=cfg["msi_channel"],
        scale=cfg["ratio"],
        **{k: cfg[k] for k in OFFICIAL_ARGS},
        name=name,
    )
    report = load_torch_state_dict(model, sd)
    inputs = {"lr_hsi": nchw_to_nhwc(data["lr_hsi"]), "hr_msi": nchw_to_nhwc(data["hr_msi"])}
    return model, report, inputs, nchw_to_nhwc(data["output"])


def _inputs(config, h, w, batch=1, seed=0):
    bands = (config["hsi_bands"], config["msi_bands"], config["scale"])
    return fusion_inputs(*bands, h, w, batch=batch, seed=seed)


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


# --- golden parity -------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["msst_net_x8", "msst_net_x4"])
def test_matches_official_net(fixture):
    model, report, inputs, expected = _official_net(fixture)
    assert not report.ignored
    assert_close(run_model(model, inputs), expected)


@pytest.mark.parametrize("fixture, cls", [("msst_mbae", MBAE), ("msst_mpae", MPAE)])
def test_matches_official_autoencoder(fixture, cls):
    # The official autoencoders run with mask ratio 0 (nothing masked); ours masks only while
    # training, so inference is the deterministic part.
    sd, data = split_fixture(load_fixture(fixture))
    cfg = ast.literal_eval(str(data["config"]))
    if cls is MBAE:
        model = MBAE(
            cfg["hsi_channel"],
            cfg["hsi_embed_dim"],
            heads=cfg["hsi_heads"],
            num_layers=cfg["hsi_num_layers"],
        )
    else:
        model = MPAE(
            cfg["msi_channel"],
            cfg["msi_embed_dim"],
            cfg["patch_size"],
            heads=cfg["msi_heads"],
            num_layers=cfg["msi_num_layers"],
        )
    load_torch_state_dict(model, sd)
    x = nchw_to_nhwc(data["x"])
    assert_close(run_model(model, x), nchw_to_nhwc(data["output"]))


# --- the four official bugs (docs/differences.md, MSST-Net 1-4) -----------------------------
def test_bug1_each_scale_uses_its_own_modules():
    # The official forward reads norm1/conv1/patch_embedding/norm4_8/conv2_32/... which do not
    # exist. Every module of every scale must be loaded and used by its own scale.
    with _official_net_to_modify("msst_net_x8") as (model, report, inputs, expected):
        for key in (
            "norm_1.weight",
            "conv_1.weight",
            "norm_2.weight",
            "conv_2.weight",
            "norm_3.weight",
            "conv_3.weight",
            "patch_embedding_16.embed.weight",
            "patch_unembed_16.weight",
            "conv_16.weight",
            "norm_8.weight",
            "conv_8.weight",
            "norm_32.weight",
            "conv_32.weight",
        ):
            assert key in report.loaded
        assert not report.ignored and not report.missing and not report.unexpected
        base = run_model(model, inputs)
        assert_close(base, expected)
        # conv_16 (not the spectral conv_2) is what the patch-16 scale applies last.
        conv = model.get_layer("spatial_conv_1").kernel
        conv.assign(np.zeros(conv.shape, "float32"))
        assert np.max(np.abs(run_model(model, inputs) - base)) > 1e-3


def test_bug2_position_embeddings_learned_and_deterministic():
    model, report, inputs, expected = _official_net("msst_net_x4")
    positions = [p for p in report.keras_only if "position" in p]
    assert len(positions) == 6
    for w in model.weights:
        if "position" in w.path:
            assert w.trainable and np.all(_numpy(w) == 0.0)
    assert_close(run_model(model, inputs), run_model(model, inputs), rtol=0.0)

    # Learned at the reference grid (LR 16x16, HR 128x128 by default), resized otherwise.
    m = MSSTNet(**{**TINY, "reference_size": (4, 6)})
    band = m.get_layer("band_embedding_1").position.embedding
    patch = m.get_layer("patch_embedding_3").position.embedding  # patch 8 on a 16x24 image
    assert tuple(band.shape) == (1, 4, 6, 4) and tuple(patch.shape) == (1, 2, 3, 8)
    x = _inputs(TINY, 4, 6)
    before = run_model(m, x)
    band.assign(np.full(band.shape, 0.5, "float32"))
    assert np.max(np.abs(run_model(m, x) - before)) > 1e-4
    assert run_model(m, _inputs(TINY, 5, 3)).shape == (1, 20, 12, 4)

    off = MSSTNet(**{**TINY, "position_embedding": None})
    assert not [w for w in off.weights if "position" in w.path]
    assert off.count_params() == m.count_params() - sum(
        int(np.prod(w.shape)) for w in m.weights if "position" in w.path
    )


def test_bug3_branch_weights_trainable_and_start_at_one():
    with _official_net_to_modify("msst_net_x8") as (model, report, inputs, expected):
        names = {"a", "b", "c", "a1", "b1", "c1"}
        weights = [w for w in model.trainable_weights if w.name in names]
        assert sorted(w.name for w in weights) == sorted(names)
        assert all(float(_numpy(w)) == 1.0 for w in weights)
        assert sum(1 for p in report.keras_only if p.rsplit("/", 1)[-1] in names) == 6
        # Scaling all three weights of a branch together leaves the output unchanged (only the
        # normalised ratios matter); changing one of them changes it.
        base = run_model(model, inputs)
        for w in weights[:3]:
            w.assign(2.0)
        assert_close(run_model(model, inputs), base, rtol=1e-5)
        model.get_layer("spatial_weights").branch_weights[0].assign(5.0)
        assert np.max(np.abs(run_model(model, inputs) - base)) > 1e-4


def test_bug4_pretrained_encoders_per_scale(tmp_path):
    # The official fine-tuning loads the patch-16 MPAE into all three spatial scales; ours
    # transfers each scale's own MBAE / MPAE encoder (here with distinct random weights).
    net = MSSTNet(**TINY)
    d, p = TINY["hsi_embed_dim"], TINY["patch_size"]
    common = dict(heads=2, num_layers=1, decoder_num_layers=1)
    mbaes = [MBAE(4, dim, seed=i, **common) for i, dim in enumerate((d, d // 2, 2 * d))]
    mpaes = [
        MPAE(3, 8, size, seed=i, reference_size=(16, 16), **common)
        for i, size in enumerate((p, p // 2, 2 * p))
    ]
    rng = np.random.default_rng(0)
    for model in mbaes + mpaes:
        for w in model.weights:
            if "float" in w.dtype:
                w.assign(rng.normal(0.0, 0.1, w.shape).astype(w.dtype))
    path = str(tmp_path / "mbae_2.keras")  # models or `.keras` paths
    mbaes[2].save(path)
    net.load_pretrained_encoders(mbae=[mbaes[0], mbaes[1], path], mpae=mpaes)
    for k in (1, 2, 3):
        for prefix, source in (("spectral_layers", mbaes), ("spatial_layers", mpaes)):
            target = net.get_layer(f"{prefix}_{k}").weights
            encoder = source[k - 1].get_layer("encoder").weights
            assert len(target) == len(encoder) > 0
            for t, s in zip(target, encoder, strict=True):
                np.testing.assert_array_equal(_numpy(t), _numpy(s))
    # The scales are distinct: swapping two MPAEs (the official mistake) is refused.
    with pytest.raises(ValueError, match=r"mpae\[1\].*patch_size"):
        net.load_pretrained_encoders(mpae=[mpaes[0], mpaes[0], mpaes[2]])
    with pytest.raises(ValueError, match=r"mbae\[0\].*embed_dim"):
        net.load_pretrained_encoders(mbae=[mbaes[1], mbaes[1], mbaes[2]])
    with pytest.raises(ValueError, match="three MBAE"):
        net.load_pretrained_encoders(mbae=mbaes[0])


def test_masking_random_while_training_and_off_at_inference():
    mbae = MBAE(4, 8, heads=2, num_layers=1, decoder_num_layers=1, seed=3)
    mpae = MPAE(3, 8, 2, heads=2, num_layers=1, decoder_num_layers=1, seed=3)
    for model, x, axis_size, ratio in (
        (mbae, np.random.default_rng(0).random((1, 4, 4, 4), dtype=np.float32), 8, 0.75),
        (mpae, np.random.default_rng(0).random((1, 8, 8, 3), dtype=np.float32), 16, 0.5),
    ):
        mask = model.get_layer("mask")
        tokens = np.ones((1, 4, 4, 8), "float32")
        masks = [_numpy(mask(tokens, training=True)) for _ in range(4)]
        for m in masks:
            kept = m.reshape(16, 8).any(0).sum() if model is mbae else m[..., 0].sum()
            assert kept == axis_size - round(ratio * axis_size)
        assert len({m.tobytes() for m in masks}) > 1  # a new mask every call / step
        np.testing.assert_array_equal(_numpy(mask(tokens, training=False)), tokens)
        np.testing.assert_array_equal(_numpy(model(x)), _numpy(model(x)))


# --- model-level behaviour -----------------------------------------------------------------
def test_parameter_count_cave_default():
    with keras.StatelessScope(initialize_variables=False):  # shapes only: no 34M-value init
        model = MSSTNet(hsi_bands=31, msi_bands=3, scale=8)
    official = 34_402_969  # sum(p.numel() for p in Net(args).parameters()), CAVE x8 args
    branch_weights = 6  # a, b, c, a1, b1, c1
    band_positions = 16 * 16 * (32 + 16 + 64)  # 16x16 LR grid x (D, D/2, 2D)
    patch_positions = 256 * ((128 // 16) ** 2 + (128 // 8) ** 2 + (128 // 32) ** 2)
    assert official + branch_weights + band_positions + patch_positions == 34_517_663
    assert model.count_params() == 34_517_663


def test_any_size_is_padded_and_cropped():
    model = MSSTNet(**TINY)
    model.compile(jit_compile=BACKEND == "jax")  # graph mode; XLA on TF costs minutes here
    # LR sizes that the official code rejects (HR not a multiple of 2p = 8, odd pixel count
    # for 2 heads) and ones it accepts; >= 3 distinct sizes for TensorFlow's relaxed traces.
    sizes = ((5, 7), (2, 2), (3, 5), (4, 6), (1, 9))
    for h, w in sizes if BACKEND != "jax" else sizes[::2]:  # JAX: one jit compile per size
        out = model.predict_on_batch(_inputs(TINY, h, w, seed=h))
        assert out.shape == (1, 4 * h, 4 * w, 4) and np.all(np.isfinite(out))


def test_mismatched_sizes_raise_a_clear_error():
    model = MSSTNet(**TINY)
    x = _inputs(TINY, 4, 4)
    x["hr_msi"] = x["hr_msi"][:, :, :12]
    with pytest.raises(ValueError, match=r"MSSTNet: `hr_msi` must be exactly scale=4 .*16 x 16"):
        model(x)


def test_config_and_validation():
    config = MSSTNet(**TINY, name="tiny").get_config()
    assert config["name"] == "tiny"
    assert set(config) == {
        *TINY,
        "position_embedding",
        "global_skip",
        "residual_scale",
        "dtype",
        "trainable",
        "name",
    }
    for kwargs, match in (
        ({"scale": 0}, "scale"),
        ({"msi_heads": 3}, "msi_embed_dim"),
        ({"patch_size": 1}, "patch_size"),
        ({"position_embedding": "sine"}, "position_embedding"),
        ({"reference_size": (4,)}, "reference_size"),
    ):
        with pytest.raises(ValueError, match=match):
            MSSTNet(**{**TINY, **kwargs})
    assert isinstance(khf.applications.MSSTNet, type)


def _perturb(model):
    rng = np.random.default_rng(0)
    for w in model.weights:  # non-trivial values everywhere, incl. positions and branches
        w.assign(_numpy(w) + rng.normal(0.0, 0.05, w.shape).astype("float32"))


def test_fusion_model(tmp_path):
    # Loaded under the previous backend of tensorflow -> torch -> jax -> tensorflow (the
    # HSSDCT test goes the other way round, so the three CI runs cover all six pairs). The
    # weights load bit-identically; outputs then differ only by float32 round-off of the
    # backends' kernels (measured 3e-7 to 2e-6 of max|y| for this model).
    x = _inputs(TINY, 3, 5, batch=2)
    run_fusion_model_test(
        MSSTNet, TINY, x, (2, 12, 20, 4), tmp_path, setup=_perturb, cross_backend="previous"
    )


@pytest.mark.parametrize(
    "cls,kwargs,bands",
    [
        (MBAE, dict(hsi_bands=4, embed_dim=8, heads=2, num_layers=1, decoder_num_layers=1), 4),
        (MPAE, dict(msi_bands=3, embed_dim=8, patch_size=2, heads=2, num_layers=1), 3),
    ],
    ids=["MBAE", "MPAE"],
)
def test_autoencoders(cls, kwargs, bands, tmp_path):
    x = np.random.default_rng(0).random((1, 5, 6, bands), dtype=np.float32)
    run_fusion_model_test(cls, kwargs, x, x.shape, tmp_path, cross_backend=None)


_LR = np.random.default_rng(0).random((2, 3, 5, 4), dtype=np.float32)
_HR = np.random.default_rng(1).random((2, 12, 20, 12), dtype=np.float32)


@pytest.mark.parametrize(
    "cls,kwargs,inputs,shape",
    [
        (
            _layers.MSSTPad,
            dict(multiple=2, heads=4, scale=4),
            [_LR, _HR],
            [(2, 4, 6, 4), (2, 16, 24, 12)],
        ),
        (_layers.MSSTCrop, dict(scale=2), [_HR, _LR[:, :2, :4]], (2, 4, 8, 12)),
        (_layers.PixelShuffle, dict(factor=2), _HR, (2, 24, 40, 3)),
        (_layers.BranchWeights, dict(weight_names=("a", "b")), [_LR, 2 * _LR], _LR.shape),
        (_layers.RandomChannelMask, dict(mask_ratio=0.5, seed=1), _LR, _LR.shape),
        (_layers.RandomTokenMask, dict(mask_ratio=0.5, seed=1), _LR, _LR.shape),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_private_layers(cls, kwargs, inputs, shape):
    run_layer_test(cls, kwargs, inputs, shape)


def test_fit_step_and_gradients():
    model = MSSTNet(**TINY)
    x = _inputs(TINY, 2, 3, batch=2, seed=1)
    y = np.random.default_rng(2).random((2, 8, 12, 4), dtype=np.float32)
    grads = gradients(model, x, y)
    assert len(grads) == len(model.trainable_weights)
    for path, g in grads.items():
        assert g is not None and np.all(np.isfinite(g)), path
        assert np.any(g != 0.0), path
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="mae", jit_compile=BACKEND == "jax")
    before = [_numpy(w).copy() for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [
        not np.array_equal(b, _numpy(w))
        for b, w in zip(before, model.trainable_weights, strict=True)
    ]
    assert all(changed)
