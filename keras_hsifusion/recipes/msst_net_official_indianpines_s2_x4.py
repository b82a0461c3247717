"""MSST-Net, OFFICIAL SIZE (GPU): Indian Pines x4, Sentinel-2A B2/B3/B4/B8.

For users with a GPU; far too slow for a CPU. The official CAVE defaults of `argsParser.py`
(n_feats 64, hsi_embed_dim 32, msi_embed_dim 256, 4 heads, patch 16, 5 ResBlocks, 4 layers)
at scale 4 and the official three stages: three MBAEs and three MPAEs (5000 epochs each in
the official scripts), then fine-tuning with L1 loss, Adam 1e-3, learning rate x0.1 after
epochs 200 and 2000, batch 32, 5000 epochs.
Differences: 64x64 HR patches (16x16 LR, the official LR patch size; Indian Pines' training
region is 144x88), one epoch is 256 random patches; the official weight_decay 2e-5 (torch Adam's
L2 term) is left out, Keras' Adam `weight_decay` being decoupled.
Reproduce (`khf train` takes the name; in a source checkout
`python -m training.run training/configs/msst_net_official_indianpines_s2_x4.py` is the same):
    KERAS_BACKEND=torch khf train msst_net_official_indianpines_s2_x4
"""

_PRETRAIN = {
    "epochs": 5000,
    "decoder_num_layers": 2,
    "optimizer": {"class": "Adam", "learning_rate": 1e-3},
}

CONFIG = {
    "name": "msst_net_official_indianpines_s2_x4",
    "seed": 0,
    "data": {
        "scale": 4,
        "sensor": "sentinel2a-10m",
        "patch_size": 64,
        "batch_size": 32,
        "patches_per_epoch": 256,
    },
    "model": {"class": "MSSTNet", "reference_size": [16, 16]},
    "pretrain": {"mbae": _PRETRAIN, "mpae": _PRETRAIN},
    "optimizer": {"class": "Adam", "learning_rate": 1e-3},
    "schedule": {"class": "multistep", "milestones": [200, 2000], "gamma": 0.1},
    "loss": "mae",
    "epochs": 5000,
    "run_eagerly": False,  # graph mode on TensorFlow: the tracing pays off over a long run
    "monitor": "val_psnr",
}
