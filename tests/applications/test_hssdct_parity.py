"""Golden parity of HSSDCT and its layers against the official PyTorch code."""

import keras
import numpy as np
import pytest
from harness import BACKEND, assert_close, load_fixture, nchw_to_nhwc, run_model, split_fixture

import keras_hsifusion as khf
from keras_hsifusion.applications.hssdct import convert as hssdct_convert
from keras_hsifusion.convert import WeightMapper


def _run(layer, x):
    """Runs a layer like `run_model` does: eagerly on TF/torch, compiled on JAX."""
    inp = keras.Input(x.shape[1:], batch_size=x.shape[0])
    return run_model(keras.Model(inp, layer(inp)), x)


def _load_layer(layer, sd, mapper_fn):
    """Loads an official sub-module state dict into a layer with the model's mapping code."""
    sd = {"root." + k: np.asarray(v) for k, v in sd.items()}
    m = WeightMapper(sd)
    mapper_fn(m, layer, "root")
    unused = set(sd) - set(m.used) - set(m.ignored)
    assert not m.errors and not m.missing and not unused, (m.errors, m.missing, unused)
    assert not m.unset_variables(layer), [v.path for v in m.unset_variables(layer)]
    for variable, array, _ in m._pairs:
        variable.assign(array)


@pytest.mark.parametrize("name,window", [("layer_htb_w32", 32), ("layer_htb_w4", 4)])
def test_hierarchical_block_matches_official(name, window):
    sd, data = split_fixture(load_fixture(name))
    dim, heads, ws, base = (int(v) for v in data["config"])
    mlp_ratio = sd["mlp.fc1.weight"].shape[0] / dim
    layer = khf.layers.HierarchicalTransformerBlock(heads, ws, base, mlp_ratio=mlp_ratio)
    layer.build(data["x"].shape)
    _load_layer(layer, sd, hssdct_convert._map_hierarchical_block)
    assert_close(_run(layer, data["x"]), data["y"])


def test_sscl_matches_official_scc():
    sd, data = split_fixture(load_fixture("layer_sscl"))
    dim, heads, ws, base = (int(v) for v in data["config"])
    layer = khf.layers.SSCL(heads, ws, base)
    layer.build(data["x"].shape)
    _load_layer(layer, sd, hssdct_convert._map_sscl)
    assert_close(_run(layer, data["x"]), data["y"])


@pytest.mark.parametrize(
    "name,cls,mapping",
    [
        ("layer_hdrtb", khf.layers.HDRTB, hssdct_convert._map_hdrtb),
        (
            "layer_dense_window_block",
            khf.layers.DenseWindowBlock,
            hssdct_convert._map_dense_window_block,
        ),
    ],
    ids=["HDRTB", "DenseWindowBlock"],
)
def test_dense_block_matches_official(name, cls, mapping):
    sd, data = split_fixture(load_fixture(name))
    dim, heads, gc = (int(v) for v in data["config"])
    layer = cls(num_heads=heads, gc=gc)
    layer.build(data["x"].shape)
    _load_layer(layer, sd, mapping)
    assert_close(_run(layer, data["x"]), data["y"])


@pytest.mark.parametrize("name", ["hssdct_c8_nf32_gc16", "hssdct_c12_nf64_gc16"])
def test_hssdct_matches_official(name):
    sd, data = split_fixture(load_fixture(name))
    bands, msi_bands, nf, gc = (int(v) for v in data["config"])
    model = khf.applications.HSSDCT(hsi_bands=bands, msi_bands=msi_bands, nf=nf, gc=gc)
    report = khf.convert.load_torch_state_dict(model, sd)
    assert set(report.ignored) == {"decoder.norm.weight", "decoder.norm.bias"} | {
        f"decoder.final_blk.0.swin{k}.attn.relative_position_index" for k in range(1, 5)
    }
    assert report.keras_only == {} and report.missing == [] and report.unexpected == []
    inputs = {"lr_hsi": nchw_to_nhwc(data["lr_hsi"]), "hr_msi": nchw_to_nhwc(data["hr_msi"])}
    expected = nchw_to_nhwc(data["output"])
    assert_close(run_model(model, inputs), expected)
    if BACKEND == "tensorflow" and name == "hssdct_c8_nf32_gc16":
        model.compile(jit_compile=False)  # graph mode with dynamic sizes, once
        assert_close(model.predict(inputs, verbose=0), expected, what="predict")
