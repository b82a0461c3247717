"""Preset candidate `hssdct_robust_indianpines_s2_x4`: HSSDCT trained blind to blur and noise.

The recipe of `hssdct_indianpines_s2_x4` (a small HSSDCT over `poly_detail_injection`) trained
under a distribution of degradations instead of the one clean simulation: every training
patch is simulated on its own (`keras_hsifusion.data.conditions`) with a Gaussian PSF of FWHM
2-7 HR pixels, white noise at 15-50 dB on the LR-HSI and 25-55 dB on the HR-MSI, a per-band
SNR profile (white, an imaging-spectrometer shape or a smooth random curve, 0-10 dB deep) and
an MSI response shifted by up to 2 nm and 5 % wider or narrower. Model selection on eight
validation conditions drawn once from the same ranges (recorded in `results.json`); the
held-out test region is never seen. The network's residual over the classical estimate is
scaled by 0.1 instead of 0.01 (`residual_scale`).
Reproduce (`khf train` takes the name; in a source checkout
`python -m training.run training/configs/hssdct_robust_indianpines_s2_x4.py` is the same):
    KERAS_BACKEND=torch OMP_NUM_THREADS=1 khf train hssdct_robust_indianpines_s2_x4 \
        --out runs/hssdct_robust [--resume]
"""

CONFIG = {
    "name": "hssdct_robust_indianpines_s2_x4",
    "seed": 0,
    "data": {
        "scale": 4,
        "sensor": "sentinel2a-10m",
        "psf_fwhm": {"uniform": [2.0, 7.0]},
        "noise_snr_db": [{"uniform": [15.0, 50.0]}, {"uniform": [25.0, 55.0]}],
        "noise_profile": ["white", "sensor", "smooth"],
        "noise_profile_depth_db": {"uniform": [0.0, 10.0]},
        "msi_shift_nm": {"uniform": [-2.0, 2.0]},
        "msi_width_scale": {"uniform": [0.95, 1.05]},
        "val_conditions": 8,
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
        "residual_scale": 0.1,
    },
    "optimizer": {"class": "Adam", "learning_rate": 5e-4},
    "schedule": {"class": "cosine", "alpha": 0.05},
    "loss": "HSSDCTJointLoss",
    "epochs": 120,
    "monitor": "val_psnr",
}
