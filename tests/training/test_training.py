"""Training recipes: the models learn on real patches, the runner trains, resumes, selects on
the validation strip and evaluates the test region once."""

import csv
import itertools
import json
import math
import os
import re

import keras
import numpy as np
import pytest
from harness import HSSDCT_CONFIG_TINY, MSST_CONFIG_TINY, ROOT, TINY_DATA

from keras_hsifusion import baselines, training
from keras_hsifusion.applications.registry import model_specs
from keras_hsifusion.data import indian_pines, psf_radius
from keras_hsifusion.evaluation import protocol
from keras_hsifusion.training import callbacks, runner
from keras_hsifusion.utils import runtime

# The 96x96 crop of `harness.TINY_DATA`: validation rows here; the default (columns) is
# checked below. The MSI is still simulated from the whole spectrum.
DATA = dict(TINY_DATA)
HSSDCT_TINY, MSST_TINY = dict(HSSDCT_CONFIG_TINY), dict(MSST_CONFIG_TINY)
PRETRAIN = {"epochs": 1, "steps_per_epoch": 1, "decoder_num_layers": 1}


@pytest.fixture(scope="module")
def data():
    return protocol.build_data(training.validate_config({"model": "HSSDCT", "data": DATA}))


def _footprint(region, scale, radius):
    # Per axis, the HR pixels a region sees: its own and the PSF support of its LR pixels
    # (LR pixel j is centred on HR s j + (s - 1) / 2).
    out = []
    for s in region:
        first, last = s.start + (scale - 1) / 2, s.stop - scale + (scale - 1) / 2
        out.append((min(s.start, math.ceil(first - radius)), max(s.stop - 1, last + radius)))
    return out


def test_default_validation_strip_is_the_last_columns_of_the_training_region():
    config = training.validate_config({"model": HSSDCT_TINY, "data": {**DATA, "val_axis": 1}})
    assert protocol.DEFAULT_DATA["val_axis"] == 1 and protocol.DEFAULT_DATA["val_size"] == 24
    regions = protocol.build_data(config)["regions"]
    (train_rows, train_cols), (val_rows, val_cols) = regions["train"], regions["val"]
    assert train_rows == val_rows == slice(0, 96)
    assert train_cols.stop < val_cols.start and val_cols.stop < regions["test"][1].start
    with pytest.raises(ValueError, match="val_axis"):
        training.validate_config({"model": HSSDCT_TINY, "data": {**DATA, "val_axis": 2}})


