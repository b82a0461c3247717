"""Throughput/memory benchmark runner: one subprocess per backend, JSON + Markdown + PNG.

    python benchmarks/run.py                               # default matrix (small sizes)
    python benchmarks/run.py --sizes small default --modes forward train \\
        --compiles eager jit --dtypes float32 mixed_bfloat16
    python benchmarks/run.py --model my_model.keras --sizes 256x256
    python benchmarks/run.py --import my_models --model my_net  # a model my_models registers
    python benchmarks/run.py --official hssdct=/path/to/HSSDCT msst_net=/path/to/MSST-Net
    python benchmarks/run.py --modes train --compiles default --allocator default tuned \
        --official hssdct=/path/to/HSSDCT     # training steps, both allocator settings

The logic lives in keras_hsifusion.profiling.benchmark; models and sizes come from the zoo
registry (keras_hsifusion.applications.registry); the official-code timing harness is
tools/official_harness.py. See docs/benchmarks.md.
"""

import argparse
import importlib
import importlib.util
import json
import os
import platform
import sys

from keras_hsifusion.applications.registry import model_names
from keras_hsifusion.profiling import benchmark, native
from keras_hsifusion.utils.runtime import malloc_env, set_threads

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def official_harness():
    """`tools.official_harness`, imported from the repository root (it is not in the wheel)."""
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    from tools import official_harness as harness

    return harness


def import_modules(names):
    """Imports user modules (from the current directory or PYTHONPATH), e.g. ones that
    register models with `keras_hsifusion.applications.registry.register_model`."""
    if names and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        importlib.import_module(name)


