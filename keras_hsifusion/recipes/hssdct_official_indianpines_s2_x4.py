"""HSSDCT, OFFICIAL SIZE (GPU): Indian Pines x4, Sentinel-2A B2/B3/B4/B8.

For users with a GPU; far too slow for a CPU. The official network (nf=96, gc=32, base
window 8) and the official `train.py` recipe: HSSDCT joint loss (SmoothL1 + 0.1 SAM + 0.1
band-wise MSE), Adam 5.5e-5 with cosine annealing over the run, batch 6, 1000 epochs.
Difference: Indian Pines' training region is 144x88, so patches are 64x64 (official: 128x128
crops of 256x256 images), and one epoch is 240 random patches.
Reproduce (`khf train` takes the name; in a source checkout
`python -m training.run training/configs/hssdct_official_indianpines_s2_x4.py` is the same):
    KERAS_BACKEND=torch khf train hssdct_official_indianpines_s2_x4
"""

CONFIG = {
    "name": "hssdct_official_indianpines_s2_x4",
    "seed": 1029,
    "data": {
        "scale": 4,
        "sensor": "sentinel2a-10m",
        "patch_size": 64,
        "batch_size": 6,
        "patches_per_epoch": 240,
    },
    "model": {"class": "HSSDCT", "nf": 96, "gc": 32},
    "optimizer": {"class": "Adam", "learning_rate": 5.5e-5},
    "schedule": {"class": "cosine", "alpha": 0.0},
    "loss": "HSSDCTJointLoss",
    "epochs": 1000,
    "run_eagerly": False,  # graph mode on TensorFlow: the tracing pays off over a long run
    "monitor": "val_sam",  # the official script keeps the checkpoint with the best SAM
}
