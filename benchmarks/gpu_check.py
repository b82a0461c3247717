"""GPU check: float32 agreement with the CPU, speed, peak memory and a mixed-bfloat16 `fit`.

One command for a machine with one GPU, one subprocess per installed backend (Keras fixes
its backend at import), each within `--time-budget` seconds (default 210: two backends in
under 8 minutes; items left when it is spent are recorded as skipped, and a worker still
running 20 s after it is stopped, keeping the rows it wrote):

1. `check`: every zoo model at its tiny test config (tests/harness.py), fixed weights and
   inputs: the forward pass and the gradient of a mean squared error w.r.t. every trainable
   weight on the device against the same on the CPU (`keras.device("cpu:0")`, in the same
   process). Passes when max|a - b| <= 1e-4 * max|b|, for the output and for each weight's
   gradient (scale: that gradient's max, at least 1e-3 of the model's largest gradient).
   Run with TF32 off (full float32); on an accelerator the backend's default precision is
   measured too (TF32 where the backend enables it), as information.
2. `forward`, `train_step`: each model at its official default size (`--size default`), in
   the mode `khf train` uses on the backend (jit on JAX, eager on torch, graph on TF), the
   training step with the official loss and optimiser: first call (compilation), median of
   `--iters` synchronised calls, analytic GFLOP/s, peak memory.
3. `fuse`: `khf.fuse` of a 2048^2 HR x 200-band random scene with each shipped preset,
   default tiles, output in RAM (after one untimed call on a scene of one tile).
4. `fit_bf16`: a few `fit` steps of each default-size model built with
   `dtype="mixed_bfloat16"`: every step's loss finite, per-step seconds.

Peak memory: the device allocator's peak on a GPU (torch: reset per item; JAX: its peak
since the process started), the process peak RSS on a CPU; the rows say which.
`--size tiny` runs everything on the tiny configs, small inputs and a 64^2 scene, in about a
minute per backend on a 2-core CPU (JAX: longer, it compiles every program):
tests/profiling/test_gpu_check.py runs it in `make test`, so the script cannot rot.
Writes `<out>_<backend>.json` (updated after every row) and one `<out>.md`. Exit status 1
when a check failed, an item raised or a worker died; skipped items do not fail.

On the lent GPU machine (torch and JAX, no TensorFlow, no registry; keras from
../shared/gpu-wheels, copied into the ignored folder `gpu-wheels/` of the working tree and
carried with it), from the repository root:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site gpu-wheels/*.whl && \\
        PYTHONPATH=/tmp/site:$PWD python3 benchmarks/gpu_check.py --out $OUT/gpu

On a CPU (what the test runs):

    python benchmarks/gpu_check.py --size tiny --device cpu --backends torch --out /tmp/gpu
"""

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("tensorflow", "torch", "jax")
TOLERANCE = 1e-4
# Gradients smaller than this fraction of the model's largest one are compared against it.
GRAD_FLOOR = 1e-3
# Seconds a worker may run past its budget (an item that started in time) before it is
# stopped.
GRACE_S = 20