def test_regions_are_disjoint_including_guard_bands(data):
    regions = data["regions"]
    (train_rows, train_cols), (val_rows, val_cols), (test_rows, test_cols) = (
        regions[k] for k in ("train", "val", "test")
    )
    # Test: the rightmost 32 columns, all rows. Validation: the bottom 16 rows of the columns
    # left for training. Training: the top of those columns, a guard band above the strip.
    assert (test_rows, test_cols) == (slice(0, 96), slice(64, 96))
    assert val_cols == train_cols and val_rows == slice(80, 96)
    assert train_rows.start == train_cols.start == 0
    assert train_rows.stop < val_rows.start and train_cols.stop < test_cols.start
    # No HR pixel, nor the PSF support of an LR pixel, is shared by any two regions.
    boxes = {k: _footprint(v, 4, psf_radius(4)) for k, v in regions.items()}
    for a, b in itertools.combinations(boxes, 2):
        assert any(
            hi_a < lo_b or hi_b < lo_a for (lo_a, hi_a), (lo_b, hi_b) in zip(boxes[a], boxes[b])
        ), (a, b, regions)
    # The arrays are those regions of the scene; the patches stay inside the training region.
    cube = indian_pines()[0][:96, :96, ::20]
    for key in ("val", "test"):
        np.testing.assert_array_equal(data[f"{key}_target"][0], cube[regions[key]])
        lr, msi = data[f"{key}_inputs"]["lr_hsi"], data[f"{key}_inputs"]["hr_msi"]
        assert (
            lr.shape[1:3]
            == tuple(n // 4 for n in msi.shape[1:3])
            == (
                (regions[key][0].stop - regions[key][0].start) // 4,
                (regions[key][1].stop - regions[key][1].start) // 4,
            )
        )
    assert data["train"].bounds == [(train_rows, train_cols)]
    for _, y, x in data["train"].positions:
        assert y + 16 <= train_rows.stop and x + 16 <= train_cols.stop


@pytest.mark.parametrize(
    "model_config, loss, lr, size",
    [(HSSDCT_TINY, "HSSDCTJointLoss", 1e-3, 8), (MSST_TINY, "mae", 3e-3, 16)],
    ids=["hssdct", "msst_net"],
)
def test_training_loss_decreases_on_indian_pines(data, model_config, loss, lr, size):
    inputs, target = data["train"][0]  # two real 16x16 patches (x4, Sentinel-2A MSI)
    assert inputs["lr_hsi"].shape == (2, 4, 4, 10) and inputs["hr_msi"].shape == (2, 16, 16, 4)
    # HSSDCT (the slower one) learns on their top-left 8x8 corners.
    inputs = {
        "lr_hsi": inputs["lr_hsi"][:, : size // 4, : size // 4],
        "hr_msi": inputs["hr_msi"][:, :size, :size],
    }
    target = target[:, :size, :size]
    keras.utils.set_random_seed(0)
    model = training.build_model(model_config, 10, 4, 4)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=training.build_loss(loss),
        jit_compile=runtime.resolve_jit_compile(),
        run_eagerly=runtime.resolve_run_eagerly(steps=4),  # TF: 4 steps run eagerly
    )
    # Four steps on the same batch: each epoch's loss is measured before its update.
    losses = model.fit(inputs, target, batch_size=2, epochs=4, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses)), losses
    assert losses[-1] < 0.9 * losses[0], losses


def test_tensorflow_traces_long_stages_and_runs_short_ones_eagerly():
    from keras_hsifusion.utils.runtime import GRAPH_MIN_STEPS

    tf = keras.backend.backend() == "tensorflow"
    assert runtime.resolve_run_eagerly("auto", GRAPH_MIN_STEPS - 1) is tf
    assert runtime.resolve_run_eagerly("auto", GRAPH_MIN_STEPS) is False
    assert runtime.resolve_run_eagerly("auto") is False  # no step count: a long run
    assert runtime.resolve_run_eagerly(True, 10_000) is True
    assert runtime.resolve_run_eagerly(False, 1) is False
    assert runtime.resolve_jit_compile() is (keras.backend.backend() == "jax")


def _config(**overrides):
    return {
        "name": "tiny",
        "data": DATA,
        "model": MSST_TINY,
        "optimizer": {"class": "Adam", "learning_rate": 3e-3},
        "schedule": {"class": "cosine", "alpha": 0.1},
        "epochs": 2,
        "steps_per_epoch": 1,
        "tensorboard": "auto",  # written when tensorflow and tensorboard are installed
        **overrides,
    }


def _csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def spies(monkeypatch):
    """Records the regions each evaluation sees and the file each loaded model came from."""
    seen = {"held_out": [], "final": [], "loaded": {}}
    load_model, cb_eval, run_eval = (
        keras.models.load_model,
        callbacks.evaluate_region,
        runner.evaluate_region,
    )

    def load(path, *args, **kwargs):
        model = load_model(path, *args, **kwargs)
        seen["loaded"][id(model)] = os.path.basename(os.fspath(path))
        return model

    def held_out(model, inputs, target, *args, **kwargs):
        seen["held_out"].append(target.shape)
        return cb_eval(model, inputs, target, *args, **kwargs)

    def final(model, inputs, target, *args, **kwargs):
        seen["final"].append((seen["loaded"].get(id(model)), target.shape, kwargs))
        return run_eval(model, inputs, target, *args, **kwargs)

    monkeypatch.setattr(keras.models, "load_model", load)
    monkeypatch.setattr(callbacks, "evaluate_region", held_out)
    monkeypatch.setattr(runner, "evaluate_region", final)
    return seen


