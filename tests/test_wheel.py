"""Installed, not only checked out: the wheel built from this tree, installed in a fresh venv,
runs `khf train <shipped recipe>`, `khf bench` and `khf demo` from a folder outside the
repository (issue 23 item 4).

The venv sees the current environment's packages (keras, torch, tensorly, ...) through a
`.pth` line, not its `.pth` files, so this repository's editable install stays out of it and
`keras_hsifusion` comes from the wheel. The commands run on PyTorch whatever the backend of
this process, hence one run. About 60 s on a 2-core machine: the training of one epoch and
the benchmark + demo run side by side.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig

import pytest
from harness import ROOT

pytestmark = pytest.mark.backend_independent

RECIPE = "hssdct_tiny_indianpines_s2_x4"


def _run(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, (cmd, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def _build_wheel(tmp):
    # A copy of what the wheel is built from: the build writes build/ and *.egg-info next to
    # its sources, which must not land in the shared working tree.
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "keras_hsifusion", src / "keras_hsifusion", ignore=ignore)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", str(src), "-w", tmp])
    (wheel,) = tmp.glob("keras_hsifusion-*.whl")
    return wheel


def _make_venv(tmp, wheel):
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv])
    python = venv / "bin" / "python"
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    paths = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (pathlib.Path(site.stdout.strip()) / "khf_parent_env.pth").write_text("\n".join(paths) + "\n")
    # pip comes from the parent environment; --ignore-installed leaves its packages alone
    install = ["-m", "pip", "--disable-pip-version-check", "-q", "install", "--no-deps"]
    _run([python, *install, "--no-index", "--ignore-installed", wheel])
    return venv


def test_the_wheel_trains_benchmarks_and_demos_outside_the_repository(tmp_path):
    wheel = _build_wheel(tmp_path)
    venv = _make_venv(tmp_path, wheel)
    khf = str(venv / "bin" / "khf")
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_BACKEND")}
    env.update(KERAS_BACKEND="torch", OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    kwargs = {"cwd": work, "env": env}

    code = "import keras_hsifusion as k; print(k.__file__)"
    where = _run([venv / "bin" / "python", "-c", code], **kwargs)
    package = pathlib.Path(where.stdout.strip()).parent
    assert package.is_relative_to(venv) and not package.is_relative_to(ROOT), package
    assert (package / "recipes" / f"{RECIPE}.py").is_file()
    cards = json.loads(_run([khf, "presets", "--json"], **kwargs).stdout)
    shipped = {f.parent.name for f in package.glob("applications/*/presets/*/model.keras")}
    assert cards and set(cards) == shipped  # the presets' weights are in the wheel

    # the training (one epoch of the tiny recipe, by name) beside the rest: two cores
    train = subprocess.Popen(
        [khf, "train", RECIPE, "--epochs", "1", "--out", "run", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )
    try:
        bench_help = _run([khf, "bench", "--help"], **kwargs).stdout
        assert "usage: khf bench" in bench_help and "--models" in bench_help
        bench = [khf, "bench", "--backends", "torch", "--model", "hssdct", "--sizes", "16x16"]
        bench += ["--modes", "forward", "--compiles", "eager", "--warmup", "0", "--iters", "1"]
        _run([*bench, "--machine-peak", "100", "--out", "bench/tiny"], **kwargs)
        demo_help = _run([khf, "demo", "--help"], **kwargs).stdout
        assert "usage: khf demo" in demo_help and "--train" in demo_help
        demo = _run([khf, "demo", "--train", "--steps", "1", "--epochs", "1"], **kwargs).stdout
        out, err = train.communicate(timeout=300)
    finally:
        train.kill()
    assert train.returncode == 0, (out[-3000:], err[-3000:])

    results = json.loads((work / "run" / "results.json").read_text())
    assert results["name"] == RECIPE and results["epochs"] == 1 and results["backend"] == "torch"
    assert json.loads(out)["test"]["psnr"] == results["test"]["psnr"]
    assert (work / "run" / "best.keras").is_file()
    rows = json.loads((work / "bench" / "tiny.json").read_text())
    assert rows["command"].startswith("khf bench --backends torch")
    (row,) = rows["results"]
    assert row["ok"] and (row["model"], row["size"], row["backend"]) == ("hssdct", "16x16", "torch")
    assert (work / "bench" / "tiny.md").is_file()
    assert "Validation strip after training: PSNR" in demo
    assert not (work / "keras_hsifusion").exists()
