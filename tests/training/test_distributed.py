"""Data-parallel training (`distribution="data_parallel"`) on 2 virtual CPU devices.

Each backend's pass tests its own engine in a subprocess: JAX `keras.distribution` over
`--xla_force_host_platform_device_count=2`, TensorFlow `MirroredStrategy` over 2 logical
CPUs, PyTorch `torch.distributed` with 2 `gloo` processes started by `torchrun`. Three
steps of a global batch of 4 (2 per replica; the third after a resume) must give the loss
trajectory and the weights of one device with the batch of 4.
"""

import csv
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from harness import BACKEND, MSST_CONFIG_TINY, TINY_DATA, _load_under

from keras_hsifusion import training
from keras_hsifusion.evaluation import protocol
from keras_hsifusion.training import distributed, runner

# One step of 4 patches per epoch, 3 epochs; MSST-Net small (its steps compile fastest).
DATA = {**TINY_DATA, "batch_size": 4, "patches_per_epoch": 4}
MODEL = MSST_CONFIG_TINY


def _config(distribution):
    # SGD: its update is linear in the gradient, so a wrong gradient average (a sum, one
    # rank's gradient) changes the weights by about lr * |g| (1e-3 here); Adam would hide
    # a constant factor. No schedule: `epochs` of the first call would change its length.
    return {
        "name": "dp",
        "data": DATA,
        "model": MODEL,
        "optimizer": {"class": "SGD", "learning_rate": 0.05, "momentum": 0.9},
        "epochs": 3,
        "tensorboard": False,
        "distribution": distribution,
    }


# Two epochs, then a resume to the third: the classical baselines are not what is tested.
WORKER = """
import json, os, sys
if os.environ["KERAS_BACKEND"] == "tensorflow":  # before anything initialises TF
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from keras_hsifusion import training
from keras_hsifusion.training import runner
runner.baseline_metrics = lambda *args, **kwargs: {}
config, out = json.loads(sys.argv[1]), sys.argv[2]
training.run_experiment(config, out, epochs=2, verbose=0)
training.run_experiment(config, out, epochs=3, resume=True, verbose=0)
print("DONE", flush=True)
"""


