"""Benchmarks of `keras_hsifusion.fuse`: tiled vs one-pass quality, and whole-scene speed/memory.

Two sub-commands, both resumable row by row (a row already in the JSON file is skipped, so
an interrupted run continues where it stopped, and big rows can be run later on their own):

`quality`: on the held-out Indian Pines test region (144 x 48 HR pixels, the preset
protocol) and on the whole 144 x 144 protocol scene, each shipped preset (and the classical
`poly_detail_injection` the presets refine) in one pass and with several tile/overlap
settings: max abs difference and PSNR between tiled and one-pass outputs, and PSNR/SAM/ERGAS
of both against the reference. Writes `benchmarks/results/fuse_quality.{json,md}`.

`speed`: synthetic-but-realistic scenes (the protocol's Indian Pines LR-HSI and HR-MSI,
mirror-tiled to 512^2 ... 4096^2 HR pixels, 200 bands) fused by a method, one subprocess per
row, recording output megapixels/s and the peak RSS of that process (`ru_maxrss`); the
output goes to RAM or to an on-disk target (`--target h5py|memmap`). Once per run (a
subprocess of the same backend and thread settings) it measures the machine's float32 peak
(the fastest matmul: numpy's BLAS or the backend's kernels) and its copy bandwidth
(`profiling.benchmark.machine_limits`), and gives every row its bound: the larger of its
FLOPs at that peak and its least memory traffic (inputs read once, output written once) at
that bandwidth, and the achieved fraction `bound / seconds`. Writes
`benchmarks/results/fuse_speed.{json,md}`.

Examples:
    python benchmarks/fuse_bench.py quality --backend torch
    python benchmarks/fuse_bench.py speed --backend torch --method poly_detail_injection \\
        --sizes 512 1024 2048 --target memory
    python benchmarks/fuse_bench.py speed --backend jax --method poly_detail_injection \\
        --sizes 4096 --target h5py --tile 512
    python benchmarks/fuse_bench.py speed --backend torch --method hssdct_indianpines_s2_x4 \\
        --sizes 512
"""

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Tile settings of the quality table: (tile, overlap) in HR pixels; None is one pass.
# Settings with a tile not smaller than the scene are one pass and are not repeated.
QUALITY_SETTINGS = {
    "poly_detail_injection": [
        (32, 16),
        (64, 16),
        (64, 32),
        (128, 32),
        (192, 64),
        (256, 64),
        (256, 128),
        (384, 128),
    ],
    "hssdct_indianpines_s2_x4": [(64, 32), (96, 32), (128, 32), (128, 64), (192, 64), (256, 64)],
    "msst_net_indianpines_s2_x4": [
        (32, 8),
        (32, 16),
        (64, 16),
        (64, 32),
        (96, 32),
        (128, 32),
        (192, 64),
        (256, 64),
    ],
}


def _load(path):
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    return {"rows": []}


def _save(path, data, table):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)
    md = os.path.splitext(path)[0] + ".md"
    with open(md + ".tmp", "w", encoding="utf-8") as f:
        f.write(table(data))
    os.replace(md + ".tmp", md)


