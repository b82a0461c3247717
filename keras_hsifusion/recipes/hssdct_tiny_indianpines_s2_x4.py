"""HSSDCT, small CPU config: Indian Pines x4, Sentinel-2A B2/B3/B4/B8 (a few minutes on CPU).

A short run to show that the recipe learns, not a converged result. The model is a small
HSSDCT (nf=32, gc=16, base window 2, MLP ratio 2), 4 epochs of 6 steps of 4 patches
(the model of `make demo`).
Reproduce (`khf train` takes the name; in a source checkout
`python -m training.run training/configs/hssdct_tiny_indianpines_s2_x4.py` is the same):
    KERAS_BACKEND=torch khf train hssdct_tiny_indianpines_s2_x4
"""

CONFIG = {
    "name": "hssdct_tiny_indianpines_s2_x4",
    "seed": 0,
    "data": {
        "scale": 4,
        "sensor": "sentinel2a-10m",
        "patch_size": 32,
        "batch_size": 4,
        "patches_per_epoch": 24,
    },
    "model": {"class": "HSSDCT", "nf": 32, "gc": 16, "window_size": 2, "mlp_ratio": 2.0},
    "optimizer": {"class": "Adam", "learning_rate": 1e-3},
    "schedule": {"class": "cosine", "alpha": 0.1},
    "loss": "HSSDCTJointLoss",
    "epochs": 4,
    "monitor": "val_psnr",
}
