"""Throughput and memory benchmarks of the zoo's models (or a user's `.keras` file).

One process measures one backend (the Keras backend is fixed per process); `run_backends`
starts one subprocess per backend and merges their JSON. Every configuration is: build,
warm up, then timed iterations, each ending in a device sync (`predict_on_batch` and
`train_on_batch` return host values), reported as median and interquartile spread. The
backend-specific parts (sync, peak memory, matmul peak) are in `profiling.native`.
"""

import json
import os
import statistics
import subprocess
import sys
import time

import keras
import numpy as np

from keras_hsifusion.profiling import native
from keras_hsifusion.profiling.flops import count_flops

# Official default sizes and a small size, per model: (lr_hsi shape, hr_msi shape) at batch 1.
SIZES = {
    "hssdct": {
        "default": ((64, 64, 172), (256, 256, 4)),
        "small": ((16, 16, 172), (64, 64, 4)),
    },
    "msst_net": {
        "default": ((64, 64, 31), (512, 512, 3)),
        "small": ((16, 16, 31), (128, 128, 3)),
    },
}
MODES = ("forward", "train")
COMPILES = ("eager", "jit")
DTYPES = ("float32", "mixed_bfloat16")


def build_model(name, dtype="float32"):
    """The zoo model `name` at its official default configuration, or a `.keras` file."""
    if name == "hssdct":
        from keras_hsifusion.applications.hssdct import HSSDCT

        return HSSDCT(hsi_bands=172, msi_bands=4, dtype=dtype)
    if name == "msst_net":
        from keras_hsifusion.applications.msst_net import MSSTNet

        return MSSTNet(hsi_bands=31, msi_bands=3, scale=8, dtype=dtype)
    if str(name).endswith(".keras"):
        import keras_hsifusion  # noqa: F401 - registers the zoo's classes for loading

        return keras.saving.load_model(name, compile=False)
    raise ValueError(
        f"`model` must be 'hssdct', 'msst_net' or a path to a `.keras` file. Received: {name!r}"
    )


def input_shapes(model, name, size, batch=1):
    """Input shapes (with batch) of `model` for a named size or 'HxW' of the first input."""
    if name in SIZES and size in SIZES[name]:
        lr, hr = SIZES[name][size]
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


def _measure(fn, warmup, iters, min_seconds):
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


