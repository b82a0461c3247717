"""Shipped presets: loading on every backend, sha256 checks, cards, held-out metrics."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_hsifusion as khf
from keras_hsifusion import presets
from keras_hsifusion.applications import HSSDCT, FusionModel, MSSTNet
from keras_hsifusion.evaluation import protocol

SHIPPED = {"hssdct_indianpines_s2_x4": HSSDCT, "msst_net_indianpines_s2_x4": MSSTNet}
CARD_KEYS = {
    "name", "class", "config", "scale", "hsi_bands", "msi_bands", "params", "sha256", "file",
    "description", "global_skip", "hsi_wavelengths_nm", "msi_sensor", "msi_band_names",
    "normalisation", "data", "recipe", "recipe_config", "seed", "steps", "wall_time_s",
    "machine", "backend", "commit", "flops", "metrics",
}  # fmt: skip
# The quality bar a shipped preset must pass on the held-out test region (issue 11).
BAR = {"psnr": 39.0, "sam": 1.85, "ergas": 0.89}


@pytest.fixture(scope="module")
def protocol_data():
    card = presets.load_card(next(iter(SHIPPED)))
    return protocol.build_data(card["recipe_config"])


def test_every_shipped_preset_is_listed_with_a_full_card():
    cards = khf.list_presets()
    assert set(SHIPPED) <= set(cards)
    for name, cls in SHIPPED.items():
        card = cards[name]
        assert CARD_KEYS <= set(card), sorted(CARD_KEYS - set(card))
        assert card["class"] == cls.__name__ and card["name"] == name
        assert card["scale"] == 4 and card["hsi_bands"] == 200 and card["msi_bands"] == 4
        assert len(card["hsi_wavelengths_nm"]) == 200
        assert card["recipe_config"]["name"] == name
        assert os.path.isfile(card["recipe"]), card["recipe"]  # relative to the repository
        assert os.path.getsize(presets.get_file(name)) <= 25 * 2**20
        test = card["metrics"]["model"]
        assert test["psnr"] >= BAR["psnr"] and test["sam"] < BAR["sam"], test
        assert test["ergas"] < BAR["ergas"], test
        for baseline in ("bicubic", "detail_injection"):
            assert test["psnr"] > card["metrics"][baseline]["psnr"]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_preset_reproduces_its_card_metrics(name, protocol_data):
    # keras.models.load_model on the verified file, default safe_mode, this backend.
    model = keras.models.load_model(presets.get_file(name), compile=False)
    assert isinstance(model, SHIPPED[name])
    card = presets.load_card(name)
    data = protocol_data
    values, pred = protocol.evaluate_region(
        model, data["test_inputs"], data["test_target"], data["scale"], ssim=True
    )
    expected = card["metrics"]["model"]
    assert pred.shape == data["test_target"].shape
    assert abs(values["psnr"] - expected["psnr"]) < 0.05, (values, expected)
    assert abs(values["sam"] - expected["sam"]) < 0.01
    assert abs(values["ergas"] - expected["ergas"]) < 0.01
    assert abs(values["ssim"] - expected["ssim"]) < 1e-3


_OTHER = {"tensorflow": "torch", "torch": "jax", "jax": "tensorflow"}
_SCRIPT = """
import sys, numpy as np, keras
import keras_hsifusion as khf
x = dict(np.load(sys.argv[2]))
model = keras.models.load_model(khf.presets.get_file(sys.argv[1]))
np.save(sys.argv[3], keras.ops.convert_to_numpy(model.predict_on_batch(x)))
"""


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_preset_agrees_across_backends(name, protocol_data, tmp_path):
    inputs = {k: v[:, :16, :8] if k == "lr_hsi" else v[:, :64, :32] for k, v in
              protocol_data["test_inputs"].items()}  # fmt: skip
    np.savez(tmp_path / "x.npz", **inputs)
    other = _OTHER[keras.backend.backend()]
    env = dict(os.environ, KERAS_BACKEND=other)
    out = tmp_path / "y.npy"
    subprocess.run(
        [sys.executable, "-c", _SCRIPT, name, str(tmp_path / "x.npz"), str(out)],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    here = keras.ops.convert_to_numpy(khf.from_preset(name).predict_on_batch(inputs))
    there = np.load(out)
    np.testing.assert_allclose(here, there, rtol=1e-4, atol=1e-4 * float(np.abs(here).max()))


def test_from_preset_checks_the_class():
    assert isinstance(HSSDCT.from_preset("hssdct_indianpines_s2_x4"), HSSDCT)
    assert isinstance(FusionModel.from_preset("msst_net_indianpines_s2_x4"), MSSTNet)
    with pytest.raises(ValueError, match="holds a MSSTNet, not a HSSDCT"):
        HSSDCT.from_preset("msst_net_indianpines_s2_x4")
    with pytest.raises(ValueError, match="Unknown preset.*hssdct_indianpines_s2_x4"):
        khf.from_preset("no_such_preset")


def test_preset_input_errors_name_both_sides():
    model = khf.from_preset("hssdct_indianpines_s2_x4")
    lr, hr = np.zeros((1, 4, 4, 31), "float32"), np.zeros((1, 16, 16, 4), "float32")
    with pytest.raises(ValueError, match=r"hsi_bands=200.*\(1, 4, 4, 31\)"):
        model.predict_on_batch({"lr_hsi": lr, "hr_msi": hr})
    lr, hr = np.zeros((1, 4, 4, 200), "float32"), np.zeros((1, 8, 8, 4), "float32")
    with pytest.raises(ValueError, match="scale=4"):
        model.predict_on_batch({"lr_hsi": lr, "hr_msi": hr})


def test_sha256_mismatch_is_refused_before_loading(tmp_path):
    src = os.path.dirname(presets.get_file("hssdct_indianpines_s2_x4"))
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    with open(dst / "model.keras", "r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ValueError, match="does not match its card: sha256"):
        khf.from_preset(str(dst))
    with pytest.raises(ValueError, match="does not match its card"):
        presets.get_file(str(dst))


def _tiny():
    return HSSDCT(hsi_bands=6, msi_bands=3, nf=32, gc=16, window_size=2, mlp_ratio=1.0)


def test_save_to_preset_round_trip(tmp_path):
    model = _tiny()
    card = model.save_to_preset(tmp_path / "mine", description="a tiny test preset")
    assert card["class"] == "HSSDCT" and card["params"] == model.count_params()
    with open(tmp_path / "mine" / "preset.json", encoding="utf-8") as f:
        assert json.load(f)["description"] == "a tiny test preset"
    assert sorted(os.listdir(tmp_path / "mine")) == ["model.keras", "preset.json"]
    loaded = HSSDCT.from_preset(str(tmp_path / "mine"))
    x = {"lr_hsi": np.random.rand(1, 4, 4, 6), "hr_msi": np.random.rand(1, 16, 16, 3)}
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded.predict_on_batch(x)),
        keras.ops.convert_to_numpy(model.predict_on_batch(x)),
        rtol=1e-6,
        atol=1e-6,
    )


def test_preset_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no preset.json"):
        khf.from_preset(str(tmp_path))
    (tmp_path / "preset.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="Cannot read the preset card"):
        khf.from_preset(str(tmp_path))
