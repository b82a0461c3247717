"""Evaluation: the protocol every result is scored by, and the robustness sweep (DESIGN.md 4).

- `protocol`: `build_data` with `DEFAULT_DATA` (the simulated scene and its training,
  validation and test regions), `region_metrics`, `evaluate_region`, `baseline_metrics`.
- `robustness`: `robustness_grid` (named grids of degradation conditions), `make_condition`,
  `simulate_condition` (the held-out region under one condition, as `build_data` simulates
  it), `run_sweep` (methods x conditions -> metric rows) and `main` (`khf bench robustness`).
- `report`: `write_sweep` (`.json`, `.md` tables and a `.png` figure of a sweep).
- `files`: `evaluate_files` (`khf evaluate`: a fused file against a reference, or QNR from
  its inputs).
- `figures`: per-pixel error maps (`sam_map`, `rmse_map`), the false colour and the one
  figure writer (`write_figure`) behind the figures of `khf evaluate` and `make demo`.
"""

from keras_hsifusion.evaluation.figures import rmse_map, sam_map, write_figure
from keras_hsifusion.evaluation.files import evaluate_files
from keras_hsifusion.evaluation.protocol import (
    DEFAULT_DATA,
    baseline_metrics,
    build_data,
    evaluate_region,
    region_metrics,
)
from keras_hsifusion.evaluation.report import markdown_tables, write_sweep
from keras_hsifusion.evaluation.robustness import (
    GRIDS,
    make_condition,
    robustness_grid,
    run_sweep,
    simulate_condition,
)

__all__ = [
    "DEFAULT_DATA",
    "GRIDS",
    "baseline_metrics",
    "build_data",
    "evaluate_files",
    "evaluate_region",
    "make_condition",
    "markdown_tables",
    "region_metrics",
    "rmse_map",
    "robustness_grid",
    "run_sweep",
    "sam_map",
    "simulate_condition",
    "write_figure",
    "write_sweep",
]