def test_runner_three_stages_then_resume(tmp_path, capsys, data, spies):
    out = tmp_path / "run"
    config_path = tmp_path / "tiny.json"
    config_path.write_text(json.dumps(_config(pretrain={"mbae": PRETRAIN, "mpae": PRETRAIN})))
    messages = []
    results = training.run_experiment(str(config_path), out, verbose=0, log=messages.append)
    # Stage 1 and 2 (MSST-Net's recipe): three MBAEs (widths D, D/2, 2D) and three MPAEs
    # (patches p, p/2, 2p), each in its own resumable sub-folder.
    for stage in ("mbae_4", "mbae_2", "mbae_8", "mpae_4", "mpae_2", "mpae_8"):
        assert (out / stage / "last.keras").is_file(), stage
        assert training.read_state(out / stage)["epoch"] == 1
    assert any(m.startswith("=== fine-tuning MSSTNet") for m in messages), messages
    # Stage 3: the fine-tuning, validated on the whole validation strip every epoch.
    rows = _csv_rows(out / "log.csv")
    assert [r["epoch"] for r in rows] == ["0", "1"]
    for key in ("loss", "val_psnr", "val_sam", "val_ergas", "val_rmse"):
        assert all(np.isfinite(float(r[key])) for r in rows), key
    assert (out / "best.keras").is_file() and (out / "last.keras").is_file()
    # Selection uses the validation strip only (`val_*`); the test region is evaluated once,
    # at the end, on best.keras.
    assert spies["held_out"] == [data["val_target"].shape] * 2
    assert spies["final"] == [("best.keras", data["test_target"].shape, {"ssim": True})]
    state = training.read_state(out)
    psnrs = [float(r["val_psnr"]) for r in rows]
    assert state["epoch"] == 2 and state["monitor"] == "val_psnr"
    assert state["best_epoch"] == 1 + int(np.argmax(psnrs))
    assert results["best_epoch"] == state["best_epoch"] and results["val"] == state["best_logs"]
    assert results["val"]["val_psnr"] == pytest.approx(max(psnrs))
    best = keras.models.load_model(out / "best.keras")
    expected, _ = protocol.evaluate_region(
        best, data["test_inputs"], data["test_target"], 4, ssim=True
    )
    assert results["test"] == pytest.approx(expected, rel=1e-6)
    assert set(results["test"]) == {"psnr", "sam", "ergas", "rmse", "ssim"}
    # The classical methods on the same test region.
    assert set(results["baselines"]) == set(baselines.METHODS)
    assert results["baselines"]["bicubic"]["psnr"] > 20
    bicubic = baselines.bicubic(data["test_inputs"]["lr_hsi"], data["test_inputs"]["hr_msi"], 4)
    assert results["baselines"]["bicubic"] == pytest.approx(
        protocol.region_metrics(data["test_target"], bicubic.clip(0, 1), 4, ssim=True)
    )
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    if runner._tensorboard_available():
        assert any((out / "tensorboard").rglob("*tfevents*"))

    # "Interrupted" after 2 epochs: resume to 3 from the command line. The pretraining
    # stages are not redone and the fine-tuning continues at epoch 3 with the saved
    # optimiser state.
    from training.run import main

    capsys.readouterr()
    spies["final"].clear()
    argv = [str(config_path), "--out", str(out), "--epochs", "3", "--resume", "--verbose", "0"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("already trained") == 6
    assert "resuming after epoch 2" in printed, printed
    results = json.loads(printed[printed.index("{\n") :])
    assert results["epochs"] == 3 and set(results["baselines"]["bicubic"]) == {
        "psnr",
        "sam",
        "ergas",
        "rmse",
        "ssim",
    }
    assert spies["final"] == [("best.keras", data["test_target"].shape, {"ssim": True})]
    rows = _csv_rows(out / "log.csv")
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert training.read_state(out)["epoch"] == 3
    last = keras.models.load_model(out / "last.keras")
    assert int(keras.ops.convert_to_numpy(last.optimizer.iterations)) == 3
    assert not list(out.rglob(".tmp-*")), "a temporary file was left behind"


def test_shipped_configs_are_valid():
    root = os.path.join(ROOT, "training", "configs")
    names = sorted(os.listdir(root))
    assert any(n.startswith("hssdct") for n in names) and any(n.startswith("msst") for n in names)
    for name in names:
        if name.endswith((".py", ".json")):
            config = training.load_config(os.path.join(root, name))
            assert config["name"] == os.path.splitext(name)[0]
            # Every registered recipe key is present, so config.json files compare equal.
            assert "pretrain" in config


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"epochs": 0}, r"`epochs` must be an integer >= 1. Received: epochs=0"),
        ({"epoch": 3}, r"Unknown key\(s\) \['epoch'\] in `config`"),
        ({"model": None}, r"`model` is required"),
        ({"model": {"class": "UNet"}}, r"`model.class` must be one of .* Received: class='UNet'"),
        ({"model": {"class": "hssdct"}}, r"`model.class` must be one of .* class='hssdct'"),
        ({"model": {"class": "HSSDCT", "nff": 3}}, r"Unknown key\(s\) \['nff'\] in `model`"),
        ({"model": {"class": "HSSDCT", "scale": 8}}, r"Unknown key\(s\) \['scale'\]"),
        ({"data": {"patch_size": 18}}, r"`data.patch_size` must be a multiple of `data.scale`"),
        ({"data": {"bands": 3}}, r"Unknown key\(s\) \['bands'\] in `data`"),
        ({"data": {"val_size": 0}}, r"`data.val_size` must be an integer >= 1"),
        ({"loss": "no_such_loss"}, r"Unknown loss. Received: loss='no_such_loss'"),
        ({"optimizer": {"class": "Adamm"}}, r"Invalid `optimizer`"),
        ({"schedule": {"class": "linear"}}, r"'cosine' or 'multistep'. Received: class='linear'"),
        ({"schedule": {"class": "multistep", "milestones": [5, 2]}}, r"milestones=\[5, 2\]"),
        ({"monitor": "psnr"}, r"`monitor` must be one of .* Received: monitor='psnr'"),
        ({"monitor": "test_psnr"}, r"Received: monitor='test_psnr'"),
        ({"pretrain": {"mbae": {}}}, r"`pretrain` is only for MSSTNet"),
        ({"zero_init": "last_conv"}, r"`zero_init` must be a list of layer names. Received: "),
        ({"zero_init": ["last_conv", ""]}, r"zero_init=\['last_conv', ''\]"),
    ],
)
def test_config_validation_errors(overrides, match):
    config = {"model": {"class": "HSSDCT"}, **overrides}
    with pytest.raises(ValueError, match=match):
        training.validate_config(config)


