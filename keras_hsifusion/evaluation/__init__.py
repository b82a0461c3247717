"""Evaluation beyond the training protocol: the robustness sweep of DESIGN.md section 4.

- `robustness`: `robustness_grid` (named grids of degradation conditions), `make_condition`,
  `simulate_condition` (the held-out region under one condition, as `build_data` simulates
  it), `run_sweep` (methods x conditions -> metric rows) and `main` (`khf bench robustness`).
- `report`: `write_sweep` (`.json`, `.md` tables and a `.png` figure of a sweep).
"""

from keras_hsifusion.evaluation.report import markdown_tables, write_sweep
from keras_hsifusion.evaluation.robustness import (
    GRIDS,
    make_condition,
    robustness_grid,
    run_sweep,
    simulate_condition,
)

__all__ = [
    "GRIDS",
    "make_condition",
    "markdown_tables",
    "robustness_grid",
    "run_sweep",
    "simulate_condition",
    "write_sweep",
]