# The tiny configs of tests/harness.py (HSSDCT_TINY, MSST_NET_TINY; the test checks they
# agree) and the LR-HSI size of their inputs: x4, so the tiny `fuse` scene (64^2, one
# pass) has the shape of the forward rows and reuses their compiled program.
TINY = {
    "hssdct": (dict(hsi_bands=8, msi_bands=3, nf=32, gc=16), (16, 16)),
    "msst_net": (
        dict(
            hsi_bands=4,
            msi_bands=3,
            scale=4,
            n_feats=4,
            hsi_embed_dim=4,
            msi_embed_dim=8,
            hsi_heads=2,
            msi_heads=2,
            patch_size=4,
            hsi_res_blocks=1,
            msi_res_blocks=1,
            hsi_num_layers=1,
            msi_num_layers=1,
            reference_size=(2, 3),
        ),
        (16, 16),
    ),
}
# HR side of the `fuse` scene and of its untimed first call (one default tile: the shape of
# every tile, compiled once), tiles (None: the model's defaults) and `fit` steps.
SIZES = {
    "tiny": dict(scene=64, warm_scene=64, tile=None, overlap=None, fit_steps=2),
    "default": dict(scene=2048, warm_scene=256, tile=None, overlap=None, fit_steps=4),
}
SCENE_BANDS = 200


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--backends",
        nargs="+",
        choices=BACKENDS,
        help="default: every one of tensorflow, torch, jax that is installed",
    )
    p.add_argument("--size", choices=sorted(SIZES), default="default")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "gpu"),
        default="auto",
        help="auto: the accelerator when the backend sees one, else the CPU; cpu: hide every "
        "accelerator; gpu: fail when the backend sees none",
    )
    p.add_argument("--time-budget", type=float, default=210.0, metavar="SECONDS")
    p.add_argument("--iters", type=int, default=5, help="timed calls per forward/train row")
    p.add_argument("--models", nargs="+", default=sorted(TINY), choices=sorted(TINY))
    p.add_argument("--out", default="benchmarks/results/gpu")
    p.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.backends is None:
        args.backends = [b for b in BACKENDS if importlib.util.find_spec(b) is not None]
    if args.time_budget <= 0:
        p.error(f"--time-budget must be positive. Received: {args.time_budget}")
    return args


# ------------------------------------------------------------------------------------------
# The parent: one worker per backend, then the Markdown table.


def plan(models):
    """The `(item, model)` pairs a worker runs, in order: most wanted first, since the time
    budget may end the list; in `tiny`, `fuse` reuses the program that `forward` compiled,
    before `train_step` recompiles the model."""
    order = ("check", "forward", "fuse", "train_step", "fit_bf16")
    return [(item, m) for item in order for m in models]


def worker_env(backend, device):
    env = dict(os.environ, KERAS_BACKEND=backend)
    if device == "cpu":
        env.update(CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu", KERAS_TORCH_DEVICE="cpu")
    return env


def run_worker_process(backend, argv, args):
    """Runs this script as the worker of `backend`; returns its report (rows so far)."""
    path = f"{args.out}_{backend}.json"
    if os.path.exists(path):
        os.remove(path)
    cmd = [sys.executable, "-u", os.path.abspath(__file__), *argv, "--worker", backend]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=worker_env(backend, args.device))
    try:
        code = proc.wait(timeout=args.time_budget + GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = "killed"
    report = load_json(path) or {"meta": {"backend": backend}, "rows": []}
    report["worker_wall_s"] = time.monotonic() - start
    if code != 0:
        running = report.pop("running", None)
        what = f" during {running['item']} {running['model']}" if running else ""
        error = (
            f"worker stopped at the hard deadline ({args.time_budget:.0f} + {GRACE_S} s){what}"
            if code == "killed"
            else f"worker exited with status {code}{what}"
        )
        device = report["meta"].get("device", "–")
        base = {"backend": backend, "device": device}
        report["rows"].append({**base, "item": "worker", "model": "", "status": "error"})
        report["rows"][-1]["error"] = error
        done = {(r["item"], r["model"]) for r in report["rows"]}
        for item, model in plan(args.models):
            if (item, model) not in done and running != {"item": item, "model": model}:
                row = {**base, "item": item, "model": model, "status": "skipped"}
                report["rows"].append({**row, "reason": "the worker stopped"})
        write_json(path, report)
    return report


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv)
    if args.worker:
        return run_worker(args)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    reports = []
    for backend in args.backends:
        print(f"=== {backend}", flush=True)
        reports.append(run_worker_process(backend, argv, args))
    command = " ".join(["python", "benchmarks/gpu_check.py", *argv])
    with open(args.out + ".md", "w", encoding="utf-8") as f:
        f.write(markdown(reports, command))
    print(markdown_table([r for report in reports for r in report["rows"]]))
    print(f"wrote {args.out}.md and {', '.join(f'{args.out}_{b}.json' for b in args.backends)}")
    bad = [r for report in reports for r in report["rows"] if r["status"] in ("fail", "error")]
    return 1 if bad or not reports else 0


def load_json(path):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def _gib(n):
    return f"{n / 2**30:.2f}" if n else "–"


