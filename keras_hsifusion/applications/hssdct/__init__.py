"""HSSDCT (Lee et al., ICASSP 2026): model, official-weight converter, FLOP formulas, presets."""

import os

from keras_hsifusion.applications.hssdct import convert as _convert  # noqa: F401 (registers)
from keras_hsifusion.applications.hssdct.flops import FORMULAS
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
        # Official train.py: SmoothL1 + 0.1 SAM + 0.1 band-wise MSE, torch Adam 5.5e-5 (eps 1e-8).
        training_step={
            "loss": "HSSDCTJointLoss",
            "optimizer": {"class": "Adam", "learning_rate": 5.5e-5, "epsilon": 1e-8},
        },
        presets_dir=os.path.join(os.path.dirname(__file__), "presets"),
        flops=FORMULAS,
    )
)

__all__ = ["HSSDCT"]
