"""benchmarks/gpu_check.py at `--size tiny` on the CPU, so the GPU check cannot rot."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
from harness import BACKEND, HSSDCT_TINY, MSST_NET_TINY, ROOT

from benchmarks import gpu_check  # the script (stdlib only at import; pyproject's pythonpath)
from keras_hsifusion.applications.registry import model_names

SCRIPT = ROOT / "benchmarks" / "gpu_check.py"

# On JAX the script's code is the same for every model; HSSDCT alone would add about 2.5
# minutes of tracing and XLA compilation (forward + gradient, training step, bf16 `fit`) on
# the shared 2-core CPU. HSSDCT on JAX is covered by tests/applications/test_hssdct.py.
MODELS = ["msst_net"] if BACKEND == "jax" else ["hssdct", "msst_net"]
ITEMS = ("check", "forward", "fuse", "train_step", "fit_bf16")


@pytest.mark.backend_independent
def test_tiny_configs_are_the_harness_ones_for_every_zoo_model():
    assert sorted(gpu_check.TINY) == model_names()
    assert gpu_check.TINY["hssdct"][0] == HSSDCT_TINY
    assert gpu_check.TINY["msst_net"][0] == MSST_NET_TINY


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "gpu"
    argv = ["--size", "tiny", "--device", "cpu", "--backends", BACKEND, "--iters", "2"]
    argv += ["--models", *MODELS, "--time-budget", "600", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *argv],
        cwd=ROOT,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        timeout=700,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(f"{out}_{BACKEND}.json") as f:
        report = json.load(f)
    return report, pathlib.Path(f"{out}.md").read_text(), argv


def test_tiny_run_writes_every_row(tiny_run):
    report, _, _ = tiny_run
    meta = report["meta"]
    assert meta["backend"] == BACKEND and meta["device"].startswith("cpu")
    assert not meta["accelerator"] and meta["size"] == "tiny"
    rows = {(r["item"], r["model"]): r for r in report["rows"]}
    assert list(rows) == gpu_check.plan(MODELS) == [(i, m) for i in ITEMS for m in MODELS]
    for (item, _), row in rows.items():
        assert row["status"] in ("pass", "ok"), row
        assert row["backend"] == BACKEND and row["device"] == meta["device"]
        if item != "check":
            assert row["seconds"] > 0 and row["first_call_s"] > 0, row
            assert row["peak_memory_kind"] == "process peak RSS" and row["peak_memory_bytes"] > 0


def test_tiny_checks_pass_within_tolerance(tiny_run):
    report, _, _ = tiny_run
    checks = [r for r in report["rows"] if r["item"] == "check"]
    assert [r["model"] for r in checks] == MODELS
    for r in checks:
        assert r["status"] == "pass" and r["tolerance"] == 1e-4
        # CPU against CPU: the machinery only (a GPU run compares two devices).
        assert r["forward_rel_error"] <= 1e-4 and r["gradient_rel_error"] <= 1e-4
        assert "machinery only" in r["reference"] and r["weights"] > 0
        assert "default_precision" not in r  # measured on an accelerator only


def test_tiny_timings_fuse_and_bf16_fit(tiny_run):
    report, _, _ = tiny_run
    rows = {(r["item"], r["model"]): r for r in report["rows"]}
    for model in MODELS:
        for item in ("forward", "train_step"):
            row = rows[item, model]
            assert row["compile"] == ("jit" if BACKEND == "jax" else "eager")
            assert len(row["times_s"]) == 2 and row["achieved_gflops"] > 0
        fuse = rows["fuse", model]
        assert fuse["sizes"].endswith("+ 64x64x3") and fuse["hr_mpix_per_s"] > 0
        fit = rows["fit_bf16", model]
        assert fit["dtype"].startswith("mixed_bfloat16 (variables float32, compute bfloat16")
        assert len(fit["losses"]) == len(fit["step_times_s"]) == 2
        assert all(0 < v < float("inf") for v in fit["losses"])


def test_markdown_has_the_command_environment_and_rows(tiny_run):
    report, md, argv = tiny_run
    assert f"Command: `python benchmarks/gpu_check.py {' '.join(argv)}`" in md
    assert f"- {BACKEND}: {report['meta']['framework']}, keras " in md
    table = [line for line in md.splitlines() if line.startswith(f"| {BACKEND} |")]
    assert len(table) == len(ITEMS) * len(MODELS)
    assert sum(" | check | " in line and " | pass: output " in line for line in table) == len(
        MODELS
    )


@pytest.mark.backend_independent
def test_a_stopped_worker_leaves_its_rows_and_the_rest_skipped(tmp_path, monkeypatch):
    # What the parent records when a worker outlives its budget: the rows it wrote, the
    # item it was running, and every later item as skipped.
    out = tmp_path / "gpu"
    errors = dict(forward_rel_error=1e-7, gradient_rel_error=2e-6, worst_weight="conv/kernel")
    check_row = {"backend": "torch", "item": "check", "model": "hssdct", "status": "pass", **errors}

    class Stuck:  # a worker that wrote one row, then never finishes
        def __init__(self, *args, **kwargs):
            self.killed = False
            gpu_check.write_json(
                f"{out}_torch.json",
                {
                    "meta": {"backend": "torch", "device": "cuda: test"},
                    "rows": [check_row],
                    "running": {"item": "check", "model": "msst_net"},
                },
            )

        def wait(self, timeout=None):
            if not self.killed:
                raise subprocess.TimeoutExpired("worker", timeout)
            return -9

        def kill(self):
            self.killed = True

    monkeypatch.setattr(gpu_check.subprocess, "Popen", Stuck)
    args = gpu_check.parse(["--backends", "torch", "--time-budget", "1", "--out", str(out)])
    report = gpu_check.run_worker_process("torch", [], args)
    rows = [(r["item"], r["model"], r["status"]) for r in report["rows"]]
    assert rows[:2] == [("check", "hssdct", "pass"), ("worker", "", "error")]
    assert "hard deadline (1 + 20 s) during check msst_net" in report["rows"][1]["error"]
    skipped = [(i, m) for i, m, s in rows[2:] if s == "skipped"]
    assert skipped == gpu_check.plan(["hssdct", "msst_net"])[2:] == [tuple(r[:2]) for r in rows[2:]]
    assert json.loads((tmp_path / "gpu_torch.json").read_text())["rows"] == report["rows"]
    table = gpu_check.markdown([report], "cmd")
    assert "| torch | cuda: test | worker |" in table and "skipped: the worker stopped" in table
    assert "pass: output 1.0e-07, gradients 2.0e-06 (`conv/kernel`)" in table