def _launch(script, config, out):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    args = [script, json.dumps(config), out]
    if BACKEND == "jax":
        env["XLA_FLAGS"] = (
            env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
        ).strip()
        cmd = [sys.executable, *args]
    elif BACKEND == "torch":
        env["OMP_NUM_THREADS"] = "1"  # two processes on a 2-core CI machine
        run = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
        cmd = [sys.executable, *run, *args]
    else:
        cmd = [sys.executable, *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows(folder):
    with open(os.path.join(folder, "log.csv"), newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _weights(model):
    return {w.path: np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights}


def test_data_parallel_on_two_devices_matches_one_device(tmp_path, monkeypatch):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    two, one = tmp_path / "two", tmp_path / "one"
    proc = _launch(str(script), _config("data_parallel"), str(two))
    # The single-device reference runs here meanwhile (same recipe, 3 epochs at once).
    monkeypatch.setattr(runner, "baseline_metrics", lambda *args, **kwargs: {})
    messages = []
    training.run_experiment(_config(None), one, verbose=0, log=messages.append)
    stdout, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr[-4000:]
    assert stdout.count("DONE") == (2 if BACKEND == "torch" else 1), stdout
    assert messages[0] == "distribution: none (1 device), batch 4"
    # One line per run, printed by rank 0 only: 2 replicas of a global batch of 4.
    lines = [line for line in stdout.splitlines() if line.startswith("distribution:")]
    assert len(lines) == 2 and all(
        "2 replicas" in line and "global batch 4, per-replica batch 2" in line for line in lines
    ), stdout
    assert stdout.count("resuming after epoch 2") == 1, stdout

    # Loss trajectory (each epoch is one step) and validation metrics: measured within 7e-7
    # relative on every backend (float32 reductions in another order).
    rows_two, rows_one = _rows(two), _rows(one)
    assert [r["epoch"] for r in rows_two] == [0, 1, 2]
    for a, b in zip(rows_two, rows_one):
        for key in ("loss", "val_psnr", "val_rmse"):
            assert a[key] == pytest.approx(b[key], rel=1e-5), (key, a, b)
    assert rows_one[-1]["loss"] < rows_one[0]["loss"]  # it trains
    results = json.loads((two / "results.json").read_text())
    assert results["replicas"] == 2 and results["epochs"] == 3
    # Rank 0 alone wrote the folder: the files of a one-device run, nothing more.
    assert sorted(os.listdir(two)) == sorted(os.listdir(one))

    # The 2-replica checkpoint loads on one device: same weights (measured: 1.6e-7 at most
    # against updates of about 1e-3) and optimiser state.
    model_two = keras.saving.load_model(two / "last.keras")
    model_one = keras.saving.load_model(one / "last.keras")
    w_two, w_one = _weights(model_two), _weights(model_one)
    assert list(w_two) == list(w_one)
    for path in w_one:
        np.testing.assert_allclose(w_two[path], w_one[path], rtol=1e-4, atol=1e-6, err_msg=path)
    assert int(keras.ops.convert_to_numpy(model_two.optimizer.iterations)) == 3
    data = protocol.build_data(training.validate_config(_config(None)))
    inputs = data["val_inputs"]
    y = keras.ops.convert_to_numpy(model_two.predict_on_batch(inputs))
    assert y.shape == data["val_target"].shape
    if BACKEND == "torch":
        # ... and under another backend, weight for weight (the torchrun-written file).
        other = _load_under("tensorflow", two / "last.keras", model_two, inputs, tmp_path)
        assert np.max(np.abs(other - y)) <= 1e-5 * np.max(np.abs(y))


@pytest.mark.parametrize(
    "value, match",
    [
        (
            "model_parallel",
            r"`distribution` must be None, .* Received: distribution='model_parallel'",
        ),
        ({"class": "ddp"}, r"`distribution` must be .* Received: distribution=\{'class': 'ddp'"),
        (2, r"`distribution` must be .* Received: distribution=2"),
        ({"class": "data_parallel", "gpus": 2}, r"Unknown key\(s\) \['gpus'\] in `distribution`"),
        ({"class": "data_parallel", "devices": 0}, r"`distribution.devices` must be an integer"),
    ],
)
def test_distribution_validation(value, match):
    with pytest.raises(ValueError, match=match):
        training.validate_config({"model": {"class": "HSSDCT"}, "distribution": value})


def test_distribution_defaults_and_global_batch_checks():
    assert training.validate_config({"model": "HSSDCT"})["distribution"] is None
    config = training.validate_config({"model": "HSSDCT", "distribution": "data_parallel"})
    assert config["distribution"] == {"class": "data_parallel", "devices": None}
    assert training.validate_config(config) == config
    distributed.check_global_batch(8, 64, 4)
    with pytest.raises(ValueError, match=r"`data.batch_size` \(6; the global batch\).*\(4\)"):
        distributed.check_global_batch(6, 60, 4)
    with pytest.raises(ValueError, match=r"`the last batch` \(2; .*patches_per_epoch=10"):
        distributed.check_global_batch(4, 10, 4)
    # Without a distribution, the context is one replica and does not touch the data.
    context = distributed.setup_distribution(None)
    assert (context.rank, context.world_size, context.num_replicas, context.is_chief) == (
        0,
        1,
        1,
        True,
    )
    patches = protocol.build_data(training.validate_config({"model": "HSSDCT", "data": DATA}))
    assert context.shard(patches["train"]) is patches["train"]
    # A shard is rows [r B/N, (r + 1) B/N) of each global batch.
    shards = [distributed.ShardedBatches(patches["train"], r, 2) for r in range(2)]
    (x, y), parts = patches["train"][0], [s[0] for s in shards]
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), y)
    np.testing.assert_array_equal(np.concatenate([p[0]["hr_msi"] for p in parts]), x["hr_msi"])
    shards[0].epoch = 3
    assert patches["train"].epoch == 3 and len(shards[1]) == len(patches["train"])
