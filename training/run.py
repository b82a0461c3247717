"""Runs one experiment: `python -m training.run CONFIG [--epochs N] [--out DIR] [--resume]`.

CONFIG is a recipe file (`training/configs/*.py`, which re-export the recipes shipped in
`keras_hsifusion/recipes/`, or any `.py` defining `CONFIG` or `.json`) or the name of a
shipped recipe (`khf train` is the same command from an installed wheel); the training
itself is `keras_hsifusion.training.run_experiment`. Choose the backend with
`KERAS_BACKEND=torch|jax|tensorflow`. Outputs go to `runs/<config name>/` unless `--out` is
given; `--resume` continues an interrupted run from its `last.keras`.
"""

import argparse
import json
import os
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.run", description=__doc__)
    parser.add_argument(
        "config", help="recipe file (.py with CONFIG, or .json) or a shipped recipe's name"
    )
    parser.add_argument("--epochs", type=int, default=None, help="total epochs (override)")
    parser.add_argument("--out", default=None, help="run directory (default runs/<name>)")
    parser.add_argument("--resume", action="store_true", help="continue from last.keras")
    parser.add_argument("--verbose", default="auto", help="fit verbosity: auto, 0, 1 or 2")
    args = parser.parse_args(argv)

    from keras_hsifusion import recipes, training
    from keras_hsifusion.utils.runtime import enable_compilation_cache, tune_malloc

    if argv is None:  # this process is ours (docs/benchmarks.md, "Allocator")
        tune_malloc()
        enable_compilation_cache()

    config = training.load_config(recipes.resolve(args.config))
    out = args.out or os.path.join("runs", config["name"])
    verbose = args.verbose if args.verbose == "auto" else int(args.verbose)
    results = training.run_experiment(
        config, out, epochs=args.epochs, resume=args.resume, verbose=verbose
    )
    if results is not None:  # None on the ranks > 0 of a torch.distributed run
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
