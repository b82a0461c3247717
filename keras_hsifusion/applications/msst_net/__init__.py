"""MSST-Net (Jia, Min, Fu, Information Fusion 2023): model, MBAE/MPAE pretrainers, official-weight
converter, FLOP formulas, training stages, presets."""

import os

from keras_hsifusion.applications.msst_net import convert  # noqa: F401  (registers converters)
from keras_hsifusion.applications.msst_net.flops import FORMULAS
from keras_hsifusion.applications.msst_net.msst_net import MSSTNet
from keras_hsifusion.applications.msst_net.pretrainers import MBAE, MPAE
from keras_hsifusion.applications.msst_net.recipe import RECIPE
from keras_hsifusion.applications.registry import ModelSpec, register_model

SPEC = register_model(
    ModelSpec(
        name="msst_net",
        cls=MSSTNet,
        # Official CAVE default (31 bands, RGB, x8) and a small size, batch 1.
        benchmark_sizes={
            "default": ((64, 64, 31), (512, 512, 3)),
            "small": ((16, 16, 31), (128, 128, 3)),
        },
        recipe=RECIPE,
        # Official main.py / trainer.py: L1, AdamW(1e-3, betas (0.9, 0.999), decay 2e-5).
        training_step={
            "loss": "mae",
            "optimizer": {
                "class": "AdamW",
                "learning_rate": 1e-3,
                "beta_2": 0.999,
                "weight_decay": 2e-5,
                "epsilon": 1e-8,
            },
        },
        presets_dir=os.path.join(os.path.dirname(__file__), "presets"),
        flops=FORMULAS,
    )
)

__all__ = ["MBAE", "MPAE", "MSSTNet"]
