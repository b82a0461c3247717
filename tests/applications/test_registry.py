"""The zoo registry: generic code (training, FLOPs, benchmarks) finds models only through it.

The proof: a tiny third model, defined and registered only in this file, gets config
validation, `build_model`, `count_flops` and the benchmark runner's `--model` without any
other module knowing it.
"""

import importlib.util
import sys

import keras
import numpy as np
import pytest
from harness import ROOT
from keras import layers

from keras_hsifusion import training
from keras_hsifusion.applications import registry
from keras_hsifusion.applications.fusion_model import FusionModel
from keras_hsifusion.applications.registry import ModelSpec, get_model_spec, model_names
from keras_hsifusion.layers import Interpolate
from keras_hsifusion.ops.resize import upsample_matmul_flops
from keras_hsifusion.profiling import benchmark, count_flops, native

RUNNER = ROOT / "benchmarks" / "run.py"
NAME = "tiny_fusion"
SIZES = {"default": ((8, 8, 5), (16, 16, 3)), "small": ((4, 4, 5), (8, 8, 3))}


def _define_tiny_fusion():
    @keras.saving.register_keras_serializable(package="khf_registry_test")
    class TinyFusion(FusionModel):
        """Bicubic-upsampled LR-HSI + HR-MSI -> two convolutions -> a residual."""

        def __init__(self, hsi_bands, msi_bands, scale=2, width=4, dtype=None, **kwargs):
            # === Layers ===
            lr_hsi = keras.Input((None, None, hsi_bands), name="lr_hsi")
            hr_msi = keras.Input((None, None, msi_bands), name="hr_msi")
            up = Interpolate(scale, mode="bicubic", name="up", dtype=dtype)(lr_hsi)
            x = layers.Concatenate(name="concat", dtype=dtype)([up, hr_msi])
            conv = dict(kernel_size=3, padding="same", dtype=dtype)
            x = layers.Conv2D(width, activation="relu", name="conv1", **conv)(x)
            x = layers.Conv2D(hsi_bands, name="conv2", **conv)(x)
            outputs = layers.Add(name="residual", dtype=dtype)([up, x])
            super().__init__(
                inputs={"lr_hsi": lr_hsi, "hr_msi": hr_msi}, outputs=outputs, dtype=dtype, **kwargs
            )
            # === Config ===
            self.hsi_bands = hsi_bands
            self.msi_bands = msi_bands
            self.scale = scale
            self.width = width

        def get_config(self):
            config = super().get_config()
            config.update(
                hsi_bands=self.hsi_bands,
                msi_bands=self.msi_bands,
                scale=self.scale,
                width=self.width,
            )
            return config

    return TinyFusion


@pytest.fixture(scope="module")
def tiny_spec():
    cls = _define_tiny_fusion()
    spec = registry.register_model(
        ModelSpec(name=NAME, cls=cls, benchmark_kwargs={"width": 4}, benchmark_sizes=SIZES)
    )
    yield spec
    # The registry has no public unregister: restore the zoo as it was.
    registry._SPECS.pop(NAME, None)
    keras.saving.get_custom_objects().pop("khf_registry_test>TinyFusion", None)


def _tiny_flops(lr, hr, width=4):
    b, h, w, bands = lr
    hr_pixels = b * hr[1] * hr[2]
    conv1 = 2 * hr_pixels * width * 9 * (bands + hr[3])
    conv2 = 2 * hr_pixels * bands * 9 * width
    up = upsample_matmul_flops(lr, (b, hr[1], hr[2], bands), "bicubic")  # polyphase matmuls
    return conv1 + conv2 + up


def _load_runner():
    spec = importlib.util.spec_from_file_location("bench_run_registry", RUNNER)
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    return runner


