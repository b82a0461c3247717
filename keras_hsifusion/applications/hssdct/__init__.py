"""HSSDCT (Lee et al., ICASSP 2026): model, official-weight converter, FLOP formulas, presets."""

import os

from keras_hsifusion.applications.hssdct import convert as _convert  # noqa: F401 (registers)
from keras_hsifusion.applications.hssdct import flops as _flops  # noqa: F401 (registers)
from keras_hsifusion.applications.hssdct.hssdct import HSSDCT
from keras_hsifusion.applications.registry import ModelSpec, register_model

SPEC = register_model(
    ModelSpec(
        name="hssdct",
        cls=HSSDCT,
        # Official default (172 bands, 4-band MSI, x4) and a small size, batch 1.
        benchmark_sizes={
            "default": ((64, 64, 172), (256, 256, 4)),
            "small": ((16, 16, 172), (64, 64, 4)),
        },
        presets_dir=os.path.join(os.path.dirname(__file__), "presets"),
    )
)

__all__ = ["HSSDCT"]
