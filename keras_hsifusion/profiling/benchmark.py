"""Throughput and memory benchmarks of the zoo's models (or a user's `.keras` file).

One process measures one backend (the Keras backend is fixed per process); `run_backends`
starts one subprocess per backend and merges their JSON. Every configuration is: build,
warm up, then timed iterations, each ending in a device sync (`predict_on_batch` and
`train_on_batch` return host values), reported as median and interquartile spread. The
backend-specific parts (sync, peak memory, matmul peak) are in `profiling.native`. Models
and their sizes come from the zoo registry (`keras_hsifusion.applications.registry`).

One cohesive module: the benchmark runner, its rows and the machine bounds (peak matmul rate,
memory bandwidth) that each row is compared with.
"""

import json
import os
import statistics
import subprocess
import sys
import time

import keras
import numpy as np

from keras_hsifusion.applications.registry import get_model_spec, model_names
from keras_hsifusion.profiling import native
from keras_hsifusion.profiling.flops import count_flops
from keras_hsifusion.utils.runtime import set_threads

MODES = ("forward", "train")
# "graph": `run_eagerly=False, jit_compile=False` (a `tf.function` without XLA on TF; the
# same as "eager" on torch, and op-by-op on JAX). "default": what the training runner and
# `khf train` use on the active backend (`utils.runtime.resolve_*`), reported under the
# mode it resolves to with `fit_default: true`.
COMPILES = ("eager", "graph", "jit", "default")
DTYPES = ("float32", "mixed_bfloat16")


def model_sizes(name):
    """`{size name: (lr_hsi shape, hr_msi shape)}` at batch 1 of a registered model."""
    return dict(_spec(name).benchmark_sizes)


def _spec(name):
    try:
        return get_model_spec(name)
    except ValueError:
        raise ValueError(
            f"`model` must be one of {model_names()} or a path to a `.keras` file. "
            f"Received: {name!r}"
        ) from None


def build_model(name, dtype="float32"):
    """A registered model at its `"default"` benchmark size, or a `.keras` file.

    The model is `spec.cls(hsi_bands=C, msi_bands=c, scale=H // h, **spec.benchmark_kwargs)`
    for the default shapes `((h, w, C), (H, W, c))` of its `ModelSpec`.
    """
    if str(name).endswith(".keras"):
        return keras.saving.load_model(name, compile=False)
    spec = _spec(name)
    if "default" not in spec.benchmark_sizes:
        raise ValueError(
            f"The ModelSpec of {spec.name!r} has no 'default' benchmark size. "
            f"Received: benchmark_sizes={spec.benchmark_sizes!r}"
        )
    (h, _, hsi_bands), (hr_h, _, msi_bands) = spec.benchmark_sizes["default"]
    return spec.cls(
        hsi_bands=hsi_bands,
        msi_bands=msi_bands,
        scale=hr_h // h,
        dtype=dtype,
        **spec.benchmark_kwargs,
    )