def _result(r):
    if r["status"] == "skipped":
        return f"skipped: {r['reason']}"
    if r["status"] == "error":
        return f"error: {r['error'][:120]}"
    if r["item"] == "check":
        text = (
            f"{r['status']}: output {r['forward_rel_error']:.1e}, gradients "
            f"{r['gradient_rel_error']:.1e} (`{r['worst_weight']}`)"
        )
        if "default_precision" in r:
            d = r["default_precision"]
            text += (
                f"; at the backend's default precision: output {d['forward_rel_error']:.1e}, "
                f"gradients {d['gradient_rel_error']:.1e}"
            )
        return text
    if r["item"] == "fit_bf16":
        losses = ", ".join(f"{v:.4g}" for v in r["losses"])
        return f"{r['status']}: losses {losses}"
    if r["item"] == "fuse":
        return f"{r['status']}: {r['hr_mpix_per_s']:.3g} HR MP/s, tile {r['tile']}/{r['overlap']}"
    return f"{r['status']}: {r['achieved_gflops']:.3g} GFLOP/s, {r['images_per_s']:.3g} img/s"


def markdown_table(rows):
    lines = [
        "| backend | device | item | model | sizes | dtype / precision | result | s | "
        "first call s | peak memory GiB (what) |",
        "|---|---|---|---|---|---|---|---:|---:|---|",
    ]
    for r in rows:
        seconds = r.get("seconds")
        first = r.get("first_call_s")
        mem = r.get("peak_memory_bytes")
        mem = f"{_gib(mem)} ({r['peak_memory_kind']})" if mem else "–"
        if r.get("peak_rss_bytes") and r.get("peak_memory_kind") != "process peak RSS":
            mem += f"; host {_gib(r['peak_rss_bytes'])} (process peak RSS)"
        cells = [
            r["backend"],
            r.get("device", "–"),
            r["item"] + (f" ({r['compile']})" if r.get("compile") else ""),
            r["model"],
            r.get("sizes", "–"),
            r.get("dtype", "–"),
            _result(r),
            f"{seconds:.4g}" if seconds is not None else "–",
            f"{first:.3g}" if first is not None else "–",
            mem,
        ]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def markdown(reports, command):
    out = ["# GPU check", "", f"Command: `{command}`", ""]
    for report in reports:
        m = report["meta"]
        if "framework" in m:
            out.append(
                f"- {m['backend']}: {m['framework']}, keras {m['keras']}, "
                f"keras_hsifusion {m['keras_hsifusion']}, numpy {m['numpy']}, python "
                f"{m['python']}; device {m['device']}; float32 defaults: {m['float32']}; "
                f"size {m['size']}, time budget {m['time_budget_s']:.0f} s, worker wall time "
                f"{report.get('worker_wall_s', 0):.0f} s"
            )
        else:
            out.append(f"- {m['backend']}: no environment recorded (the worker failed early)")
    out += [
        "",
        "`s`: median of the timed calls (forward, training step), the one timed call "
        "(`fuse`) or the median step after the first (`fit`); `first call`: the first, "
        "compiling call (`fuse`: a call on a scene of one tile, which loads the preset and "
        "compiles the tile's program). Checks: max|device - CPU| / max|CPU| of the output "
        f"and of the worst weight's gradient, tolerance {TOLERANCE:g}.",
        "",
        markdown_table([r for report in reports for r in report["rows"]]),
        "",
    ]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------
# The worker: one backend, in this process.