def parse(argv=None):
    # `--import` first: the modules it names may register models that `--model` accepts.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--import", dest="imports", nargs="+", default=[])
    import_modules(pre.parse_known_args(argv)[0].imports)
    names = model_names()

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backends", nargs="+", default=["tensorflow", "torch", "jax"])
    p.add_argument(
        "--import",
        dest="imports",
        nargs="+",
        default=[],
        metavar="MODULE",
        help="import these modules first (in the runner and in every worker), e.g. a module "
        "that registers its own models with keras_hsifusion.applications.registry",
    )
    p.add_argument("--models", nargs="+", default=names, choices=names)
    p.add_argument("--model", help=f"one model instead of --models: {names} or a .keras file")
    p.add_argument("--sizes", nargs="+", default=["small"], help="small, default, or HxW")
    p.add_argument("--modes", nargs="+", default=["forward", "train"], choices=benchmark.MODES)
    p.add_argument(
        "--compiles",
        nargs="+",
        default=["eager", "jit"],
        choices=benchmark.COMPILES,
        help="eager, graph (tf.function without XLA), jit (XLA / torch.compile), default "
        "(what `khf train` uses on each backend)",
    )
    p.add_argument(
        "--allocator",
        nargs="+",
        default=["default"],
        choices=["default", "tuned"],
        help="glibc malloc settings of every worker, ours and the official code's: default, "
        "or tuned (keras_hsifusion.utils.runtime.tune_malloc); each setting is its own set of rows",
    )
    p.add_argument(
        "--machine-peak",
        type=float,
        default=None,
        metavar="GFLOPS",
        help="float32 peak used for '%% machine peak' (default: measured first, the best "
        "4096^2 matmul of every installed backend's kernels)",
    )
    p.add_argument("--dtypes", nargs="+", default=["float32"], choices=benchmark.DTYPES)
    p.add_argument(
        "--exclude",
        nargs="+",
        default=[],
        metavar="BACKEND/COMPILE/SIZE[/MODE]",
        help="skip these combinations, e.g. torch/jit/default or jax/eager/*/train "
        "(* matches anything)",
    )
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--min-seconds", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--official",
        nargs="+",
        default=[],
        metavar="MODEL=DIR",
        help="time the official PyTorch code of MODEL (hssdct, msst_net) from a checkout in DIR",
    )
    p.add_argument("--out", default="benchmarks/results/latest")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker-out", help=argparse.SUPPRESS)
    p.add_argument("--official-worker", help=argparse.SUPPRESS)
    p.add_argument("--peak-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.model and args.model not in names and not args.model.endswith(".keras"):
        p.error(f"--model takes one of {names} or a path to a .keras file: {args.model!r}")
    official = {}
    kinds = official_harness().OFFICIAL_KINDS if args.official else ()
    for item in args.official:
        kind, _, path = item.partition("=")
        if kind not in kinds or not path:
            p.error(f"--official takes MODEL=DIR with MODEL in {list(kinds)}: {item!r}")
        if not os.path.isdir(path):
            p.error(f"--official {item!r}: {path!r} is not a directory")
        official[kind] = path
    args.official = official
    for pattern in args.exclude:
        if not 1 <= len(pattern.split("/")) <= 4:
            p.error(f"--exclude takes BACKEND/COMPILE/SIZE[/MODE] patterns: {pattern!r}")
    return args


def run_worker(args):
    """What one worker process measures: its backend's rows, or the official code's."""
    if args.peak_worker:
        set_threads(args.threads)
        return {"meta": {"kernel_peaks": native.kernel_peaks()}, "results": []}
    if args.official_worker:
        kind, harness = args.official_worker, official_harness()
        sizes = benchmark.model_sizes(kind)
        rows = [
            harness.official_worker(
                kind, args.official[kind], s, args.iters, args.warmup, args.threads, mode
            )
            for s in args.sizes
            if s in sizes
            for mode in args.modes
        ]
        return {"meta": {}, "results": rows}
    return benchmark.run_worker(
        [args.model] if args.model else args.models,
        args.sizes,
        args.modes,
        args.compiles,
        args.dtypes,
        args.warmup,
        args.iters,
        args.min_seconds,
        args.batch,
        args.threads,
        exclude=args.exclude,
    )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv)
    if args.worker:
        data = run_worker(args)
        with open(args.worker_out, "w") as f:
            json.dump(data, f)
        return data
    forward = [a for a in argv if a != "--worker"]
    merged = {"meta": {}, "results": []}
    kernels = {}
    if args.machine_peak is None:
        for backend in ("tensorflow", "jax", "torch"):
            if importlib.util.find_spec(backend) is None:
                continue
            peak = benchmark.run_backends([backend], [*forward, "--peak-worker"], __file__)
            kernels.update(peak["meta"].get(backend, {}).get("kernel_peaks", {}))
        best = max(kernels, key=kernels.get) if kernels else None
        merged["machine_peak"] = {"gflops": kernels.get(best), "kernel": best, "all": kernels}
    else:
        merged["machine_peak"] = {"gflops": args.machine_peak, "kernel": "given"}
    print(f"machine float32 peak: {merged['machine_peak']}")
    for allocator in args.allocator:
        env = malloc_env() if allocator == "tuned" else dict.fromkeys(malloc_env())
        part = benchmark.run_backends(args.backends, forward, __file__, env)
        for kind in args.official:
            worker = [*forward, "--official-worker", kind]
            part["results"] += benchmark.run_backends(["torch"], worker, __file__, env)["results"]
        merged["meta"].update(part["meta"])
        merged["results"] += part["results"]
    benchmark.add_speedups(merged["results"])
    benchmark.add_machine_peak(merged["results"], merged["machine_peak"]["gflops"])
    merged["command"] = " ".join(["python", "benchmarks/run.py", *argv])
    merged["machine"] = f"{platform.platform()}, {os.cpu_count()} logical CPUs"
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(merged, f, indent=1)
    table = benchmark.markdown_table(merged["results"])
    with open(args.out + ".md", "w") as f:
        f.write(f"Command: `{merged['command']}`\n\nMachine: {merged['machine']}\n\n")
        peak = merged["machine_peak"]
        f.write(f"Machine float32 peak: {peak['gflops']:.0f} GFLOP/s ({peak['kernel']}")
        f.write(f"; every kernel: {peak['all']})\n\n" if peak.get("all") else ")\n\n")
        for backend, meta in merged["meta"].items():
            f.write(
                f"- {backend}: {meta['framework']}, keras {meta['keras']}, "
                f"{meta['device']}, compiled 2048^2 matmul GFLOP/s "
                f"{meta['matmul_peak_gflops']}\n"
            )
        f.write("\n" + table + "\n")
    chart = benchmark.bar_chart(merged["results"], args.out + ".png")
    print(table)
    print(f"wrote {args.out}.json, {args.out}.md" + (f", {args.out}.png" if chart else ""))
    return merged


if __name__ == "__main__":
    main()
