"""Throughput/memory benchmark runner: one subprocess per backend, JSON + Markdown + PNG.

    khf bench                                              # default matrix (small sizes)
    khf bench --sizes small default --modes forward train \\
        --compiles eager jit --dtypes float32 mixed_bfloat16
    khf bench --model my_model.keras --sizes 256x256
    khf bench --import my_models --model my_net            # a model my_models registers
    khf bench --modes train --compiles default --allocator default tuned

The command line of `keras_hsifusion.profiling.benchmark` (`khf bench`, and in a source
checkout `python benchmarks/run.py`, which adds `--official`: timing the official PyTorch
code with the repository's tools/official_harness.py, which the wheel does not ship). Models
and sizes come from the zoo registry (keras_hsifusion.applications.registry). Every backend
is measured by a worker process, `python -m keras_hsifusion.profiling.runner --worker ...`
(or the script that called `main`). See docs/benchmarks.md.
"""

import argparse
import importlib
import importlib.machinery
import importlib.util
import json
import os
import platform
import sys

from keras_hsifusion.applications.registry import model_names
from keras_hsifusion.profiling import benchmark, native
from keras_hsifusion.utils.runtime import malloc_env, set_threads

__all__ = ["import_modules", "main", "official_harness", "parse", "run_worker"]

WORKER_MODULE = "keras_hsifusion.profiling.runner"


def official_harness():
    """`tools.official_harness` of a source checkout (its root on the path, as
    `python benchmarks/run.py` puts it); an `ImportError` saying so elsewhere."""
    try:
        return importlib.import_module("tools.official_harness")
    except ImportError:
        raise ImportError(
            "--official times the official code with tools/official_harness.py of a source "
            "checkout, which the wheel does not ship: run `python benchmarks/run.py "
            "--official ...` from the repository"
        ) from None


def import_modules(names):
    """Imports user modules (on PYTHONPATH, or `NAME.py` / `NAME/` in the current directory),
    e.g. ones that register models with `keras_hsifusion.applications.registry.register_model`.
    """
    for name in names:
        if importlib.util.find_spec(name.partition(".")[0]) is not None:
            importlib.import_module(name)
            continue
        # `khf` (a console script) does not put the working directory on the module path
        spec = (
            None if "." in name else importlib.machinery.PathFinder.find_spec(name, [os.getcwd()])
        )
        if spec is None:
            raise ImportError(
                f"--import: no module {name!r} on PYTHONPATH or in the current directory "
                f"({os.getcwd()})"
            )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


def parse(argv=None, prog=None):
    """The runner's options (`khf bench --help`); `prog` names the command in messages."""
    # `--import` first: the modules it names may register models that `--model` accepts.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--import", dest="imports", nargs="+", default=[])
    import_modules(pre.parse_known_args(argv)[0].imports)
    names = model_names()

    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
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
        help="time the official PyTorch code of MODEL (hssdct, msst_net) from a checkout in DIR "
        "(source checkout only: `python benchmarks/run.py`)",
    )
    p.add_argument("--out", default="benchmarks/results/latest", help="PREFIX of the outputs")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker-out", help=argparse.SUPPRESS)
    p.add_argument("--official-worker", help=argparse.SUPPRESS)
    p.add_argument("--peak-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.model and args.model not in names and not args.model.endswith(".keras"):
        p.error(f"--model takes one of {names} or a path to a .keras file: {args.model!r}")
    official = {}
    kinds = ()
    if args.official:
        try:
            kinds = official_harness().OFFICIAL_KINDS
        except ImportError as e:
            p.error(str(e))
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


def _write_markdown(path, merged, table):
    with open(path, "w") as f:
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


def main(argv=None, prog="khf bench", worker=None):
    """Runs the benchmarks of `argv` (the options of `parse`); returns the merged rows.

    Args:
        argv: the options (default `sys.argv[1:]`).
        prog: the command, as usage lines and the outputs' `command` show it.
        worker: the script each backend's worker runs (`--worker ...` is appended); None:
            `python -m keras_hsifusion.profiling.runner`.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv, prog=prog)
    if args.worker:
        data = run_worker(args)
        with open(args.worker_out, "w") as f:
            json.dump(data, f)
        return data
    script = worker if worker is not None else ["-m", WORKER_MODULE]
    forward = [a for a in argv if a != "--worker"]
    merged = {"meta": {}, "results": []}
    kernels = {}
    if args.machine_peak is None:
        for backend in ("tensorflow", "jax", "torch"):
            if importlib.util.find_spec(backend) is None:
                continue
            peak = benchmark.run_backends([backend], [*forward, "--peak-worker"], script)
            kernels.update(peak["meta"].get(backend, {}).get("kernel_peaks", {}))
        best = max(kernels, key=kernels.get) if kernels else None
        merged["machine_peak"] = {"gflops": kernels.get(best), "kernel": best, "all": kernels}
    else:
        merged["machine_peak"] = {"gflops": args.machine_peak, "kernel": "given"}
    print(f"machine float32 peak: {merged['machine_peak']}")
    for allocator in args.allocator:
        env = malloc_env() if allocator == "tuned" else dict.fromkeys(malloc_env())
        part = benchmark.run_backends(args.backends, forward, script, env)
        for kind in args.official:
            official = [*forward, "--official-worker", kind]
            part["results"] += benchmark.run_backends(["torch"], official, script, env)["results"]
        merged["meta"].update(part["meta"])
        merged["results"] += part["results"]
    benchmark.add_speedups(merged["results"])
    benchmark.add_machine_peak(merged["results"], merged["machine_peak"]["gflops"])
    merged["command"] = " ".join([prog, *argv])
    merged["machine"] = f"{platform.platform()}, {os.cpu_count()} logical CPUs"
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(merged, f, indent=1)
    table = benchmark.markdown_table(merged["results"])
    _write_markdown(args.out + ".md", merged, table)
    chart = benchmark.bar_chart(merged["results"], args.out + ".png")
    print(table)
    print(f"wrote {args.out}.json, {args.out}.md" + (f", {args.out}.png" if chart else ""))
    return merged


if __name__ == "__main__":
    main()