def input_shapes(model, name, size, batch=1):
    """Input shapes (with batch) of `model` for a named size or 'HxW' of the first input."""
    named = model_sizes(name) if name in model_names() else {}
    if size in named:
        lr, hr = named[size]
        return {"lr_hsi": (batch, *lr), "hr_msi": (batch, *hr)}
    shapes = {}
    for t in model.inputs:
        dims = list(t.shape[1:])
        if None in dims:
            try:
                h, w = (int(v) for v in str(size).lower().split("x"))
            except ValueError:
                raise ValueError(
                    f"Model {name!r} has inputs with unknown sizes; give `size` as 'HxW' "
                    f"(of the largest input). Received: size={size!r}"
                ) from None
            ratio = getattr(model, "scale", 1) if t.name == "lr_hsi" else 1
            dims = [h // ratio if d is None and i == 0 else d for i, d in enumerate(dims)]
            dims = [w // ratio if d is None and i == 1 else d for i, d in enumerate(dims)]
        shapes[t.name] = (batch, *dims)
    return shapes


def compile_flags(compile_mode):
    """`(jit_compile, run_eagerly, resolved mode name)` of a `COMPILES` entry."""
    if compile_mode == "default":
        from keras_hsifusion.utils.runtime import resolve_jit_compile, resolve_run_eagerly

        jit, eager = resolve_jit_compile("auto"), resolve_run_eagerly("auto")
        graph = not (jit or eager) and native.backend() == "tensorflow"
        return jit, eager, "jit" if jit else ("graph" if graph else "eager")
    if compile_mode not in COMPILES:
        raise ValueError(f"`compile_mode` must be one of {COMPILES}. Received: {compile_mode!r}")
    return compile_mode == "jit", compile_mode == "eager", compile_mode


def training_step_setup(name):
    """`(loss, optimizer)` of a registered model's official training step (Adam/MAE else)."""
    from keras_hsifusion.training.builders import build_loss, build_optimizer

    step = None
    if name in model_names():
        step = _spec(name).training_step
    step = step or {"loss": "mae", "optimizer": {"class": "Adam", "learning_rate": 1e-3}}
    return build_loss(step["loss"]), build_optimizer(step["optimizer"])


def allocator_setting():
    """`"tuned"` when this process started with glibc's malloc thresholds raised
    (`keras_hsifusion.utils.runtime.malloc_env`), else `"default"`."""
    return "tuned" if os.environ.get("MALLOC_MMAP_THRESHOLD_") else "default"


def _time(fn, warmup, iters, min_seconds):
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < iters or (time.perf_counter() - start < min_seconds and len(times) < 100):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def measure(fn, warmup, iters, min_seconds):
    """First (compiling) call, warm-up, timed calls and peak memory of `fn`, as row fields."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = _time(fn, max(warmup - 1, 0), iters, min_seconds)
    mem, mem_kind = native.peak_memory()
    return dict(
        ok=True,
        first_call_s=first,
        median_s=statistics.median(times),
        spread_s=_spread(times),
        times_s=times,
        peak_memory_bytes=mem,
        peak_memory_kind=mem_kind,
    )


def rates(median, batch, hr_pixels, step_flops):
    """Throughput row fields of a step of `median` seconds on `batch` images."""
    return dict(
        images_per_s=batch / median,
        hr_mpix_per_s=batch * hr_pixels / median / 1e6,
        gflops_per_step=step_flops / 1e9,
        achieved_gflops=step_flops / median / 1e9,
    )


def _spread(times):
    if len(times) < 4:
        return (max(times) - min(times)) / 2
    q = statistics.quantiles(times, n=4)
    return (q[2] - q[0]) / 2


def benchmark_one(
    model_name,
    size,
    mode,
    compile_mode,
    dtype,
    warmup=1,
    iters=3,
    min_seconds=0,
    batch=1,
    peak_gflops=None,
    log=print,
):
    """Measures one configuration on the active backend and returns a result dict."""
    jit, eager, resolved = compile_flags(compile_mode)
    row = {
        "backend": native.backend(),
        "model": os.path.basename(str(model_name)),
        "size": size,
        "mode": mode,
        "compile": resolved,
        "fit_default": compile_flags("default")[2] == resolved,
        "dtype": dtype,
        "batch": batch,
        "allocator": allocator_setting(),
    }
    try:
        keras.utils.clear_session(free_memory=True)
        native.reset_peak_memory()
        model = build_model(model_name, dtype)
        shapes = input_shapes(model, model_name, size, batch)
        rng = np.random.default_rng(0)
        x = {k: rng.random(s, dtype=np.float32) for k, s in shapes.items()}
        if len(x) == 1:
            x = next(iter(x.values()))
        flops = count_flops(model, shapes).total
        out_shape = model.compute_output_shape(shapes if isinstance(x, dict) else shapes)
        out_shape = tuple(out_shape)
        if mode == "forward":
            model.compile(jit_compile=jit, run_eagerly=eager)
            fn = lambda: model.predict_on_batch(x)  # noqa: E731 - returns numpy: synced
            step_flops = flops
        else:
            y = rng.random(out_shape, dtype=np.float32)
            loss, optimizer = training_step_setup(model_name)
            model.compile(optimizer=optimizer, loss=loss, jit_compile=jit, run_eagerly=eager)
            fn = lambda: model.train_on_batch(x, y)  # noqa: E731
            step_flops = 3 * flops  # forward + backward (2x): the usual convention
        row.update(measure(fn, warmup, iters, min_seconds))
        row.update(rates(row["median_s"], batch, out_shape[1] * out_shape[2], step_flops))
        if peak_gflops:
            row["fraction_of_backend_peak"] = row["achieved_gflops"] / peak_gflops
    except Exception as e:  # noqa: BLE001 - one failing configuration must not stop the run
        row.update(ok=False, error=f"{type(e).__name__}: {str(e).splitlines()[0][:300]}")
    log(progress_line(row))
    return row


def progress_line(row):
    """One log line for a result row (what the runner prints as it goes)."""
    head = f"[{row['backend']:<10}] {row['model']:<9} {row['size']:<8} {row['mode']:<7} "
    head += f"{row['compile']:<5} {row['dtype']:<14}"
    if not row.get("ok"):
        return f"{head} FAILED {row.get('error')}"
    return (
        f"{head} {row['median_s'] * 1e3:9.1f} ms +- {row['spread_s'] * 1e3:7.1f}  "
        f"{row['images_per_s']:7.3f} img/s  {row['achieved_gflops']:7.1f} GFLOP/s  "
        f"peak {row['peak_memory_bytes'] / 2**30:5.2f} GiB"
    )


def run_worker(
    models,
    sizes,
    modes,
    compiles,
    dtypes,
    warmup,
    iters,
    min_seconds,
    batch,
    threads=None,
    log=print,
    exclude=(),
):
    """All configurations on the active backend; returns {"meta": ..., "results": [...]}.

    `exclude` holds "backend/compile/size[/mode]" patterns (`*` matches anything) to skip.
    """
    set_threads(threads)
    peaks = {}
    for dtype in sorted(set(dtypes)):
        mm_dtype = "bfloat16" if "bfloat16" in dtype else "float32"
        try:
            peaks[dtype] = native.matmul_peak(dtype=mm_dtype)
        except Exception:  # noqa: BLE001
            peaks[dtype] = None
    meta = {
        "backend": native.backend(),
        "framework": native.framework_version(),
        "keras": keras.__version__,
        "device": native.device_description(),
        "matmul_peak_gflops": peaks,
    }
    log(f"[{meta['backend']:<10}] {meta['framework']}, {meta['device']}, matmul peak {peaks}")
    results = []
    for model in models:
        for size in sizes:
            for dtype in dtypes:
                for compile_mode in compiles:
                    for mode in modes:
                        if _excluded(exclude, native.backend(), compile_mode, size, mode):
                            continue
                        results.append(
                            benchmark_one(
                                model,
                                size,
                                mode,
                                compile_mode,
                                dtype,
                                warmup,
                                iters,
                                min_seconds,
                                batch,
                                peaks.get(dtype),
                                log,
                            )
                        )
    return {"meta": meta, "results": results}


def _excluded(patterns, backend, compile_mode, size, mode):
    for pattern in patterns:
        parts = (pattern.split("/") + ["*"] * 3)[:4]
        if all(p in ("*", v) for p, v in zip(parts, (backend, compile_mode, size, mode))):
            return True
    return False


def run_backends(backends, worker_argv, script, env=None, log=print):
    """Runs `script --worker ...` once per backend in its own process; merges their JSON.

    `script`: a Python file, or the interpreter arguments that start the worker (e.g.
    `["-m", "keras_hsifusion.profiling.runner"]`). `env`: variables set for the workers; a
    value of None removes the variable.
    """
    merged = {"meta": {}, "results": []}
    for backend in backends:
        out = f"/tmp/khf_bench_{backend}_{os.getpid()}.json"
        child_env = dict(os.environ, **(env or {}), KERAS_BACKEND=backend)
        child_env = {k: v for k, v in child_env.items() if v is not None}
        start = [script] if isinstance(script, (str, os.PathLike)) else list(script)
        cmd = [sys.executable, "-u", *start, "--worker", "--worker-out", out, *worker_argv]
        proc = subprocess.Popen(
            cmd, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for line in proc.stdout:
            if line.startswith("["):
                log(line.rstrip())
        proc.wait()
        if proc.returncode or not os.path.exists(out):
            log(f"[{backend}] worker failed with exit code {proc.returncode}")
            continue
        with open(out) as f:
            data = json.load(f)
        os.remove(out)
        merged["meta"][backend] = data["meta"]
        merged["results"] += data["results"]
    return merged


def add_speedups(results):
    """Adds `vs_official` (official median / this median) to rows that have an official
    float32 timing of the same model, size, mode (forward or training step) and allocator
    setting in `results`."""

    def key(r):
        return r["model"], r["size"], r["mode"], r.get("allocator", "default")

    official = {
        key(r): r["median_s"] for r in results if r["backend"] == "official-torch" and r.get("ok")
    }
    for r in results:
        if r.get("ok") and key(r) in official:
            r["vs_official"] = official[key(r)] / r["median_s"]
    return results


def add_machine_peak(results, peak_gflops):
    """Adds `fraction_of_machine_peak`: achieved GFLOP/s over the machine's float32 matmul
    peak (the best of `native.kernel_peaks` over every backend), the same for every row."""
    for r in results:
        if r.get("ok") and r.get("achieved_gflops") and peak_gflops:
            r["fraction_of_machine_peak"] = r["achieved_gflops"] / peak_gflops
    return results


def markdown_table(results):
    lines = [
        "| backend | model | size | mode | compile | dtype | allocator | median ms | ± ms | "
        "first call s | img/s | HR MP/s | GFLOP/s | % machine peak | peak mem GiB | "
        "× official |",
        "|---|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        compile_mode = r["compile"] + (" (fit default)" if r.get("fit_default") else "")
        cells = [r["backend"], r["model"], r["size"], r["mode"], compile_mode, r["dtype"]]
        cells.append(r.get("allocator", "default"))
        if not r.get("ok"):
            error = r.get("error", "")[:80]
            lines.append("| " + " | ".join(cells) + f" | failed: {error} |||||||||")
            continue
        frac = r.get("fraction_of_machine_peak")
        mem = r.get("peak_memory_bytes")
        cells += [
            f"{r['median_s'] * 1e3:.1f}",
            f"{r['spread_s'] * 1e3:.1f}",
            f"{r['first_call_s']:.1f}" if "first_call_s" in r else "–",
            f"{r['images_per_s']:.3f}",
            f"{r['hr_mpix_per_s']:.3f}",
            f"{r['achieved_gflops']:.1f}" if "achieved_gflops" in r else "–",
            f"{100 * frac:.0f}" if frac else "–",
            f"{mem / 2**30:.2f}" if mem else "–",
            f"{r['vs_official']:.2f}" if "vs_official" in r else "–",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bar_chart(results, path):
    """Writes a PNG bar chart of images/s per configuration; returns False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    ok = [r for r in results if r.get("ok")]
    if not ok:
        return False
    groups = sorted({(r["model"], r["size"], r["mode"]) for r in ok})
    fig, axes = plt.subplots(len(groups), 1, figsize=(9, 2.2 + 0.35 * len(ok)), squeeze=False)
    for ax, (model, size, mode) in zip(axes[:, 0], groups):
        rows = [r for r in ok if (r["model"], r["size"], r["mode"]) == (model, size, mode)]
        labels = [f"{r['backend']} {r['compile']} {r['dtype']}" for r in rows]
        ax.barh(
            labels,
            [r["images_per_s"] for r in rows],
            xerr=[r["spread_s"] / r["median_s"] * r["images_per_s"] for r in rows],
        )
        ax.set_title(f"{model} {size} {mode}: images/s (higher is better)", fontsize=9)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------------------------
# Machine limits and the bound of a `fuse` run.


def memory_bandwidth(mib=512, repeats=5):
    """Bytes/s of a large float32 array copy (numpy, pages touched first): read + write, the
    STREAM "copy" convention (2 x the array's bytes per copy), best of `repeats`."""
    n = mib * 2**20 // 4
    src, dst = np.ones(n, np.float32), np.zeros(n, np.float32)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * n * 4 / best


def machine_limits(matmul_size=2048, mib=512):
    """`{"peak_gflops", "peak_kernel", "bandwidth_gbs", "kernels"}`: the fastest float32
    matmul of this process (numpy's BLAS and the active backend's kernels,
    `native.kernel_peaks`) and the copy bandwidth (`memory_bandwidth`)."""
    a = np.random.default_rng(0).random((matmul_size, matmul_size), dtype=np.float32)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - start)
    kernels = {"numpy sgemm": 2 * matmul_size**3 / best / 1e9}
    kernels.update(native.kernel_peaks(matmul_size, repeats=3))
    kernel = max(kernels, key=kernels.get)
    return {
        "peak_gflops": round(kernels[kernel], 2),
        "peak_kernel": kernel,
        "bandwidth_gbs": round(memory_bandwidth(mib) / 1e9, 2),
        "kernels": {k: round(v, 2) for k, v in kernels.items()},
    }


def global_skip_flops_per_pixel(bands, msi_bands, scale, mode="poly_detail_injection"):
    """Arithmetic of `layers.GlobalSkip` per HR pixel (2 FLOPs per multiply-add): separable
    4-tap bicubic upsampling of the `bands` (4 taps per output on each axis, the first axis at
    LR height), the regression's detail injection (`features x bands`), its sum, and the
    features' own degradation and upsampling; the regression itself is per LR pixel."""
    feats = msi_bands + msi_bands * (msi_bands + 1) // 2 if "poly" in mode else msi_bands
    upsample = 2 * 4 * (1 + 1 / scale)
    flops = bands * upsample
    if mode != "bicubic":
        flops += 2 * feats * bands + bands + feats * (upsample + 1 + 2 * 9 / scale)
        flops += 2 * feats * (feats + bands) / scale**2
    return flops


def fuse_work(method, lr_shape, msi_shape, plan, model=None):
    """`(flops, bytes)`: the arithmetic of a `fuse` run over `plan`'s tiles (a zoo model:
    `count_flops` of every tile; a global-skip method: `global_skip_flops_per_pixel` per
    output pixel) and its least memory traffic (reading the inputs once and writing the
    float32 output once). `flops` is None for other classical methods."""
    bands, msi_bands, scale = lr_shape[-1], msi_shape[-1], plan.scale
    big_h, big_w = msi_shape[:2]
    traffic = 4 * (big_h * big_w * (bands + msi_bands) + lr_shape[0] * lr_shape[1] * bands)
    if model is not None:
        counts = {}
        flops = 0
        for r0, r1 in plan.rows:
            for c0, c1 in plan.cols:
                shape = (r1 - r0, c1 - c0)
                if shape not in counts:
                    counts[shape] = count_flops(
                        model,
                        {
                            "lr_hsi": (1, shape[0] // scale, shape[1] // scale, bands),
                            "hr_msi": (1, shape[0], shape[1], msi_bands),
                        },
                    ).total
                flops += counts[shape]
        return flops, traffic
    if method in ("bicubic", "detail_injection", "poly_detail_injection"):
        pixels = sum((r1 - r0) * (c1 - c0) for r0, r1 in plan.rows for c0, c1 in plan.cols)
        return pixels * global_skip_flops_per_pixel(bands, msi_bands, scale, method), traffic
    return None, traffic


def bound_seconds(flops, traffic, limits):
    """The least time of a run: its FLOPs at the machine's peak or its bytes at the
    measured bandwidth, whichever is longer."""
    compute = flops / (limits["peak_gflops"] * 1e9) if flops else 0.0
    return max(compute, traffic / (limits["bandwidth_gbs"] * 1e9))
