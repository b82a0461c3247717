"""Fusion methods on the held-out region of Indian Pines x4 under a grid of degradations.

    python benchmarks/robustness.py                      # every classical method and preset
    python benchmarks/robustness.py --methods gsa sfim --presets --grid quick --out /tmp/r

Every classical method of `keras_hsifusion.baselines.METHODS` (or `--methods`) and every
shipped preset (or `--presets`) fuses the held-out test region of the protocol (the rightmost
48 columns of the 144x144 crop) simulated under each condition of the grid (`--grid default`:
the training degradation; Gaussian PSF FWHM 2-7 HR pixels; white noise at LR-HSI SNR 15-45 dB
and MSI SNR 25-50 dB; band-dependent LR-HSI noise) and is scored against the clean
reference. Runs on the current `KERAS_BACKEND`. Writes `OUT.json`, `OUT.md` (PSNR and SAM
tables, conditions x methods) and `OUT.png` (PSNR and SAM against the SNR and the PSF width).
The work is `keras_hsifusion.evaluation.robustness` (also `khf bench robustness`).
"""

import sys

from keras_hsifusion.evaluation.robustness import main

if __name__ == "__main__":
    sys.exit(main(prog="python benchmarks/robustness.py"))