def run_worker(args):
    start = time.monotonic()
    deadline = start + args.time_budget
    sys.path.insert(0, ROOT)
    import keras

    from keras_hsifusion.profiling import native
    from keras_hsifusion.utils import runtime

    path = f"{args.out}_{args.worker}.json"
    try:  # JAX only, as `khf` does: a rerun on the same machine skips XLA compilation
        cache = runtime.enable_compilation_cache()
    except OSError as e:  # an unwritable cache folder only costs compile time
        cache = f"not enabled ({e})"
    report = {"meta": {**environment(args), "jax_compilation_cache": cache}, "rows": []}
    write_json(path, report)
    device = report["meta"]["device"]
    print(f"[{args.worker}] {report['meta']['framework']}, keras {keras.__version__}, {device}")
    if args.device == "gpu" and not native.on_accelerator():
        row = {"status": "error", "error": f"no accelerator visible to {args.worker}"}
        add_row(report, path, {"backend": args.worker, "item": "device", "model": "", **row})
        return 1

    items = plan(args.models)
    runners = {
        "check": check,
        "forward": timed_step,
        "train_step": timed_step,
        "fuse": fuse_scene,
        "fit_bf16": fit_bf16,
    }
    for item, model in items:
        row = {"backend": args.worker, "device": device, "item": item, "model": model}
        if time.monotonic() > deadline:
            row.update(status="skipped", reason=f"time budget of {args.time_budget:.0f} s spent")
        else:
            report["running"] = {"item": item, "model": model}
            write_json(path, report)
            t0 = time.monotonic()
            try:
                keras.utils.clear_session(free_memory=True)
                native.reset_peak_memory()
                row.update(runners[item](item, model, args))
            except Exception as e:  # noqa: BLE001 - one failing item must not stop the rest
                row.update(status="error", error=f"{type(e).__name__}: {str(e)[:300]}")
            row["item_wall_s"] = time.monotonic() - t0
            report.pop("running")
        report["elapsed_s"] = time.monotonic() - start
        add_row(report, path, row)
    return 0


def add_row(report, path, row):
    report["rows"].append(row)
    write_json(path, report)
    wall = f" ({row['item_wall_s']:.1f} s)" if "item_wall_s" in row else ""
    print(f"[{row['backend']}] {row['item']} {row['model']}: {_result(row)}{wall}", flush=True)


def environment(args):
    import keras
    import numpy as np

    import keras_hsifusion as khf
    from keras_hsifusion.profiling import native

    return {
        "backend": args.worker,
        "framework": native.framework_version(),
        "keras": keras.__version__,
        "keras_hsifusion": khf.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": native.device_description(),
        "accelerator": native.on_accelerator(),
        "float32": float32_defaults(),
        "size": args.size,
        "time_budget_s": args.time_budget,
        "machine": f"{platform.platform()}, {os.cpu_count()} logical CPUs",
    }


def float32_defaults():
    """The backend's float32 matmul/convolution precision settings (TF32 or not)."""
    import keras

    name = keras.backend.backend()
    if name == "torch":
        import torch

        try:
            return (
                f"torch matmul precision {torch.get_float32_matmul_precision()!r}, "
                f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}, cuda {torch.version.cuda}"
            )
        except Exception as e:  # noqa: BLE001 - a description only
            return f"torch settings unreadable ({type(e).__name__}), cuda {torch.version.cuda}"
    if name == "jax":
        import jax

        return f"jax_default_matmul_precision={jax.config.jax_default_matmul_precision!r}"
    import tensorflow as tf

    return f"tensor_float_32_execution={tf.config.experimental.tensor_float_32_execution_enabled()}"


@contextlib.contextmanager
def full_float32():
    """Turns TF32 off for matmuls and convolutions (the backend's own settings, restored)."""
    import keras

    name = keras.backend.backend()
    if name == "torch":
        import torch

        previous = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
        torch.set_float32_matmul_precision("highest")
        torch.backends.cudnn.allow_tf32 = False
        try:
            yield
        finally:
            torch.set_float32_matmul_precision(previous[0])
            torch.backends.cudnn.allow_tf32 = previous[1]
    elif name == "jax":
        import jax

        with jax.default_matmul_precision("highest"):
            yield
    else:
        import tensorflow as tf

        previous = tf.config.experimental.tensor_float_32_execution_enabled()
        tf.config.experimental.enable_tensor_float_32_execution(False)
        try:
            yield
        finally:
            tf.config.experimental.enable_tensor_float_32_execution(previous)


def _spec(name):
    from keras_hsifusion.applications.registry import get_model_spec

    return get_model_spec(name)


_TINY_MODELS = {}


