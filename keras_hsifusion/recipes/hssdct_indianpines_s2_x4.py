"""Preset `hssdct_indianpines_s2_x4`: HSSDCT over detail injection, Indian Pines x4, S2A MSI.

The recipe of the shipped preset (see its card, `preset.json`). A small HSSDCT (nf 32, gc 16,
base window 4, MLP ratio 2) with `global_skip="poly_detail_injection"`: the output is a
per-image second-order least-squares detail injection (`layers.GlobalSkip`) plus 0.01 times
the network's output (`layers.ResidualGate`). Trained on the training region of the 144 x 144
crop (the rightmost 48 columns, the test region, are never seen); the checkpoint is selected
on the validation strip (the last 24 columns of the training region); the test region is
evaluated once, by `training/export_preset.py`. Sized for a 2-core CPU (under an hour).
Reproduce (`khf train` takes the name; in a source checkout
`python -m training.run training/configs/hssdct_indianpines_s2_x4.py` is the same):
    KERAS_BACKEND=torch OMP_NUM_THREADS=1 khf train hssdct_indianpines_s2_x4 [--resume]
"""

CONFIG = {
    "name": "hssdct_indianpines_s2_x4",
    "seed": 0,
    "data": {
        "scale": 4,
        "sensor": "sentinel2a-10m",
        "patch_size": 32,
        "batch_size": 8,
        "patches_per_epoch": 64,
    },
    "model": {
        "class": "HSSDCT",
        "nf": 32,
        "gc": 16,
        "window_size": 4,
        "mlp_ratio": 2.0,
        "global_skip": "poly_detail_injection",
    },
    "optimizer": {"class": "Adam", "learning_rate": 5e-4},
    "schedule": {"class": "cosine", "alpha": 0.05},
    "loss": "HSSDCTJointLoss",
    "epochs": 100,
    "monitor": "val_psnr",
}