def _rates(median, batch, hr_pixels, step_flops):
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
    row = {
        "backend": native.backend(),
        "model": os.path.basename(str(model_name)),
        "size": size,
        "mode": mode,
        "compile": compile_mode,
        "dtype": dtype,
        "batch": batch,
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
        jit = compile_mode == "jit"
        if mode == "forward":
            model.compile(jit_compile=jit, run_eagerly=not jit)
            fn = lambda: model.predict_on_batch(x)  # noqa: E731 - returns numpy: synced
            step_flops = flops
        else:
            y = rng.random(out_shape, dtype=np.float32)
            model.compile(optimizer="adam", loss="mae", jit_compile=jit, run_eagerly=not jit)
            fn = lambda: model.train_on_batch(x, y)  # noqa: E731
            step_flops = 3 * flops  # forward + backward (2x): the usual convention
        row.update(_measure(fn, warmup, iters, min_seconds))
        row.update(_rates(row["median_s"], batch, out_shape[1] * out_shape[2], step_flops))
        if peak_gflops:
            row["fraction_of_matmul_peak"] = row["achieved_gflops"] / peak_gflops
    except Exception as e:  # noqa: BLE001 - one failing configuration must not stop the run
        row.update(ok=False, error=f"{type(e).__name__}: {str(e).splitlines()[0][:300]}")
    log(_progress(row))
    return row


def _progress(row):
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
    native.set_threads(threads)
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
    """Runs `script --worker ...` once per backend in its own process; merges their JSON."""
    merged = {"meta": {}, "results": []}
    for backend in backends:
        out = f"/tmp/khf_bench_{backend}_{os.getpid()}.json"
        child_env = dict(os.environ, **(env or {}), KERAS_BACKEND=backend)
        cmd = [sys.executable, "-u", script, "--worker", "--worker-out", out, *worker_argv]
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


# The released MSST-Net `Net.forward` reads 13 attributes that `Net.__init__` never creates
# (docs/differences.md, MSST-Net 1). For timing, each is aliased to the module it evidently
# means; `conv2` is read twice (spectral scale 2 and the patch-16 scale), both are C->C 3x3
# convolutions of the same cost.
_OFFICIAL_MSST_ALIASES = {
    "norm1": "norm_1",
    "conv1": "conv_1",
    "norm2": "norm_2",
    "conv2": "conv_2",
    "norm3": "norm_3",
    "conv3": "conv_3",
    "patch_embedding": "patch_embedding_16",
    "patch_unembed": "patch_unembed_16",
    "norm4_8": "norm_8",
    "conv2_8": "conv_8",
    "norm4_32": "norm_32",
    "conv2_32": "conv_32",
}


def _install_official_stand_ins():
    """Minimal stand-ins for the timm/ptflops helpers the official code imports, used only
    when those packages are absent (timm pulls a CUDA torch; neither is needed to run)."""
    import importlib.util
    import types

    import torch

    def to_2tuple(x):
        return tuple(x) if isinstance(x, (tuple, list)) else (x, x)

    class DropPath(torch.nn.Identity):  # drop_path=0 everywhere at inference
        def __init__(self, *args, **kwargs):
            super().__init__()

    if importlib.util.find_spec("timm") is None:
        timm = types.ModuleType("timm")
        timm.layers = types.ModuleType("timm.layers")
        timm.models = types.ModuleType("timm.models")
        timm.models.layers = timm.layers
        timm.layers.trunc_normal_ = torch.nn.init.trunc_normal_
        timm.layers.to_2tuple = to_2tuple
        timm.layers.DropPath = DropPath
        sys.modules.update(
            {
                "timm": timm,
                "timm.layers": timm.layers,
                "timm.models": timm.models,
                "timm.models.layers": timm.layers,
            }
        )
    if importlib.util.find_spec("ptflops") is None:
        ptflops = types.ModuleType("ptflops")

        def get_model_complexity_info(*args, **kwargs):
            raise NotImplementedError("ptflops is not installed")

        ptflops.get_model_complexity_info = get_model_complexity_info
        sys.modules["ptflops"] = ptflops


def build_official(kind, path, lr_bands, msi_bands):
    """The official PyTorch network at its default configuration, imported from `path`.

    `kind` is 'hssdct' (a checkout of jemmyleee/HSSDCT: `models/hssdct.py`, `HyDCFN`) or
    'msst_net' (jx-mzc/MSST-Net: `model/net.py`, `Net`, with the attribute aliases above).
    The official code is never shipped with this package; give the directory of a checkout.
    """
    import argparse

    _install_official_stand_ins()
    sys.path.insert(0, os.path.abspath(path))
    if kind == "hssdct":
        from models.hssdct import HyDCFN

        net = HyDCFN(
            argparse.Namespace(
                snr=0,
                network_mode=1,
                bands=lr_bands,
                nf=96,
                gc=32,
                msi_bands=msi_bands,
                DEBUG=False,
            )
        )
    elif kind == "msst_net":
        from model.net import Net

        net = Net(
            argparse.Namespace(
                hsi_channel=lr_bands,
                msi_channel=msi_bands,
                n_feats=64,
                hsi_embed_dim=32,
                msi_embed_dim=256,
                hsi_heads=4,
                msi_heads=4,
                patch_size=16,
                hsi_res_blocks=5,
                msi_res_blocks=5,
                hsi_num_layers=4,
                msi_num_layers=4,
                ratio=8,
                device="cpu",
                hsi_device="cpu",
                msi_device="cpu",
            )
        )
        for alias, name in _OFFICIAL_MSST_ALIASES.items():
            setattr(net, alias, getattr(net, name))
    else:
        raise ValueError(f"`kind` must be 'hssdct' or 'msst_net'. Received: {kind!r}")
    return net.eval()


def official_worker(kind, path, size, iters=3, warmup=1, threads=None, log=print):
    """Times the official PyTorch forward (float32, eager, `no_grad`) at a named size."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    lr, hr = SIZES[kind][size]
    row = {
        "backend": "official-torch",
        "model": kind,
        "size": size,
        "mode": "forward",
        "compile": "eager",
        "dtype": "float32",
        "batch": 1,
    }
    try:
        net = build_official(kind, path, lr[-1], hr[-1])
        x = (torch.rand(1, lr[-1], *lr[:2]), torch.rand(1, hr[-1], *hr[:2]))

        def fn():
            with torch.no_grad():
                net(*x)

        native.reset_peak_memory()
        row.update(_measure(fn, warmup, iters, 0))
        # Our model is built only after the official one was measured (peak memory).
        flops = count_flops(build_model(kind), {"lr_hsi": (1, *lr), "hr_msi": (1, *hr)}).total
        row.update(_rates(row["median_s"], 1, hr[0] * hr[1], flops))
    except Exception as e:  # noqa: BLE001 - reported in the table, the run goes on
        row.update(ok=False, error=f"{type(e).__name__}: {str(e).splitlines()[0][:300]}")
    log(_progress(row))
    return row


def add_speedups(results):
    """Adds `vs_official` (official median / this median) to rows that have an official
    float32 forward timing of the same model and size in `results`."""
    official = {
        (r["model"], r["size"]): r["median_s"]
        for r in results
        if r["backend"] == "official-torch" and r.get("ok")
    }
    for r in results:
        key = (r["model"], r["size"])
        if r.get("ok") and r["mode"] == "forward" and key in official:
            r["vs_official"] = official[key] / r["median_s"]
    return results


def markdown_table(results):
    lines = [
        "| backend | model | size | mode | compile | dtype | median ms | ± ms | first call s | "
        "img/s | HR MP/s | GFLOP/s | % matmul peak | peak mem GiB | × official |",
        "|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cells = [r["backend"], r["model"], r["size"], r["mode"], r["compile"], r["dtype"]]
        if not r.get("ok"):
            error = r.get("error", "")[:80]
            lines.append("| " + " | ".join(cells) + f" | failed: {error} |||||||||")
            continue
        frac = r.get("fraction_of_matmul_peak")
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