def tiny_model(name, dtype="float32"):
    """A tiny zoo model (fixed seed) and its inputs. Built once per process: `--size tiny`
    is a test of this script, and on JAX building compiles every weight initialiser."""
    import keras
    import numpy as np

    if (name, dtype) not in _TINY_MODELS:
        config, (h, w) = TINY[name]
        keras.utils.set_random_seed(0)
        model = _spec(name).cls(**config, dtype=dtype)
        rng = np.random.default_rng(0)
        hr = (1, model.scale * h, model.scale * w, config["msi_bands"])
        x = {
            "lr_hsi": rng.random((1, h, w, config["hsi_bands"]), dtype=np.float32),
            "hr_msi": rng.random(hr, dtype=np.float32),
        }
        _TINY_MODELS[name, dtype] = model, x
    return _TINY_MODELS[name, dtype]


def sized_model(name, size, dtype="float32", batch=1):
    """The model and random inputs of `--size`: tiny config, or the official default."""
    import keras
    import numpy as np

    from keras_hsifusion.profiling import benchmark

    if size == "tiny":
        model, x = tiny_model(name, dtype)
        return model, {k: np.repeat(v, batch, axis=0) for k, v in x.items()}
    keras.utils.set_random_seed(0)
    model = benchmark.build_model(name, dtype)
    shapes = benchmark.input_shapes(model, name, "default", batch)
    rng = np.random.default_rng(0)
    return model, {k: rng.random(s, dtype=np.float32) for k, s in shapes.items()}


def compile_mode(args, steps):
    """`(jit_compile, run_eagerly, name)`: what `khf train` uses on this backend for a stage
    of `steps` steps at `--size default` (a long run), or of `steps` steps at `tiny`."""
    import keras

    from keras_hsifusion.utils.runtime import resolve_jit_compile, resolve_run_eagerly

    jit = resolve_jit_compile("auto")
    eager = resolve_run_eagerly("auto", steps if args.size == "tiny" else None)
    graph = keras.backend.backend() == "tensorflow" and not (jit or eager)
    return jit, eager, "jit" if jit else ("graph" if graph else "eager")


def _sizes(x):
    return " + ".join("x".join(str(d) for d in v.shape[1:]) for v in x.values())


_JAX_GRAD_FNS = {}


def forward_and_gradients(model, x, target, cpu=False):
    """`(output, [gradient or None per trainable weight])` as numpy, of
    `mean((model(x) - target)^2)` at inference (no dropout), on the default device or, on
    JAX with `cpu=True`, on the CPU (torch and TF: build the model under
    `keras.device("cpu:0")` instead)."""
    import keras
    import numpy as np

    name = keras.backend.backend()
    weights = model.trainable_weights
    if name == "jax":
        import jax

        if id(model) not in _JAX_GRAD_FNS:

            def loss_fn(trainable, non_trainable, x, t):
                y, _ = model.stateless_call(trainable, non_trainable, x, training=False)
                return jax.numpy.mean(jax.numpy.square(y - t)), y

            _JAX_GRAD_FNS[id(model)] = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
        args = (
            [w.value for w in weights],
            [v.value for v in model.non_trainable_weights],
            x,
            target,
        )
        if cpu:
            args = jax.device_put(args, jax.devices("cpu")[0])
        (_, y), grads = _JAX_GRAD_FNS[id(model)](*args)
    elif name == "torch":
        import torch

        y = model(x, training=False)
        loss = torch.mean(torch.square(y - keras.ops.convert_to_tensor(target)))
        grads = torch.autograd.grad(loss, [w.value for w in weights], allow_unused=True)
    else:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            y = model(x, training=False)
            loss = tf.reduce_mean(tf.square(y - target))
        grads = tape.gradient(loss, weights)

    def numpy(t):
        return None if t is None else np.asarray(keras.ops.convert_to_numpy(t), np.float64)

    return numpy(y), [numpy(g) for g in grads]


