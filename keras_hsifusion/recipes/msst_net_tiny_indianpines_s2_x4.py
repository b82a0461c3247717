"""MSST-Net, small CPU config: Indian Pines x4, Sentinel-2A B2/B3/B4/B8 (minutes on CPU).

The three stages of the official recipe, shortened: three MBAEs (band embeddings of width
D, D/2, 2D) on LR-HSI patches, three MPAEs (patches p, p/2, 2p) on HR-MSI patches, then the
fine-tuning of MSSTNet with each scale's pretrained encoder (`load_pretrained_encoders`).
L1 loss and Adam 1e-3 as the official `trainer.py`. A short run, not a converged result.
Reproduce (`khf train` takes the name; in a source checkout
`python -m training.run training/configs/msst_net_tiny_indianpines_s2_x4.py` is the same):
    KERAS_BACKEND=torch khf train msst_net_tiny_indianpines_s2_x4
"""

_PRETRAIN = {
    "epochs": 2,
    "decoder_num_layers": 1,
    "optimizer": {"class": "Adam", "learning_rate": 1e-3},
}

CONFIG = {
    "name": "msst_net_tiny_indianpines_s2_x4",
    "seed": 0,
    "data": {
        "scale": 4,
        "sensor": "sentinel2a-10m",
        "patch_size": 32,
        "batch_size": 4,
        "patches_per_epoch": 32,
    },
    "model": {
        "class": "MSSTNet",
        "n_feats": 32,
        "hsi_embed_dim": 16,
        "msi_embed_dim": 64,
        "hsi_heads": 2,
        "msi_heads": 2,
        "patch_size": 4,
        "hsi_res_blocks": 2,
        "msi_res_blocks": 2,
        "hsi_num_layers": 1,
        "msi_num_layers": 1,
        "reference_size": [8, 8],  # LR side of a 32x32 HR patch at x4
    },
    "pretrain": {"mbae": _PRETRAIN, "mpae": _PRETRAIN},
    "optimizer": {"class": "Adam", "learning_rate": 1e-3},
    "schedule": {"class": "cosine", "alpha": 0.1},
    "loss": "mae",
    "epochs": 6,
    "monitor": "val_psnr",
}
