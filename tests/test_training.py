"""Training recipes: the models learn on real patches, the runner trains, resumes and validates."""

import csv
import json
import os

import keras
import numpy as np
import pytest

from keras_hsifusion import training

# A 96x96 crop (held-out: its rightmost 32 columns), every 20th of the 200 Indian Pines bands
# (the MSI is still simulated from the whole spectrum) and 16x16 patches keep the steps short.
DATA = {
    "crop": 96,
    "val_size": 32,
    "band_step": 20,
    "patch_size": 16,
    "batch_size": 2,
    "patches_per_epoch": 2,
}
HSSDCT_TINY = {"class": "HSSDCT", "nf": 32, "gc": 16, "window_size": 2, "mlp_ratio": 2.0}
MSST_TINY = {
    "class": "MSSTNet",
    "n_feats": 8,
    "hsi_embed_dim": 4,
    "msi_embed_dim": 8,
    "hsi_heads": 2,
    "msi_heads": 2,
    "patch_size": 4,
    "hsi_res_blocks": 1,
    "msi_res_blocks": 1,
    "hsi_num_layers": 1,
    "msi_num_layers": 1,
    "reference_size": [4, 4],
}
PRETRAIN = {"epochs": 1, "steps_per_epoch": 1, "decoder_num_layers": 1}


@pytest.fixture(scope="module")
def data():
    return training.build_data(training.validate_config({"model": "HSSDCT", "data": DATA}))


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
        jit_compile=training.resolve_jit_compile(),
        run_eagerly=training.resolve_run_eagerly(),  # TF: eager (tracing takes minutes)
    )
    # Four steps on the same batch: each epoch's loss is measured before its update.
    losses = model.fit(inputs, target, batch_size=2, epochs=4, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses)), losses
    assert losses[-1] < 0.9 * losses[0], losses


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


def test_runner_three_stages_then_resume(tmp_path, capsys):
    out = tmp_path / "run"
    config_path = tmp_path / "tiny.json"
    config_path.write_text(json.dumps(_config(pretrain={"mbae": PRETRAIN, "mpae": PRETRAIN})))
    messages = []
    results = training.run_experiment(str(config_path), out, verbose=0, log=messages.append)
    # Stage 1 and 2: three MBAEs (widths D, D/2, 2D) and three MPAEs (patches p, p/2, 2p).
    for stage in ("mbae_4", "mbae_2", "mbae_8", "mpae_4", "mpae_2", "mpae_8"):
        assert (out / stage / "last.keras").is_file(), stage
        assert training.read_state(out / stage)["epoch"] == 1
    # Stage 3: the fine-tuning, validated on the whole held-out region every epoch.
    rows = _csv_rows(out / "log.csv")
    assert [r["epoch"] for r in rows] == ["0", "1"]
    for key in ("loss", "val_psnr", "val_sam", "val_ergas"):
        assert all(np.isfinite(float(r[key])) for r in rows), key
    assert (out / "best.keras").is_file() and (out / "last.keras").is_file()
    assert training.read_state(out)["epoch"] == 2
    assert results["bicubic"]["psnr"] > 20 and np.isfinite(results["best"]["psnr"])
    if training._tensorboard_available():
        assert any((out / "tensorboard").rglob("*tfevents*"))

    # "Interrupted" after 2 epochs: resume to 3 from the command line. The pretraining
    # stages are not redone and the fine-tuning continues at epoch 3 with the saved
    # optimiser state.
    from training.run import main

    capsys.readouterr()
    argv = [str(config_path), "--out", str(out), "--epochs", "3", "--resume", "--verbose", "0"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("already trained") == 6
    assert "resuming after epoch 2" in printed, printed
    results = json.loads(printed[printed.index("{\n") :])
    assert results["epochs"] == 3 and set(results["bicubic"]) == {"psnr", "sam", "ergas", "rmse"}
    rows = _csv_rows(out / "log.csv")
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    state = training.read_state(out)
    assert state["epoch"] == 3
    last = keras.models.load_model(out / "last.keras")
    assert int(keras.ops.convert_to_numpy(last.optimizer.iterations)) == 3


def test_shipped_configs_are_valid():
    root = os.path.join(os.path.dirname(__file__), os.pardir, "training", "configs")
    names = sorted(os.listdir(root))
    assert any(n.startswith("hssdct") for n in names) and any(n.startswith("msst") for n in names)
    for name in names:
        if name.endswith((".py", ".json")):
            config = training.load_config(os.path.join(root, name))
            assert config["name"] == os.path.splitext(name)[0]


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"epochs": 0}, r"`epochs` must be an integer >= 1. Received: epochs=0"),
        ({"epoch": 3}, r"Unknown key\(s\) \['epoch'\] in `config`"),
        ({"model": None}, r"`model` is required"),
        ({"model": {"class": "UNet"}}, r"`model.class` must be one of .* Received: class='UNet'"),
        ({"model": {"class": "HSSDCT", "nff": 3}}, r"Unknown key\(s\) \['nff'\] in `model`"),
        ({"model": {"class": "HSSDCT", "scale": 8}}, r"Unknown key\(s\) \['scale'\]"),
        ({"data": {"patch_size": 18}}, r"`data.patch_size` must be a multiple of `data.scale`"),
        ({"data": {"bands": 3}}, r"Unknown key\(s\) \['bands'\] in `data`"),
        ({"loss": "no_such_loss"}, r"Unknown loss. Received: loss='no_such_loss'"),
        ({"optimizer": {"class": "Adamm"}}, r"Invalid `optimizer`"),
        ({"schedule": {"class": "linear"}}, r"'cosine' or 'multistep'. Received: class='linear'"),
        ({"schedule": {"class": "multistep", "milestones": [5, 2]}}, r"milestones=\[5, 2\]"),
        ({"monitor": "psnr"}, r"`monitor` must be one of .* Received: monitor='psnr'"),
        ({"pretrain": {"mbae": {}}}, r"`pretrain` is only for MSSTNet"),
    ],
)
def test_config_validation_errors(overrides, match):
    config = {"model": {"class": "HSSDCT"}, **overrides}
    with pytest.raises(ValueError, match=match):
        training.validate_config(config)


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
    msst = {"model": {"class": "MSSTNet"}, "pretrain": {"mbae": {"mask_ratio": 1.5}}}
    with pytest.raises(ValueError, match=r"`pretrain.mbae.mask_ratio` must be in \[0, 1\)"):
        training.validate_config(msst)


def test_held_out_metrics_and_bicubic(data):
    # The callback's numbers are the numpy metrics on the whole region; bicubic is a sane
    # baseline on this scene (about 32 dB at x4).
    bicubic = training.bicubic_upsample(data["val_inputs"]["lr_hsi"], data["scale"])
    assert bicubic.shape == data["val_target"].shape == (1, 96, 32, 10)
    values = training.region_metrics(data["val_target"], bicubic, 4)
    assert 25 < values["psnr"] < 40 and 0 < values["sam"] < 10