def compare(device_result, cpu_result, paths):
    """`(output rel error, worst gradient rel error, its weight)` of device vs CPU."""
    import numpy as np

    (y, grads), (y_ref, grads_ref) = device_result, cpu_result

    def err(a, b, scale):
        diff = float(np.max(np.abs(a - b))) if a.size else 0.0
        return diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))

    forward = err(y, y_ref, float(np.max(np.abs(y_ref))))
    largest = max((float(np.max(np.abs(g))) for g in grads_ref if g is not None), default=0.0)
    worst, worst_path = 0.0, ""
    for path, g, g_ref in zip(paths, grads, grads_ref):
        if g is None or g_ref is None:
            e = 0.0 if g is None and g_ref is None else float("inf")
        else:
            e = err(g, g_ref, max(float(np.max(np.abs(g_ref))), GRAD_FLOOR * largest))
        if e >= worst:
            worst, worst_path = e, path
    return forward, worst, worst_path


def check(item, name, args):
    import keras
    import numpy as np

    from keras_hsifusion.profiling import native

    model, x = tiny_model(name)
    paths = [w.path for w in model.trainable_weights]
    out_shape = tuple(model.compute_output_shape({k: v.shape for k, v in x.items()}))
    target = np.random.default_rng(1).random(out_shape, dtype=np.float32)
    with keras.device("cpu:0"), full_float32():
        if keras.backend.backend() == "jax":  # the same model, its arrays put on the CPU
            reference = forward_and_gradients(model, x, target, cpu=True)
        else:
            cpu_model = _spec(name).cls(**TINY[name][0])
            cpu_model.set_weights(model.get_weights())
            reference = forward_and_gradients(cpu_model, x, target)
    with full_float32():
        result = forward_and_gradients(model, x, target)
    forward, grad, worst = compare(result, reference, paths)
    row = {
        "sizes": _sizes(x),
        "dtype": "float32, TF32 off",
        "reference": "cpu:0 in the same process"
        + ("" if native.on_accelerator() else " (the device itself: checks the machinery only)"),
        "tolerance": TOLERANCE,
        "forward_rel_error": forward,
        "gradient_rel_error": grad,
        "worst_weight": worst,
        "weights": len(paths),
        "status": "pass" if max(forward, grad) <= TOLERANCE else "fail",
    }
    if native.on_accelerator():  # the backend's default float32 (TF32 where enabled)
        forward, grad, worst = compare(forward_and_gradients(model, x, target), reference, paths)
        row["default_precision"] = {
            "forward_rel_error": forward,
            "gradient_rel_error": grad,
            "worst_weight": worst,
        }
    return row


def _measured(fn, x, step_flops, iters):
    """First call, median of `iters` further calls and peak memory of `fn` (row fields)."""
    from keras_hsifusion.profiling import benchmark

    row = benchmark.measure(fn, warmup=1, iters=iters, min_seconds=0)
    hr = x["hr_msi"].shape
    row.update(benchmark.rates(row["median_s"], hr[0], hr[1] * hr[2], step_flops))
    row["seconds"] = row.pop("median_s")
    row.pop("ok")
    return row


def timed_step(item, name, args):
    import numpy as np

    from keras_hsifusion.profiling import benchmark
    from keras_hsifusion.profiling.flops import count_flops

    model, x = sized_model(name, args.size)
    shapes = {k: v.shape for k, v in x.items()}
    flops = count_flops(model, shapes).total
    jit, eager, compile_name = compile_mode(args, args.iters + 1)
    if item == "forward":
        model.compile(jit_compile=jit, run_eagerly=eager)
        fn = lambda: model.predict_on_batch(x)  # noqa: E731 - returns numpy: synchronised
        step_flops = flops
    else:
        y = np.random.default_rng(1).random(model.compute_output_shape(shapes), np.float32)
        loss, optimizer = benchmark.training_step_setup(name)
        model.compile(optimizer=optimizer, loss=loss, jit_compile=jit, run_eagerly=eager)
        fn = lambda: model.train_on_batch(x, y)  # noqa: E731 - returns host floats
        step_flops = 3 * flops
    row = _measured(fn, x, step_flops, args.iters)
    row.update(sizes=_sizes(x), dtype="float32", compile=compile_name, status="ok")
    return row