@pytest.mark.parametrize(
    "pretrain, match",
    [
        ({"mbae": {"mask_ratio": 1.5}}, r"`pretrain.mbae.mask_ratio` must be in \[0, 1\)"),
        ({"mpae": {"epochs": 0}}, r"`pretrain.mpae.epochs` must be an integer >= 1"),
        ({"mbae": {"lr": 1}}, r"Unknown key\(s\) \['lr'\] in `pretrain.mbae`"),
        ({"mae": {}}, r"Unknown key\(s\) \['mae'\] in `pretrain`"),
        ({"mbae": {"schedule": {"class": "step"}}}, r"`pretrain.mbae.schedule.class` must be"),
        ([1], r"`pretrain` must be a dict"),
    ],
)
def test_msst_net_recipe_validation(pretrain, match):
    with pytest.raises(ValueError, match=match):
        training.validate_config({"model": {"class": "MSSTNet"}, "pretrain": pretrain})


def test_msst_net_recipe_defaults():
    config = training.validate_config({"model": "MSSTNet", "pretrain": {"mbae": {"epochs": 2}}})
    assert config["pretrain"]["mpae"] is None
    assert config["pretrain"]["mbae"] == {
        "epochs": 2,
        "steps_per_epoch": None,
        "mask_ratio": None,
        "decoder_num_layers": 2,
        "optimizer": {"class": "Adam", "learning_rate": 1e-3},
        "schedule": None,
    }
    assert training.validate_config(config) == config  # validating twice changes nothing
    assert training.validate_config({"model": "HSSDCT"})["pretrain"] is None


