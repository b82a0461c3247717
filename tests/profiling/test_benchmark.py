"""The benchmark runner's logic on tiny inputs (the real runs live in benchmarks/results)."""

import importlib.util
import json

import keras
import numpy as np
import pytest
from harness import BACKEND, ROOT

from keras_hsifusion.applications.hssdct import HSSDCT
from keras_hsifusion.applications.registry import get_model_spec
from keras_hsifusion.ops.resize import upsample_matmul_flops
from keras_hsifusion.profiling import benchmark, count_flops

TINY = dict(hsi_bands=8, msi_bands=3, nf=32, gc=16)
RUNNER = ROOT / "benchmarks" / "run.py"
# Parameters of the benchmarked zoo models (docs/benchmarks.md).
PARAMS = {"hssdct": 7_977_342, "msst_net": 34_517_663}


@pytest.fixture(scope="module")
def tiny_keras_file(tmp_path_factory):
    # A user's own single-input model; `--model` benchmarks any `.keras` file.
    path = tmp_path_factory.mktemp("bench") / "tiny.keras"
    x = keras.Input((None, None, 3), name="image")
    y = keras.layers.Conv2D(3, 3, padding="same")(keras.layers.Conv2D(4, 3, padding="same")(x))
    keras.Model(x, y).save(path)
    return str(path)


# The runner's result files written before `count_flops` counted the polyphase upsampling.
PREDATE_POLYPHASE = {
    f"cpu_{name}.json"
    for name in (
        "default_forward",
        "default_forward_bf16",
        "forward_allocator",
        "small",
        "train_default",
        "train_jax_conv_default",
        "train_jax_conv_small",
        "train_small",
    )
}


def test_user_keras_file_forward_and_train(tiny_keras_file):
    lines = []
    rows = [
        benchmark.benchmark_one(
            tiny_keras_file, "16x12", mode, "eager", "float32", warmup=1, iters=2, log=lines.append
        )
        for mode in ("forward", "train")
    ]
    for row, mode in zip(rows, ("forward", "train")):
        assert row["ok"], row.get("error")
        assert row["backend"] == BACKEND and row["model"] == "tiny.keras" and row["mode"] == mode
        assert len(row["times_s"]) == 2 and row["median_s"] > 0
        assert row["images_per_s"] == pytest.approx(1 / row["median_s"])
        assert row["hr_mpix_per_s"] == pytest.approx(16 * 12 / row["median_s"] / 1e6)
    # A training step is counted as three forward passes.
    assert rows[1]["gflops_per_step"] == pytest.approx(3 * rows[0]["gflops_per_step"])
    assert len(lines) == 2 and "tiny.keras" in lines[0] and "GFLOP/s" in lines[0]


def test_input_shapes_of_user_models(tiny_keras_file):
    model = keras.saving.load_model(tiny_keras_file, compile=False)
    assert benchmark.input_shapes(model, "tiny.keras", "32x24", batch=2) == {
        "image": (2, 32, 24, 3)
    }
    with pytest.raises(ValueError, match="size='big'"):
        benchmark.input_shapes(model, "tiny.keras", "big")
    fusion = HSSDCT(**TINY)  # the LR input is `scale` times smaller than the given HR size
    shapes = benchmark.input_shapes(fusion, "my_hssdct.keras", "32x24", batch=2)
    assert shapes == {"lr_hsi": (2, 8, 6, 8), "hr_msi": (2, 32, 24, 3)}
    assert benchmark.input_shapes(None, "hssdct", "default") == {
        "lr_hsi": (1, 64, 64, 172),
        "hr_msi": (1, 256, 256, 4),
    }


def test_failures_are_reported_not_raised():
    row = benchmark.benchmark_one("nonexistent", "small", "forward", "eager", "float32", log=str)
    assert row["ok"] is False and "`model` must be one of" in row["error"]
    assert "hssdct" in row["error"] and "msst_net" in row["error"]
    table = benchmark.markdown_table([row])
    assert "failed: ValueError" in table


def test_speedups_and_table():
    def row(backend, median, mode="forward", size="small"):
        return dict(
            backend=backend,
            model="hssdct",
            size=size,
            mode=mode,
            compile="eager",
            dtype="float32",
            ok=True,
            median_s=median,
            spread_s=0.01,
            images_per_s=1 / median,
            hr_mpix_per_s=1.0,
        )

    rows = [
        row("official-torch", 2.0),
        row("jax", 0.5),
        row("jax", 0.5, mode="train"),
        row("torch", 1.0, size="default"),
    ]
    benchmark.add_speedups(rows)
    assert rows[0]["vs_official"] == 1.0 and rows[1]["vs_official"] == 4.0
    assert "vs_official" not in rows[2] and "vs_official" not in rows[3]
    table = benchmark.markdown_table(rows).splitlines()
    assert table[0].endswith("× official |") and table[3].endswith("| 4.00 |")
    assert len(table) == 6 and all(line.count("|") == table[0].count("|") for line in table)