def _machine():
    import keras

    return {
        "machine": f"{os.cpu_count()}-core {platform.machine()}, {platform.system()}",
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


# ---------------------------------------------------------------------------------------
# quality


def _scenes():
    """`{name: (lr, msi, reference)}`: the test region and the whole protocol scene."""
    import numpy as np

    from keras_hsifusion import data as khf_data
    from keras_hsifusion.evaluation.protocol import DEFAULT_DATA, build_data

    d = build_data(dict(DEFAULT_DATA))
    test = (d["test_inputs"]["lr_hsi"][0], d["test_inputs"]["hr_msi"][0], d["test_target"][0])
    cube, wavelengths = khf_data.indian_pines()
    crop = DEFAULT_DATA["crop"]
    cube = np.ascontiguousarray(cube[:crop, :crop])
    srf = khf_data.spectral_response(DEFAULT_DATA["sensor"], wavelengths)
    lr, msi = khf_data.degrade(cube, DEFAULT_DATA["scale"], srf, seed=0)
    scenes = {"test_region_144x48": test, "scene_144x144": (lr, msi, cube)}
    # Larger scenes: the crop mirrored to 288^2 and 576^2 (then degraded as a whole).
    big = cube
    for size in (288, 576):
        big = np.concatenate([big, big[::-1]], axis=0)
        big = np.ascontiguousarray(np.concatenate([big, big[:, ::-1]], axis=1))
        big_lr, big_msi = khf_data.degrade(big, DEFAULT_DATA["scale"], srf, seed=0)
        scenes[f"mirror_{size}x{size}"] = (big_lr, big_msi, big)
    return scenes


# The 576^2 scene only for the classical method (the presets refine it, and a one-pass
# MSST-Net at 576^2 would hold 82944-token attention maps).
SCENES_OF = {"poly_detail_injection": None}


def _metrics(ref, est, scale):
    import numpy as np

    from keras_hsifusion.evaluation.protocol import region_metrics

    values = region_metrics(ref[None], np.clip(est, 0.0, 1.0)[None], scale)
    return {k: round(float(v), 4) for k, v in values.items() if k in ("psnr", "sam", "ergas")}


def run_quality(args):
    import keras
    import numpy as np

    import keras_hsifusion as khf

    backend = keras.backend.backend()
    path = args.output or os.path.join(RESULTS, "fuse_quality.json")
    data = _load(path)
    data["command"] = "python benchmarks/fuse_bench.py quality " + " ".join(sys.argv[2:])
    data.update(_machine())
    done = {(r["backend"], r["method"], r["scene"], r["tile"], r["overlap"]) for r in data["rows"]}
    scenes = _scenes()
    for method in args.methods:
        # A model without its card: the protocol data is already in [0, 1] (as the card's
        # metrics); a classical method by name.
        fuser = method
        if method in khf.list_presets():
            fuser = khf.from_preset(method)
            fuser.preset_card = None  # no normalisation: the data are in [0, 1] already
        for scene, (lr, msi, ref) in scenes.items():
            if (scene == "mirror_576x576" and method not in SCENES_OF) or (
                args.scenes and scene not in args.scenes
            ):
                continue
            one_pass = None
            settings = QUALITY_SETTINGS[method]
            if args.settings:
                settings = [tuple(int(v) for v in x.split("/")) for x in args.settings]
            for setting in [None] + settings:
                tile, overlap = setting or (None, None)
                key = (backend, method, scene, tile, overlap)
                if setting is not None and (key in done or tile >= max(msi.shape[:2])):
                    continue
                kw = {"tile": tile, "overlap": overlap}
                if setting is None:  # one pass: a tile covering the scene
                    kw = {"tile": -(-max(msi.shape[:2]) // 32) * 32, "overlap": 0}
                start = time.perf_counter()
                fused = khf.fuse(lr, msi, fuser, **kw)
                seconds = time.perf_counter() - start
                if setting is None:
                    one_pass = fused
                    if key in done:
                        continue
                diff = np.abs(fused.astype(np.float64) - one_pass)
                mse = float(np.mean(diff**2))
                peak = float(np.max(one_pass))
                psnr = None if mse == 0 else round(10 * np.log10(peak**2 / mse), 2)
                row = {
                    "backend": backend,
                    "method": method,
                    "scene": scene,
                    "hr_size": list(msi.shape[:2]),
                    "tile": tile,
                    "overlap": overlap,
                    "seconds": round(seconds, 2),
                    "max_abs_diff": float(diff.max()),
                    "psnr_vs_one_pass": psnr,
                    "metrics": _metrics(ref, fused, 4),
                }
                data["rows"].append(row)
                _save(path, data, quality_table)
                print(json.dumps(row), flush=True)


def quality_table(data):
    lines = [
        "# `fuse`: tiled vs one-pass output of the shipped presets",
        "",
        f"Command: `{data.get('command')}`; {data.get('machine')}, keras {data.get('keras')}.",
        "Tile/overlap in HR pixels (one pass: a single tile over the scene). `max |diff|` and",
        "`PSNR vs one pass` compare the tiled output with the one-pass output (data in [0, 1],",
        "peak = max of the one-pass output); PSNR/SAM/ERGAS are against the reference (output",
        "clipped to [0, 1], as the preset cards). Seconds are wall time on a shared 2-core CPU.",
        "",
        "| backend | method | scene | tile | overlap | max abs diff | PSNR vs one pass (dB) "
        "| PSNR | SAM | ERGAS | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        m = r["metrics"]
        tile = "one pass" if r["tile"] is None else r["tile"]
        overlap = "" if r["tile"] is None else r["overlap"]
        lines.append(
            f"| {r['backend']} | {r['method']} | {r['scene']} | {tile} | {overlap} | "
            f"{r['max_abs_diff']:.2e} | {r['psnr_vs_one_pass'] or 'identical'} | {m['psnr']:.2f} "
            f"| {m['sam']:.3f} | {m['ergas']:.4f} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def run_seams(args):
    """Mean |row-to-row step| at tile cuts vs elsewhere, tiled and one pass (JSON lines)."""
    import numpy as np

    import keras_hsifusion as khf
    from keras_hsifusion.inference.tiling import plan_tiles

    lr, msi, _ = _scenes()[args.scene]
    one = khf.fuse(lr, msi, args.method)
    for tile, overlap in ((64, 16), (128, 32), (256, 64)):
        fused = khf.fuse(lr, msi, args.method, tile=tile, overlap=overlap)
        plan = plan_tiles(msi.shape[:2], 4, tile, overlap, 4)
        cuts = sorted({x for a, b in plan.rows for x in (a, b) if 0 < x < msi.shape[0]})
        at = np.array(cuts) - 1

        def step(x):
            return np.abs(np.diff(x.astype(np.float64), axis=0)).mean(axis=(1, 2))

        st, so = step(fused), step(one)
        row = {
            "tile": tile,
            "overlap": overlap,
            "cuts": len(cuts),
            "tiled_step_at_cuts": float(st[at].mean()),
            "one_pass_step_at_cuts": float(so[at].mean()),
            "tiled_step_elsewhere": float(np.delete(st, at).mean()),
            "one_pass_step_elsewhere": float(np.delete(so, at).mean()),
        }
        print(json.dumps(row), flush=True)


# ---------------------------------------------------------------------------------------
# speed


def synthetic_scene(size, scale=4):
    """LR-HSI `(size/scale)^2 x 200` and HR-MSI `size^2 x 4` float32, mirror-tiled from the
    protocol's Indian Pines pair (real spectra and texture, not noise)."""
    import numpy as np

    from keras_hsifusion import data as khf_data

    cube, wavelengths = khf_data.indian_pines()
    cube = np.ascontiguousarray(cube[:144, :144])
    srf = khf_data.spectral_response("sentinel2a-10m", wavelengths)
    lr, msi = khf_data.degrade(cube, scale, srf, seed=0)

    def mirror(x, n):
        reps = -(-n // x.shape[0])
        rows = np.concatenate([x if k % 2 == 0 else x[::-1] for k in range(reps)], axis=0)
        reps = -(-n // x.shape[1])
        out = np.concatenate([rows if k % 2 == 0 else rows[:, ::-1] for k in range(reps)], 1)
        return np.ascontiguousarray(out[:n, :n], dtype=np.float32)

    return mirror(lr, size // scale), mirror(msi, size)


def _speed_row(args):
    """One row, in this (fresh) process: prints one JSON line."""
    import resource

    import numpy as np

    import keras_hsifusion as khf

    lr, msi = synthetic_scene(args.size)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    method = args.method
    if method in khf.list_presets():
        method = khf.from_preset(method)  # loaded before the clock
    out, tmpdir, handle = None, None, None
    shape = (msi.shape[0], msi.shape[1], lr.shape[-1])
    if args.target != "memory":
        tmpdir = tempfile.mkdtemp(dir=args.scratch)
        if args.target == "memmap":
            out = np.lib.format.open_memmap(
                os.path.join(tmpdir, "out.npy"), "w+", np.float32, shape
            )
        else:
            import h5py

            handle = h5py.File(os.path.join(tmpdir, "out.h5"), "w")
            out = handle.create_dataset("fused", shape, np.float32, chunks=(64, 64, shape[2]))
    kw = {}
    if args.tile:
        kw = {"tile": args.tile, "overlap": args.overlap}
    import importlib

    fuse_module = importlib.import_module("keras_hsifusion.inference.fuse")
    from keras_hsifusion.inference.methods import resolve_method
    from keras_hsifusion.profiling.benchmark import fuse_work

    m = resolve_method(method)
    plan = fuse_module._plan(  # the plan `fuse` makes with these arguments
        m,
        msi.shape[:2],
        lr.shape[-1],
        4,
        kw.get("tile"),
        kw.get("overlap"),
        in_memory=args.target == "memory",
    )
    flops, traffic = fuse_work(
        args.method, lr.shape, msi.shape, plan, m.model if m.kind == "model" else None
    )
    times = []
    for _ in range(args.repeat):  # the first call is cold (see `speed_table`)
        result = None
        start = time.perf_counter()
        result = khf.fuse(lr, msi, method, out=out, **kw)
        if handle is not None:
            handle.flush()
        elif args.target == "memmap":
            result.flush()
        times.append(time.perf_counter() - start)
    seconds = times[0]
    check = float(np.asarray(result[: min(64, shape[0]), : min(64, shape[1])]).mean())
    if handle is not None:
        handle.close()
    if tmpdir:
        import shutil

        shutil.rmtree(tmpdir)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        "ROW "
        + json.dumps(
            {
                "seconds": round(seconds, 2),
                "warm_seconds": round(min(times[1:]), 2) if len(times) > 1 else None,
                "mpix_per_s": round(shape[0] * shape[1] / 1e6 / seconds, 4),
                "peak_rss_gib": round(peak, 3),
                "rss_before_fuse_gib": round(base, 3),
                "output_gib": round(shape[0] * shape[1] * shape[2] * 4 / 2**30, 3),
                "check_mean": round(check, 5),
                "tiles": len(plan),
                "gflop": None if flops is None else round(flops / 1e9, 2),
                "traffic_gb": round(traffic / 1e9, 3),
                "load_average_1min": round(os.getloadavg()[0], 1),
            }
        ),
        flush=True,
    )


def thread_env(backend, threads):
    """The environment of a row's (and the limits') process: `threads` compute threads for
    every backend (torch's OpenMP, TensorFlow's intra-op pool, XLA's CPU runtime), so the
    backends and the measured peak compare under the same setting."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    env.update(OMP_NUM_THREADS=str(threads), TF_NUM_INTRAOP_THREADS=str(threads))
    if threads < (os.cpu_count() or 1):
        extra = "--xla_cpu_multi_thread_eigen=false"  # XLA: one thread or one per core
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {extra}".strip()
    return env


def _machine_limits(backend, threads):
    """The machine's limits for a row of `backend`: its own process's bandwidth, and as the
    float32 peak the fastest kernel of any installed backend (each measured in a subprocess
    with the rows' threads: torch's process alone has only numpy's and torch's sgemm, at
    about half the rate of TensorFlow's and XLA's oneDNN/Eigen kernels on this CPU)."""
    own = _limits(backend, threads)
    peaks = {backend: own}
    for other in ("tensorflow", "torch", "jax"):
        if other != backend and importlib.util.find_spec(other):
            try:
                peaks[other] = _limits(other, threads)
            except RuntimeError:
                continue
    best = max(peaks, key=lambda b: peaks[b]["peak_gflops"])
    kernels = {f"{b}: {k}": v for b, lim in peaks.items() for k, v in lim["kernels"].items()}
    return {
        "peak_gflops": peaks[best]["peak_gflops"],
        "peak_kernel": f"{best}: {peaks[best]['peak_kernel']}",
        "bandwidth_gbs": own["bandwidth_gbs"],
        "kernels": kernels,
    }


def _limits(backend, threads):
    """`machine_limits` measured in a subprocess of `backend` (same environment as rows)."""
    cmd = [sys.executable, os.path.abspath(__file__), "_limits"]
    env = thread_env(backend, threads)
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("LIMITS ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"measuring the machine failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def add_bound(row, limits):
    """The row's bound (s) and the achieved fraction of it, from the run's `limits`."""
    from keras_hsifusion.profiling.benchmark import bound_seconds

    flops = None if row.get("gflop") is None else row["gflop"] * 1e9
    bound = bound_seconds(flops, row["traffic_gb"] * 1e9, limits)
    row["limits"] = {k: limits[k] for k in ("peak_gflops", "peak_kernel", "bandwidth_gbs")}
    row["bound_s"] = round(bound, 3)
    row["bound_by"] = (
        "compute"
        if flops
        and flops / limits["peak_gflops"] > row["traffic_gb"] * 1e9 / limits["bandwidth_gbs"]
        else "memory"
    )
    row["fraction_of_bound"] = round(bound / (row.get("warm_seconds") or row["seconds"]), 4)
    return row


def run_speed(args):
    path = args.output or os.path.join(RESULTS, "fuse_speed.json")
    data = _load(path)
    data["command_example"] = "python benchmarks/fuse_bench.py speed " + " ".join(sys.argv[2:])
    limits = None
    for size in args.sizes:
        key = dict(
            backend=args.backend,
            method=args.method,
            size=size,
            target=args.target,
            tile=args.tile,
            overlap=args.overlap if args.tile else None,
            threads=args.threads,
        )
        if any(all(r.get(k) == v for k, v in key.items()) for r in data["rows"]):
            print("skip (done):", key, flush=True)
            continue
        cmd = [sys.executable, os.path.abspath(__file__), "_row", "--size", str(size)]
        cmd += ["--method", args.method, "--target", args.target, "--overlap", str(args.overlap)]
        cmd += ["--scratch", args.scratch] + (["--tile", str(args.tile)] if args.tile else [])
        cmd += ["--repeat", str(args.repeat)]
        env = thread_env(args.backend, args.threads)
        proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
        lines = [x for x in proc.stdout.splitlines() if x.startswith("ROW ")]
        if proc.returncode or not lines:
            print(f"row {key} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
            continue
        row = {**key, **json.loads(lines[-1][4:])}
        if limits is None:  # once per run, after the first row's process has ended
            limits = _machine_limits(args.backend, args.threads)
            print("machine limits:", json.dumps(limits), flush=True)
        add_bound(row, limits)
        row["command"] = " ".join(
            ["KERAS_BACKEND=" + args.backend, "python benchmarks/fuse_bench.py speed"]
            + ["--method", args.method, "--sizes", str(size), "--target", args.target]
            + ["--threads", str(args.threads), "--repeat", str(args.repeat)]
            + (["--tile", str(args.tile), "--overlap", str(args.overlap)] if args.tile else [])
        )
        data.update(_machine())
        data["rows"].append(row)
        _save(path, data, speed_table)
        print(json.dumps(row), flush=True)


def speed_table(data):
    lines = [
        "# `fuse`: whole-scene speed and peak memory",
        "",
        f"{data.get('machine')}, keras {data.get('keras')}. Scenes: the Indian Pines protocol",
        "pair (LR-HSI x4, Sentinel-2A MSI) mirror-tiled to the size (HR pixels), 200 bands.",
        "Peak RSS of the whole process (`ru_maxrss`, includes the framework, the inputs and",
        "the model); one process per row. Tile `default` is the method's default (classical",
        "methods: one pass when it fits in memory). Shared 2-core CPU: times are rough; `load",
        "avg` is the 1-minute load average at the end of the row (other jobs on the 2 cores).",
        "`bound`: the larger of the row's FLOPs (GFLOP column) at the machine's float32 peak",
        "and its least memory traffic (inputs read once, output written once) at the copy",
        "bandwidth, both measured once per run (`peak` GFLOP/s, `bw` GB/s); `of bound` is",
        "bound / s (1 = at the machine's limit; of the warm time where there is one).",
        "`threads`: compute threads of the row's process and of the peak's measurement",
        "(`--threads`: torch, TensorFlow and XLA alike). `s` is the first `fuse` call of the",
        "process (cold: JAX compiles each tile shape, and every page of the output and of the",
        "working memory is faulted in for the first time: on this virtual machine a fresh",
        "3.4 GB array filled at 1.1, 16 and 5.3 GB/s in three processes, depending on what",
        "ran before); `warm s` the same call again",
        "(`--repeat`, rows from session 11 on).",
        *([data["peak_note"]] if data.get("peak_note") else []),
        "",
        "| backend | method | HR size | target | tile | overlap | s | warm s | output MP/s "
        "| peak RSS (GiB) | output (GiB) | GFLOP | peak / bw | bound (s) | of bound "
        "| threads | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        limits = r.get("limits")
        machine = f"{limits['peak_gflops']} / {limits['bandwidth_gbs']}" if limits else ""
        lines.append(
            f"| {r['backend']} | {r['method']} | {r['size']}^2 | {r['target']} | "
            f"{r['tile'] or 'default'} | {r['overlap'] if r['tile'] else ''} | {r['seconds']} | "
            f"{r.get('warm_seconds') or ''} | "
            f"{r['mpix_per_s']} | {r['peak_rss_gib']} | {r['output_gib']} | "
            f"{r.get('gflop') if r.get('gflop') is not None else ''} | {machine} | "
            f"{r.get('bound_s', '')} ({r.get('bound_by', '')}) | "
            f"{r.get('fraction_of_bound', '')} | {r.get('threads', '')} | "
            f"{r.get('load_average_1min', '')} |"
        )
    lines += ["", "Commands:", ""] + [f"- `{r['command']}`" for r in data["rows"]]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality", help="tiled vs one-pass on Indian Pines")
    q.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "torch"))
    q.add_argument("--methods", nargs="+", default=list(QUALITY_SETTINGS))
    q.add_argument("--scenes", nargs="+", help="only these scenes (default: all)")
    q.add_argument("--settings", nargs="+", help="TILE/OVERLAP pairs instead of the defaults")
    q.add_argument("--output")
    m = sub.add_parser("seams", help="row steps at tile cuts vs one pass")
    m.add_argument("--method", default="poly_detail_injection")
    m.add_argument("--scene", default="mirror_288x288")
    s = sub.add_parser("speed", help="whole-scene speed and peak RSS")
    s.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "torch"))
    s.add_argument("--method", default="poly_detail_injection")
    s.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    s.add_argument("--target", choices=("memory", "h5py", "memmap"), default="memory")
    s.add_argument("--tile", type=int)
    s.add_argument("--overlap", type=int, default=64)
    s.add_argument("--scratch", default=tempfile.gettempdir())
    s.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="compute threads of every backend (default: one per core)",
    )
    s.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="fuse calls per row: the first is cold, the best of the others warm (default 2)",
    )
    s.add_argument("--output")
    sub.add_parser("_limits")
    r = sub.add_parser("_row")
    r.add_argument("--size", type=int, required=True)
    r.add_argument("--method", required=True)
    r.add_argument("--target", default="memory")
    r.add_argument("--tile", type=int)
    r.add_argument("--overlap", type=int, default=64)
    r.add_argument("--scratch", default=tempfile.gettempdir())
    r.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "quality":
        os.environ["KERAS_BACKEND"] = args.backend
        sys.path.insert(0, ROOT)
        run_quality(args)
    elif args.command == "seams":
        sys.path.insert(0, ROOT)
        run_seams(args)
    elif args.command == "speed":
        run_speed(args)
    elif args.command == "_limits":
        sys.path.insert(0, ROOT)
        from keras_hsifusion.profiling.benchmark import machine_limits

        print("LIMITS " + json.dumps(machine_limits()), flush=True)
    else:
        sys.path.insert(0, ROOT)
        _speed_row(args)


if __name__ == "__main__":
    main()