def test_config_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json.*not valid JSON"):
        training.load_config(bad)
    no_config = tmp_path / "empty.py"
    no_config.write_text("X = 1\n")
    with pytest.raises(ValueError, match="must define a dict named `CONFIG`"):
        training.load_config(no_config)
    with pytest.raises(ValueError, match=r"\.json or \.py"):
        (tmp_path / "c.yaml").write_text("a: 1")
        training.load_config(tmp_path / "c.yaml")


def test_held_out_metrics_and_bicubic(data):
    # The callback's numbers are the numpy metrics on the whole region; bicubic is a sane
    # baseline on this scene (about 32 dB at x4).
    inputs = data["val_inputs"]
    bicubic = baselines.bicubic(inputs["lr_hsi"], inputs["hr_msi"], data["scale"])
    assert bicubic.shape == data["val_target"].shape == (1, 16, 56, 10)
    values = protocol.region_metrics(data["val_target"], bicubic, 4)
    assert 25 < values["psnr"] < 40 and 0 < values["sam"] < 10


def test_training_package_names_no_model():
    # Models are found through the registry only: no registered class is named in the
    # generic training code, and every module stays a few hundred lines.
    folder = os.path.dirname(training.__file__)
    classes = {spec.cls.__name__ for spec in model_specs().values()}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                source = f.read()
            assert source.count("\n") < 400, name
            named = classes & set(re.findall(r"\w+", source))
            assert not named, (name, named)


def test_zero_init_starts_a_model_exactly_at_its_global_skip():
    from keras_hsifusion.layers import GlobalSkip
    from keras_hsifusion.training.runner import zero_init

    config = training.validate_config(
        {
            "model": {**HSSDCT_TINY, "global_skip": "poly_detail_injection"},
            "zero_init": ["last_conv"],
        }
    )
    assert config["zero_init"] == ["last_conv"]
    model = training.build_model(config["model"], hsi_bands=6, msi_bands=3, scale=4)
    rng = np.random.default_rng(0)
    lr, hr = rng.random((1, 8, 8, 6), "float32"), rng.random((1, 32, 32, 3), "float32")
    skip = keras.ops.convert_to_numpy(GlobalSkip("poly_detail_injection", 4)([lr, hr]))
    before = keras.ops.convert_to_numpy(model({"lr_hsi": lr, "hr_msi": hr}))
    assert np.abs(before - skip).max() > 1e-4  # the random network adds its residual
    zero_init(model, config["zero_init"])
    after = keras.ops.convert_to_numpy(model({"lr_hsi": lr, "hr_msi": hr}))
    np.testing.assert_allclose(after, skip, rtol=1e-5, atol=1e-6)
    assert all(
        not np.any(keras.ops.convert_to_numpy(w)) for w in model.get_layer("last_conv").weights
    )
    with pytest.raises(ValueError, match=r"`zero_init` names a layer that HSSDCT does not have. "):
        zero_init(model, ["last_conv", "lastconv"])