def test_runner_rejects_bad_official_argument(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_run", RUNNER)
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    assert runner.parse(["--official", f"hssdct={tmp_path}"]).official == {"hssdct": str(tmp_path)}
    for arg, message in (
        ("resnet=/tmp", "MODEL=DIR"),
        (f"hssdct={tmp_path / 'missing'}", "is not a directory"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            runner.parse(["--official", arg])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        runner.parse(["--exclude", "jax/eager/small/train/extra"])
    assert exit_info.value.code == 2 and "BACKEND/COMPILE/SIZE" in capsys.readouterr().err


def test_exclude_patterns():
    patterns = ["torch/jit/default", "jax/eager/*/train"]
    assert benchmark._excluded(patterns, "torch", "jit", "default", "forward")
    assert not benchmark._excluded(patterns, "torch", "jit", "small", "forward")
    assert benchmark._excluded(patterns, "jax", "eager", "small", "train")
    assert not benchmark._excluded(patterns, "jax", "eager", "small", "forward")
    assert not benchmark._excluded(patterns, "jax", "jit", "small", "train")
    assert benchmark._excluded(["*"], "tensorflow", "eager", "small", "forward")


def test_models_and_sizes_come_from_the_registry():
    for name in ("hssdct", "msst_net"):
        assert benchmark.model_sizes(name) == get_model_spec(name).benchmark_sizes
    with pytest.raises(ValueError, match="`model` must be one of"):
        benchmark.model_sizes("resnet")


def test_committed_results_stay_valid():
    # Every committed row's model, size and FLOPs are what the registry builds today. The
    # throughput runner's files are `cpu_*.json` (baselines_* and fuse_* are other scripts').
    rows = {}
    files = sorted((ROOT / "benchmarks" / "results").glob("cpu_*.json"))
    assert len(files) >= 3
    for path in files:
        for row in json.loads(path.read_text())["results"]:
            if row.get("ok") and row["model"] in PARAMS:
                row = dict(row, predates_polyphase=path.name in PREDATE_POLYPHASE)
                rows.setdefault((row["model"], row["size"]), []).append(row)
    assert {m for m, _ in rows} == set(PARAMS)
    with keras.StatelessScope(initialize_variables=False):
        for name in PARAMS:
            model = benchmark.build_model(name)
            assert model.count_params() == PARAMS[name]
            for (m, size), group in rows.items():
                if m != name:
                    continue
                shapes = benchmark.input_shapes(model, name, size)
                flops = count_flops(model, shapes).total
                for row in group:
                    assert row["batch"] == 1
                    step = 3 * flops if row["mode"] == "train" else flops
                    # Rows that predate the polyphase bicubic upsampling, whose matmuls
                    # `count_flops` now counts (`ops.resize.upsample_matmul_flops`), count
                    # today's less those, under 0.1 % of a model; later rows count them.
                    up = _upsample_matmul_flops(model, shapes)
                    up = 3 * up if row["mode"] == "train" else up
                    assert 0 < up < 1e-3 * step
                    if not row["predates_polyphase"]:
                        up = 0
                    assert row["gflops_per_step"] == pytest.approx((step - up) / 1e9, rel=1e-12)
                    out = model.compute_output_shape(shapes)
                    pixels = out[1] * out[2]
                    assert row["hr_mpix_per_s"] == pytest.approx(pixels / row["median_s"] / 1e6)


def _upsample_matmul_flops(model, shapes):
    # the zoo models' one bicubic upsampling of the LR-HSI to the MSI grid
    lr, hr = shapes["lr_hsi"], shapes["hr_msi"]
    return upsample_matmul_flops(lr, (lr[0], hr[1], hr[2], lr[3]), "bicubic")


def test_compile_modes_and_the_fit_default():
    from keras_hsifusion.utils.runtime import resolve_jit_compile, resolve_run_eagerly

    jit, eager, name = benchmark.compile_flags("default")
    assert (jit, eager) == (resolve_jit_compile("auto"), resolve_run_eagerly("auto"))
    assert name == {"jax": "jit", "torch": "eager", "tensorflow": name}[BACKEND]
    assert benchmark.compile_flags("graph") == (False, False, "graph")
    assert benchmark.compile_flags("jit") == (True, False, "jit")
    with pytest.raises(ValueError, match="compile_mode.*'xla'"):
        benchmark.compile_flags("xla")


def test_training_steps_use_the_official_loss_and_optimizer():
    from keras_hsifusion.losses import HSSDCTJointLoss

    loss, opt = benchmark.training_step_setup("hssdct")
    assert isinstance(loss, HSSDCTJointLoss) and type(opt).__name__ == "Adam"
    assert float(opt.learning_rate) == pytest.approx(5.5e-5) and opt.epsilon == 1e-8
    loss, opt = benchmark.training_step_setup("msst_net")
    assert type(opt).__name__ == "AdamW" and opt.weight_decay == pytest.approx(2e-5)
    assert float(opt.learning_rate) == pytest.approx(1e-3) and opt.beta_2 == 0.999
    value = keras.ops.convert_to_numpy(loss(np.zeros((1, 2)), np.full((1, 2), 0.5)))
    assert np.mean(value) == pytest.approx(0.5)  # L1
    loss, opt = benchmark.training_step_setup("my_model.keras")
    value = keras.ops.convert_to_numpy(loss(np.zeros((1, 2)), np.ones((1, 2))))
    assert type(opt).__name__ == "Adam" and np.mean(value) == 1


def test_speedups_match_mode_and_allocator_and_machine_peak():
    def row(backend, median, mode="train", allocator="tuned"):
        return dict(
            backend=backend,
            model="hssdct",
            size="small",
            mode=mode,
            ok=True,
            median_s=median,
            allocator=allocator,
            achieved_gflops=10.0 / median,
        )

    rows = [
        row("official-torch", 6.0),
        row("official-torch", 9.0, allocator="default"),
        row("torch", 3.0),
        row("torch", 4.5, allocator="default"),
        row("jax", 2.0, mode="forward"),
    ]
    benchmark.add_speedups(rows)
    assert [r.get("vs_official") for r in rows] == [1.0, 1.0, 2.0, 2.0, None]
    benchmark.add_machine_peak(rows, 20.0)
    assert rows[2]["fraction_of_machine_peak"] == pytest.approx(10.0 / 3.0 / 20.0)
    assert all("fraction_of_machine_peak" in r for r in rows)


def test_kernel_peaks_name_each_kernel_of_the_backend():
    from keras_hsifusion.profiling import native

    peaks = native.kernel_peaks(n=128, repeats=2)
    expected = {
        "tensorflow": {"tensorflow tf.function", "tensorflow tf.function(jit_compile)"},
        "jax": {"jax jax.jit"},
        "torch": {"torch torch.matmul"},
    }[BACKEND]
    assert set(peaks) == expected and all(v > 0 for v in peaks.values())


def test_workers_get_the_allocator_environment(tmp_path):
    # `run_backends` starts `script --worker --worker-out OUT ...`; a None value removes a
    # variable from the worker's environment (the "default" allocator rows).
    script = tmp_path / "worker.py"
    script.write_text(
        "import json, os, sys\n"
        "out = sys.argv[sys.argv.index('--worker-out') + 1]\n"
        "env = {k: os.environ.get(k) for k in ('MALLOC_MMAP_THRESHOLD_', 'KERAS_BACKEND')}\n"
        "json.dump({'meta': env, 'results': []}, open(out, 'w'))\n"
    )
    from keras_hsifusion.utils.runtime import malloc_env

    tuned = benchmark.run_backends(["jax"], [], str(script), malloc_env(), log=str)
    assert tuned["meta"]["jax"] == {
        "MALLOC_MMAP_THRESHOLD_": malloc_env()["MALLOC_MMAP_THRESHOLD_"],
        "KERAS_BACKEND": "jax",
    }
    plain = benchmark.run_backends(["torch"], [], str(script), dict.fromkeys(malloc_env()), log=str)
    assert plain["meta"]["torch"] == {"MALLOC_MMAP_THRESHOLD_": None, "KERAS_BACKEND": "torch"}


def test_official_training_step_updates_the_weights():
    # The harness's step on a stand-in network (the official code is never shipped): the
    # MSST-Net step is torch's L1 + AdamW(1e-3, wd 2e-5), its result the loss as a float.
    import torch

    from tools.official_harness import official_training_step

    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 2, 1)
    x, y = (torch.rand(1, 3, 4, 4),), torch.rand(1, 2, 4, 4)
    before = net.weight.detach().clone()
    step = official_training_step("msst_net", None, net, x, y)
    expected = float(torch.nn.functional.l1_loss(net(*x), y).detach())
    assert step() == pytest.approx(expected, rel=1e-6)
    assert net.training and not torch.equal(net.weight, before)
    # AdamW's first step moves every weight by about lr (1e-3) against its gradient.
    assert float((net.weight - before).abs().max()) == pytest.approx(1e-3, rel=0.05)
