"""How `khf` starts and stops, in real subprocesses: help without Keras, one backend per
command, no backend log lines under `--quiet`, Ctrl-C during the imports and mid-fuse."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from harness import BACKEND, ROOT

from keras_hsifusion.data import raster

FRAMEWORKS = ("keras", "tensorflow", "torch", "jax")
ENV = dict(os.environ, PYTHONPATH=str(ROOT), KHF_MALLOC_TUNING="0")
# Ctrl-C does not depend on the backend: the one that imports fastest
FAST_ENV = dict(ENV, KERAS_BACKEND="jax")


def _imported(stderr):
    """Top-level names of the modules `-X importtime` reports."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "args,expected",
    [
        (["--help"], "usage: khf [-h] [--version] COMMAND"),
        (["fuse", "--help"], "hysime_detail_injection"),
        (["demo", "--quiet", "--help"], "usage: khf demo"),
        (["presets"], "hssdct_indianpines_s2_x4"),
        (["--version"], "keras_hsifusion "),
    ],
)
def test_help_and_presets_import_no_keras_or_backend(args, expected):
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "keras_hsifusion", *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert expected in proc.stdout
    assert "keras_hsifusion" in _imported(proc.stderr)  # the report is there
    assert not set(FRAMEWORKS) & _imported(proc.stderr)


def _pair(folder, lr_shape=(8, 8, 6), msi_shape=(32, 32, 3)):
    rng = np.random.default_rng(0)
    raster.write_raster(folder / "lr.h5", rng.random(lr_shape, dtype=np.float32))
    raster.write_raster(folder / "msi.h5", rng.random(msi_shape, dtype=np.float32))
    return str(folder / "lr.h5"), str(folder / "msi.h5")


WRAPPER = """
import sys
sys.argv = ["khf", *sys.argv[1:]]  # what the console script sees: the package loads lazily
from keras_hsifusion.cli import main
code = main()
print(sorted(m for m in {frameworks!r} if m in sys.modules))
sys.exit(code)
"""


def test_a_command_imports_its_backend_only_and_no_log_lines_when_quiet(tmp_path):
    lr, msi = _pair(tmp_path)
    out = tmp_path / "fused.h5"
    args = ["fuse", lr, msi, "-m", "bicubic", "-o", str(out), "--quiet", "--backend", BACKEND]
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER.format(frameworks=FRAMEWORKS), *args],
        env={k: v for k, v in ENV.items() if k != "KERAS_BACKEND"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == ""  # no backend log lines (TensorFlow's C++ start-up included)
    loaded = eval(proc.stdout.strip().splitlines()[-1])
    # Keras 3.15 imports jax whenever it is installed (docs/architecture.md)
    assert BACKEND in loaded and set(loaded) - {"jax"} == {"keras", BACKEND} - {"jax"}
    assert raster.read_raster(out).shape == (32, 32, 6)


def _interrupt_when(args, ready):
    """Runs `python -X importtime -m keras_hsifusion ARGS`, sends SIGINT once a line of
    stderr satisfies `ready`, returns (exit code, the stderr lines that are not importtime's)."""
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "keras_hsifusion", *args],
        env=FAST_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    try:
        for line in proc.stderr:
            if not line.startswith("import time:"):
                lines.append(line.rstrip("\n"))
            if ready(line):
                proc.send_signal(signal.SIGINT)
                break
        _, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines += [line for line in rest.splitlines() if not line.startswith("import time:")]
    return proc.returncode, lines


@pytest.mark.backend_independent
def test_ctrl_c_during_the_imports_is_one_line_and_exit_130(tmp_path):
    lr, msi = _pair(tmp_path)
    out = tmp_path / "fused.h5"

    def importing_keras(line):  # Keras' submodules finish before `keras` itself
        return line.startswith("import time:") and line.rsplit("|", 1)[1].strip().startswith(
            "keras."
        )

    code, lines = _interrupt_when(
        ["fuse", lr, msi, "-m", "bicubic", "-o", str(out)], importing_keras
    )
    assert code == 130 and lines == ["khf fuse: interrupted"], lines
    assert sorted(os.listdir(tmp_path)) == ["lr.h5", "msi.h5"]


@pytest.mark.backend_independent
def test_ctrl_c_mid_fuse_is_one_line_exit_130_and_leaves_no_file(tmp_path):
    # 64 x 64 tiles with a stride of 8 HR pixels over 384 x 384: hundreds of tiles, seconds
    lr, msi = _pair(tmp_path, (96, 96, 40), (384, 384, 4))
    out = tmp_path / "fused.h5"
    args = ["fuse", lr, msi, "-m", "gsa", "-o", str(out), "--tile", "64", "--overlap", "56"]
    code, lines = _interrupt_when(args, lambda line: line.startswith("fuse: "))
    assert code == 130, lines
    # the progress line (plain: stderr is a pipe), then the message on a line of its own
    assert lines[0].startswith("fuse: ") and "tiles (10%)" in lines[0]
    assert lines[1:] == ["khf fuse: interrupted"]
    assert sorted(os.listdir(tmp_path)) == ["lr.h5", "msi.h5"]