def fuse_scene(item, name, args):
    import resource

    import numpy as np

    import keras_hsifusion as khf
    from keras_hsifusion.profiling import native

    cfg = SIZES[args.size]
    if args.size == "tiny":
        method, _ = tiny_model(name)
        bands, msi_bands, scale = method.hsi_bands, method.msi_bands, method.scale
    else:  # the shipped preset of this model (its card's normalisation included)
        presets = khf.list_presets()
        method = next(p for p in sorted(presets) if p.startswith(name + "_"))
        card = presets[method]
        bands, msi_bands, scale = card["hsi_bands"], card["msi_bands"], card["scale"]
    if args.size == "default" and bands != SCENE_BANDS:
        raise ValueError(f"preset {method!r} takes {bands} bands, not {SCENE_BANDS}")
    rng = np.random.default_rng(0)

    def scene(side):
        lr = rng.random((side // scale, side // scale, bands), dtype=np.float32)
        return lr, rng.random((side, side, msi_bands), dtype=np.float32)

    kw = {"tile": cfg["tile"], "overlap": cfg["overlap"]}
    t0 = time.perf_counter()
    np.asarray(khf.fuse(*scene(cfg["warm_scene"]), method, **kw))  # loads, compiles
    first = time.perf_counter() - t0
    lr, hr = scene(cfg["scene"])
    native.reset_peak_memory()
    t0 = time.perf_counter()
    fused = khf.fuse(lr, hr, method, **kw)
    seconds = time.perf_counter() - t0
    if not np.all(np.isfinite(fused[:: max(1, fused.shape[0] // 64)])):
        raise ValueError("fuse gave NaN/Inf on a finite scene")
    mem, kind = native.peak_memory()
    cls = _spec(name).cls
    return {
        "method": method if isinstance(method, str) else f"tiny {type(method).__name__}",
        "sizes": f"{lr.shape[0]}x{lr.shape[1]}x{bands} + {hr.shape[0]}x{hr.shape[1]}x{msi_bands}",
        "dtype": "float32",
        "tile": cfg["tile"] or cls.fuse_tile,
        "overlap": cfg["overlap"] if cfg["tile"] else cls.fuse_overlap,
        "seconds": seconds,
        "first_call_s": first,
        "first_call_scene": cfg["warm_scene"],
        "hr_mpix_per_s": hr.shape[0] * hr.shape[1] / seconds / 1e6,
        "peak_memory_bytes": mem,
        "peak_memory_kind": kind,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "status": "ok",
    }


def fit_bf16(item, name, args):
    import keras
    import numpy as np

    from keras_hsifusion.profiling import benchmark, native

    steps = SIZES[args.size]["fit_steps"]
    model, x = sized_model(name, args.size, "mixed_bfloat16", batch=steps)
    shapes = {k: v.shape for k, v in x.items()}
    y = np.random.default_rng(1).random(model.compute_output_shape(shapes), np.float32)
    loss, optimizer = benchmark.training_step_setup(name)
    jit, eager, compile_name = compile_mode(args, steps)
    model.compile(optimizer=optimizer, loss=loss, jit_compile=jit, run_eagerly=eager)
    times, losses = [], []

    class StepTimer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            losses.append(float(logs["loss"]))  # a host value: the step has finished
            times.append(time.perf_counter() - self.t0)

    model.fit(x, y, batch_size=1, epochs=1, verbose=0, callbacks=[StepTimer()])
    mem, kind = native.peak_memory()
    finite = len(losses) == steps and all(np.isfinite(losses))
    return {
        "sizes": _sizes(x) + f", {steps} steps of batch 1",
        "dtype": f"mixed_bfloat16 (variables {model.variable_dtype}, compute "
        f"{model.compute_dtype})",
        "compile": compile_name,
        "losses": losses,
        "step_times_s": times,
        "seconds": float(np.median(times[1:])) if len(times) > 1 else None,
        "first_call_s": times[0] if times else None,
        "peak_memory_bytes": mem,
        "peak_memory_kind": kind,
        "status": "pass" if finite else "fail",
    }


if __name__ == "__main__":
    sys.exit(main())
