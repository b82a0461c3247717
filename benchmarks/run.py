"""Throughput/memory benchmark runner: one subprocess per backend, JSON + Markdown + PNG.

    python benchmarks/run.py                               # default matrix (small sizes)
    python benchmarks/run.py --sizes small default --modes forward train \\
        --compiles eager jit --dtypes float32 mixed_bfloat16
    python benchmarks/run.py --model my_model.keras --sizes 256x256
    python benchmarks/run.py --import my_models --model my_net  # a model my_models registers
    python benchmarks/run.py --official hssdct=/path/to/HSSDCT msst_net=/path/to/MSST-Net
    python benchmarks/run.py --modes train --compiles default --allocator default tuned \
        --official hssdct=/path/to/HSSDCT     # training steps, both allocator settings

The runner is `keras_hsifusion.profiling.runner` (`khf bench`, the same options from an
installed wheel); this script adds the repository root to the path for `--official`, whose
timing harness, tools/official_harness.py, is not in the wheel. Models and sizes come from
the zoo registry (keras_hsifusion.applications.registry). See docs/benchmarks.md.
"""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # `tools.official_harness`, here and in the workers (this script)
    sys.path.insert(0, REPO)

from keras_hsifusion.profiling.runner import (  # noqa: E402
    import_modules,
    official_harness,
    parse,
    run_worker,
)
from keras_hsifusion.profiling.runner import main as _main  # noqa: E402

__all__ = ["import_modules", "main", "official_harness", "parse", "run_worker"]
PROG = "python benchmarks/run.py"


def main(argv=None):
    return _main(argv, prog=PROG, worker=os.path.abspath(__file__))


if __name__ == "__main__":
    main()
