"""Throughput/memory benchmark runner: one subprocess per backend, JSON + Markdown + PNG.

    python benchmarks/run.py                               # default matrix (small sizes)
    python benchmarks/run.py --sizes small default --modes forward train \\
        --compiles eager jit --dtypes float32 mixed_bfloat16
    python benchmarks/run.py --model my_model.keras --sizes 256x256
    python benchmarks/run.py --official hssdct=/path/to/HSSDCT msst_net=/path/to/MSST-Net

The logic lives in keras_hsifusion.profiling.benchmark; see docs/benchmarks.md.
"""

import argparse
import json
import os
import platform
import sys

from keras_hsifusion.profiling import benchmark


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backends", nargs="+", default=["tensorflow", "torch", "jax"])
    p.add_argument("--models", nargs="+", default=["hssdct", "msst_net"])
    p.add_argument("--model", help="benchmark a user's .keras file instead of the zoo")
    p.add_argument("--sizes", nargs="+", default=["small"], help="small, default, or HxW")
    p.add_argument("--modes", nargs="+", default=["forward", "train"], choices=benchmark.MODES)
    p.add_argument("--compiles", nargs="+", default=["eager", "jit"], choices=benchmark.COMPILES)
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
    args = p.parse_args(argv)
    official = {}
    for item in args.official:
        kind, _, path = item.partition("=")
        if kind not in benchmark.SIZES or not path:
            p.error(f"--official takes MODEL=DIR with MODEL in {sorted(benchmark.SIZES)}: {item!r}")
        if not os.path.isdir(path):
            p.error(f"--official {item!r}: {path!r} is not a directory")
        official[kind] = path
    args.official = official
    for pattern in args.exclude:
        if not 1 <= len(pattern.split("/")) <= 4:
            p.error(f"--exclude takes BACKEND/COMPILE/SIZE[/MODE] patterns: {pattern!r}")
    return args


def main():
    args = parse()
    models = [args.model] if args.model else args.models
    if args.worker:
        if args.official_worker:
            kind = args.official_worker
            data = {
                "meta": {},
                "results": [
                    benchmark.official_worker(
                        kind, args.official[kind], s, args.iters, args.warmup, args.threads
                    )
                    for s in args.sizes
                    if s in benchmark.SIZES[kind]
                ],
            }
        else:
            data = benchmark.run_worker(
                models,
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
        with open(args.worker_out, "w") as f:
            json.dump(data, f)
        return
    forward = [a for a in sys.argv[1:] if a not in ("--worker",)]
    merged = benchmark.run_backends(args.backends, forward, __file__)
    for kind in args.official:
        extra = benchmark.run_backends(["torch"], [*forward, "--official-worker", kind], __file__)
        merged["results"] += extra["results"]
    benchmark.add_speedups(merged["results"])
    merged["command"] = " ".join(["python", "benchmarks/run.py", *sys.argv[1:]])
    merged["machine"] = f"{platform.platform()}, {os.cpu_count()} logical CPUs"
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(merged, f, indent=1)
    table = benchmark.markdown_table(merged["results"])
    with open(args.out + ".md", "w") as f:
        f.write(f"Command: `{merged['command']}`\n\nMachine: {merged['machine']}\n\n")
        for backend, meta in merged["meta"].items():
            f.write(
                f"- {backend}: {meta['framework']}, keras {meta['keras']}, "
                f"{meta['device']}, matmul peak GFLOP/s {meta['matmul_peak_gflops']}\n"
            )
        f.write("\n" + table + "\n")
    chart = benchmark.bar_chart(merged["results"], args.out + ".png")
    print(table)
    print(f"wrote {args.out}.json, {args.out}.md" + (f", {args.out}.png" if chart else ""))


if __name__ == "__main__":
    main()