def test_zoo_models_are_registered():
    assert {"hssdct", "msst_net"} <= set(model_names())
    for name in ("hssdct", "msst_net"):
        spec = get_model_spec(name)
        assert get_model_spec(spec.cls.__name__) is spec
        assert {"default", "small"} <= set(spec.benchmark_sizes)
    with pytest.raises(ValueError, match="Received: 'resnet'"):
        get_model_spec("resnet")


def test_third_model_config_and_build_model(tiny_spec):
    cls_name = tiny_spec.cls.__name__
    config = training.validate_config({"model": {"class": cls_name, "width": 6}})
    assert config["model"] == {"class": cls_name, "width": 6}
    with pytest.raises(ValueError, match="depth"):
        training.validate_config({"model": {"class": cls_name, "depth": 2}})

    model = training.build_model(config["model"], hsi_bands=5, msi_bands=3, scale=2)
    assert isinstance(model, tiny_spec.cls) and model.width == 6
    x = {
        "lr_hsi": np.random.rand(1, 4, 4, 5).astype("float32"),
        "hr_msi": np.random.rand(1, 8, 8, 3).astype("float32"),
    }
    assert tuple(model.predict(x, verbose=0).shape) == (1, 8, 8, 5)


def test_third_model_count_flops(tiny_spec):
    with keras.StatelessScope(initialize_variables=False):
        model = benchmark.build_model(NAME)
        for lr, hr in SIZES.values():
            report = count_flops(model, {"lr_hsi": (1, *lr), "hr_msi": (1, *hr)})
            assert report.uncounted == []
            assert report.total == _tiny_flops((1, *lr), (1, *hr))
    assert (model.hsi_bands, model.msi_bands, model.scale, model.width) == (5, 3, 2, 4)


def test_third_model_benchmark_runner(tiny_spec, tmp_path, monkeypatch, capsys):
    # The worker measures a compiled matmul peak first (torch.compile: slow); not needed here.
    monkeypatch.setattr(native, "matmul_peak", lambda **kwargs: None)
    runner = _load_runner()
    assert runner.parse(["--models", NAME]).models == [NAME]
    assert NAME in runner.parse([]).models  # every registered model by default
    with pytest.raises(SystemExit):
        runner.parse(["--models", "resnet"])
    with pytest.raises(SystemExit):
        runner.parse(["--model", "resnet"])
    assert NAME in capsys.readouterr().err

    out = tmp_path / "rows.json"
    argv = ["--worker", "--worker-out", str(out), "--model", NAME, "--sizes", "small"]
    argv += ["--modes", "forward", "--compiles", "eager", "--iters", "1"]
    data = runner.main(argv)
    assert out.exists()
    (row,) = data["results"]
    assert row["ok"], row.get("error")
    assert (row["model"], row["size"], row["backend"]) == (NAME, "small", keras.backend.backend())
    lr, hr = SIZES["small"]
    assert row["gflops_per_step"] * 1e9 == pytest.approx(_tiny_flops((1, *lr), (1, *hr)))
    assert row["hr_mpix_per_s"] == pytest.approx(8 * 8 / row["median_s"] / 1e6)


def test_runner_imports_modules_that_register_models(tiny_spec, tmp_path, monkeypatch):
    # `--import` runs a user module (here: one registering a second spec of the tiny model)
    # before `--model` is checked; workers get the same argument.
    module = tmp_path / "khf_registry_test_models.py"
    module.write_text(
        "from keras_hsifusion.applications.registry import ModelSpec, get_model_spec, "
        "register_model\n"
        f"register_model(ModelSpec(name='tiny_imported', cls=get_model_spec({NAME!r}).cls, "
        f"benchmark_sizes={SIZES!r}))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        args = _load_runner().parse(
            ["--import", "khf_registry_test_models", "--model", "tiny_imported"]
        )
        assert args.model == "tiny_imported" and args.imports == ["khf_registry_test_models"]
        assert benchmark.model_sizes("tiny_imported") == SIZES
    finally:
        registry._SPECS.pop("tiny_imported", None)
        sys.modules.pop("khf_registry_test_models", None)
