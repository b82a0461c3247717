"""Preset `msst_net_indianpines_s2_x4`: MSST-Net over detail injection, Indian Pines x4.

The recipe of the shipped preset (see its card, `preset.json`). A small MSST-Net (n_feats 32,
D 16, MSI embedding 32, patch 4, one transformer layer per stack, two ResBlocks per branch)
with `global_skip="poly_detail_injection"`: the output is a per-image second-order
least-squares detail injection (`layers.GlobalSkip`) plus 0.01 times the network's output
(`layers.ResidualGate`). The official three stages: three MBAEs and three MPAEs pretrained on
the training region, their encoders transferred, then fine-tuning. Trained on the training
region of the 144 x 144 crop (the rightmost 48 columns, the test region, are never seen);
the checkpoint is selected on the validation strip (the last 24 columns of the training
region); the test region is evaluated once, by `training/export_preset.py`. Sized for a
2-core CPU (under an hour).
Reproduce (`khf train` takes the name; in a source checkout
`python -m training.run training/configs/msst_net_indianpines_s2_x4.py` is the same):
    KERAS_BACKEND=torch OMP_NUM_THREADS=1 khf train msst_net_indianpines_s2_x4 [--resume]
"""

_PRETRAIN = {
    "epochs": 10,
    "decoder_num_layers": 1,
    "optimizer": {"class": "Adam", "learning_rate": 1e-3},
    "schedule": {"class": "cosine", "alpha": 0.1},
}

CONFIG = {
    "name": "msst_net_indianpines_s2_x4",
    "seed": 0,
    "data": {
        "scale": 4,
        "sensor": "sentinel2a-10m",
        "patch_size": 32,
        "batch_size": 8,
        "patches_per_epoch": 64,
    },
    "model": {
        "class": "MSSTNet",
        "n_feats": 32,
        "hsi_embed_dim": 16,
        "msi_embed_dim": 32,
        "hsi_heads": 2,
        "msi_heads": 2,
        "patch_size": 4,
        "hsi_res_blocks": 2,
        "msi_res_blocks": 2,
        "hsi_num_layers": 1,
        "msi_num_layers": 1,
        "reference_size": [8, 8],  # LR side of a 32x32 HR patch at x4
        "global_skip": "poly_detail_injection",
    },
    "pretrain": {"mbae": _PRETRAIN, "mpae": _PRETRAIN},
    "optimizer": {"class": "Adam", "learning_rate": 1e-3},
    "schedule": {"class": "cosine", "alpha": 0.05},
    "loss": "HSSDCTJointLoss",
    "epochs": 150,
    "monitor": "val_psnr",
}
