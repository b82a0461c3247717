"""Fusion quality metrics: numpy functions and stateful `keras.metrics.Metric` classes.

One package, three modules by kind; every public name is importable from here
(`keras_hsifusion.metrics.psnr`, `keras_hsifusion.metrics.PSNR`):

- `full_reference`: `rmse`, `psnr`, `sam`, `ergas`, `ssim`, `cc`, `uiqi` (an estimate
  against a reference; definitions, ranges and degenerate inputs in its docstring).
- `no_reference`: `d_lambda`, `d_s`, `qnr` (QNR of Alparone et al., 2008, on a fused image
  and its inputs).
- `keras_metrics`: `PSNR`, `SAM`, `ERGAS`, `RMSE` (the same values inside `fit`).
"""

from keras_hsifusion.metrics.full_reference import cc, ergas, psnr, rmse, sam, ssim, uiqi
from keras_hsifusion.metrics.keras_metrics import ERGAS, PSNR, RMSE, SAM
from keras_hsifusion.metrics.no_reference import d_lambda, d_s, qnr

__all__ = [
    "ERGAS",
    "PSNR",
    "RMSE",
    "SAM",
    "cc",
    "d_lambda",
    "d_s",
    "ergas",
    "psnr",
    "qnr",
    "rmse",
    "sam",
    "ssim",
    "uiqi",
]
