"""SpeT, SpaT and the MSST-Net embeddings: golden parity, dynamic sizes, serialization."""

import ast

import keras
import numpy as np
import pytest
from harness import assert_close, load_fixture, nchw_to_nhwc, run_layer_test, split_fixture

from keras_hsifusion.convert import load_torch_state_dict
from keras_hsifusion.layers import BandEmbedding, PatchEmbedding, PositionEmbedding2D, SpaT, SpeT


@pytest.mark.parametrize(
    "fixture, cls, heads_key",
    [("msst_spet", SpeT, "heads"), ("msst_spat", SpaT, "heads")],
)
def test_matches_official_stack(fixture, cls, heads_key):
    sd, data = split_fixture(load_fixture(fixture))
    config = ast.literal_eval(str(data["config"]))
    x = nchw_to_nhwc(data["x"])
    layer = cls(heads=config[heads_key], num_layers=config["num_layers"])
    layer.build(x.shape)
    report = load_torch_state_dict(layer, sd)
    assert not report.ignored and not report.keras_only
    assert_close(layer(x), nchw_to_nhwc(data["output"]))


def _random_weights(layer, seed=0):
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        w.assign(rng.normal(0.0, 0.3, w.shape).astype(w.dtype))


def test_spet_pixels_interleaved_among_heads():
    # Head n attends over pixels n, n + heads, ...: permuting pixels within one head's set
    # (here: swapping pixel 0 and pixel `heads`) permutes the output the same way.
    layer = SpeT(heads=2, num_layers=1)
    x = np.random.default_rng(1).normal(size=(1, 3, 4, 6)).astype("float32")
    layer.build(x.shape)
    _random_weights(layer)
    flat = x.reshape(1, 12, 6)
    swapped = flat.copy()
    swapped[:, [0, 2]] = flat[:, [2, 0]]
    y = keras.ops.convert_to_numpy(layer(x)).reshape(1, 12, 6)
    y_swapped = keras.ops.convert_to_numpy(layer(swapped.reshape(x.shape))).reshape(1, 12, 6)
    expected = y.copy()
    expected[:, [0, 2]] = y[:, [2, 0]]
    assert_close(y_swapped, expected, rtol=1e-5)
    # ... while moving a pixel to the other head's set changes the result.
    other = flat.copy()
    other[:, [0, 1]] = flat[:, [1, 0]]
    y_other = keras.ops.convert_to_numpy(layer(other.reshape(x.shape))).reshape(1, 12, 6)
    y_other[:, [0, 1]] = y_other[:, [1, 0]]
    assert np.max(np.abs(y_other - y)) > 1e-3


@pytest.mark.parametrize("cls", [SpeT, SpaT])
def test_dynamic_sizes_and_jit(cls):
    inputs = keras.Input((None, None, 8))
    model = keras.Model(inputs, cls(heads=2, num_layers=2)(inputs))
    for h, w in ((4, 6), (5, 2), (3, 8), (6, 6)):
        x = np.random.default_rng(h * w).normal(size=(2, h, w, 8)).astype("float32")
        eager = keras.ops.convert_to_numpy(model(x))
        assert_close(model.predict(x, verbose=0), eager, rtol=1e-5)


def test_embeddings_shapes_and_position_resize():
    band = BandEmbedding(6, reference_grid=(4, 4))
    patch = PatchEmbedding(8, patch_size=4, reference_grid=(2, 3))
    assert tuple(band(np.zeros((2, 5, 7, 3), "float32")).shape) == (2, 5, 7, 6)
    assert tuple(patch(np.zeros((1, 20, 12, 3), "float32")).shape) == (1, 5, 3, 8)
    assert tuple(band.position.embedding.shape) == (1, 4, 4, 6)
    assert tuple(patch.position.embedding.shape) == (1, 2, 3, 8)

    pe = PositionEmbedding2D((3, 5))
    x = np.zeros((1, 3, 5, 2), "float32")
    pe.build(x.shape)
    table = np.random.default_rng(0).normal(size=(1, 3, 5, 2)).astype("float32")
    pe.embedding.assign(table)
    assert_close(pe(x), table, rtol=0.0)  # identity on the reference grid
    # Other grids: torch bilinear (align_corners=False) of the table; (3, 5) -> (6, 10) is
    # an exact 2x, where row 1 of the output is 3/4 row 0 + 1/4 row 1 of the table.
    y = keras.ops.convert_to_numpy(pe(np.zeros((1, 6, 10, 2), "float32")))
    assert y.shape == (1, 6, 10, 2)
    assert_close(y[0, 0, 0], table[0, 0, 0], rtol=1e-6)
    assert_close(y[0, 1, 0], 0.75 * table[0, 0, 0] + 0.25 * table[0, 1, 0], rtol=1e-6)

    off = BandEmbedding(6, position_embedding=None)
    off.build((None, None, None, 3))
    assert off.position is None and len(off.weights) == 4


@pytest.mark.parametrize(
    "cls,kwargs,shape,out",
    [
        (SpeT, dict(heads=3, num_layers=2, mlp_ratio=2), (2, 3, 4, 6), (2, 3, 4, 6)),
        (SpaT, dict(heads=2, num_layers=1), (1, 3, 5, 8), (1, 3, 5, 8)),
        (BandEmbedding, dict(embed_dim=8, reference_grid=(4, 6)), (1, 3, 5, 4), (1, 3, 5, 8)),
        (
            PatchEmbedding,
            dict(embed_dim=8, patch_size=2, position_embedding=None, reference_grid=(3, 3)),
            (1, 6, 8, 3),
            (1, 3, 4, 8),
        ),
        (PositionEmbedding2D, dict(reference_grid=(2, 3)), (1, 4, 5, 6), (1, 4, 5, 6)),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_layers(cls, kwargs, shape, out):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    run_layer_test(cls, kwargs, x, out)


def test_argument_validation():
    with pytest.raises(ValueError, match="heads"):
        SpeT(heads=0)
    with pytest.raises(ValueError, match="divisible by `heads`"):
        SpaT(heads=3).build((None, None, None, 8))
    with pytest.raises(ValueError, match="position_embedding"):
        BandEmbedding(8, position_embedding="sine")
    with pytest.raises(ValueError, match="patch_size"):
        PatchEmbedding(8, patch_size=0)
    with pytest.raises(ValueError, match="reference_grid"):
        PositionEmbedding2D((4,))
