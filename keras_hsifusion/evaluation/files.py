"""Scoring a fused file: `evaluate_files(estimate, reference=None, ...)`, what `khf evaluate`
does.

With a reference on the estimate's grid: PSNR, SAM, RMSE, ERGAS (given the scale) and SSIM
on the pixels valid in both (`keras_hsifusion.inference.scene.reference_metrics`). Without
one: the full-resolution indices D_lambda, D_s and QNR of Alparone et al. (2008) from the
fusion's inputs (`keras_hsifusion.metrics.d_lambda`, `d_s`), nodata pixels filled with band
means. Optionally a figure (`keras_hsifusion.evaluation.figures`) and a JSON file, both
written atomically. See docs/cli.md, "khf evaluate".
"""

import os

import numpy as np

from keras_hsifusion.data import raster
from keras_hsifusion.inference.scene import (
    check_output_path,
    check_same_grid,
    neutral_fill,
    reference_metrics,
)
from keras_hsifusion.utils.progress import Heartbeat, resolve_progress

__all__ = ["evaluate_files"]


def evaluate_files(
    estimate,
    reference=None,
    *,
    lr_hsi=None,
    hr_msi=None,
    scale=None,
    block_size=32,
    key=None,
    figure=None,
    json_path=None,
    overwrite=False,
    progress=None,
    log=None,
):
    """Metrics of a fused image file, against a reference or (without one) its inputs.

    Args:
        estimate: path of the fused image.
        reference: path of the true HR-HSI on the same grid, or None.
        lr_hsi: the LR-HSI input: without a reference, needed (with `hr_msi`) for QNR; with
            one, it gives the scale for ERGAS.
        hr_msi: the HR-MSI input (no-reference mode).
        scale: resolution ratio (ERGAS; checked against the files without a reference).
        block_size: QNR window in HR pixels. Default 32.
        key: array name inside `.h5`/`.mat`/`.npz` files.
        figure: optional `.png` path: error maps and spectra (needs matplotlib).
        json_path: optional path: the numbers, the files and the scale as JSON.
        overwrite: replace existing `figure` / `json_path`. Default False.
        progress: report the long no-reference indices on stderr (elapsed time); None:
            when stderr is a terminal.
        log: optional callable taking one line.

    Returns:
        A dict: `estimate`, `metrics` (`{name: float}`), `notes` (what could not be
        computed and why), and `reference`, `scale`, `valid_pixels` or `lr_hsi`, `hr_msi`,
        `scale`, `block_size`.

    Raises:
        ValueError / FileNotFoundError / FileExistsError: a bad argument or file, sizes or
            grids that differ, no valid pixel, an existing output without `overwrite`.
    """
    say = log or (lambda message: None)
    for name, path in (("figure", figure), ("json", json_path)):
        if path is not None:
            check_output_path(name, path, overwrite)
    if reference is None and not (lr_hsi and hr_msi):
        raise ValueError(
            "without a reference, pass --lr-hsi and --hr-msi (lr_hsi=, hr_msi=) for the "
            "full-resolution indices D_lambda, D_s and QNR"
        )
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 2:
        raise ValueError(f"`block_size` must be an integer >= 2. Received: {block_size!r}")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, int) or scale < 1):
        raise ValueError(f"`scale` must be a positive integer. Received: scale={scale!r}")
    for path in (estimate, reference, lr_hsi, hr_msi):
        if path is not None and not os.path.exists(path):
            raise FileNotFoundError(f"No such file: {os.fspath(path)}")
    est = raster.read_raster(estimate, key=key)
    if reference is not None:
        result = _with_reference(est, reference, lr_hsi, scale, key, figure, say)
    else:
        result = _without_reference(est, lr_hsi, hr_msi, scale, block_size, figure, progress, say)
    result = {"estimate": os.fspath(estimate), **result}
    if json_path is not None:
        from keras_hsifusion.utils.files import atomic_write_json

        atomic_write_json(json_path, {k: v for k, v in result.items() if k != "notes"})
        os.chmod(json_path, 0o644)
    return result


def _with_reference(est, reference, lr_hsi, scale, key, figure, say):
    ref = raster.read_raster(reference, key=key)
    if ref.shape != est.shape:
        raise ValueError(f"shapes differ: {est.describe()} vs {ref.describe()}")
    check_same_grid(est, ref, "estimate and reference")
    if scale is None and lr_hsi:
        scale = raster.check_footprints(raster.read_raster(lr_hsi), ref)
    valid = est.valid_mask() & ref.valid_mask()
    if not valid.any():
        raise ValueError("no pixel is valid in both the estimate and the reference")
    values = reference_metrics(ref.array, est.array, valid, scale)
    notes = []
    if "ergas" not in values:
        notes.append("no ERGAS: pass --scale or --lr-hsi to give the resolution ratio")
    if "ssim" not in values:
        notes.append("no SSIM: it needs a full image and some pixels are nodata")
    if figure is not None:
        from keras_hsifusion.evaluation.figures import reference_figure

        wavelengths = ref.wavelengths if ref.wavelengths is not None else est.wavelengths
        reference_figure(
            figure, ref.array, est.array, valid, wavelengths, (est.path, os.fspath(reference))
        )
    return {
        "reference": os.fspath(reference),
        "scale": scale,
        "valid_pixels": int(valid.sum()),
        "metrics": values,
        "notes": notes,
    }


def _without_reference(est, lr_hsi, hr_msi, scale, block_size, figure, progress, say):
    from keras_hsifusion import metrics
    from keras_hsifusion.data import spatial_degrade

    hsi, msi = raster.read_raster(lr_hsi), raster.read_raster(hr_msi)
    scale = raster.check_footprints(hsi, msi, scale=scale)
    check_same_grid(est, msi, "estimate and HR-MSI")
    if est.shape[-1] != hsi.shape[-1]:
        raise ValueError(f"band counts differ: {est.describe()} vs {hsi.describe()}")
    valid = est.valid_mask() & msi.valid_mask()
    lr_valid = hsi.valid_mask()
    f = neutral_fill(est.array, valid).astype(np.float64)
    lr = neutral_fill(hsi.array, lr_valid).astype(np.float64)
    m = neutral_fill(msi.array, valid).astype(np.float64)
    pairs = f.shape[-1] * (f.shape[-1] - 1) // 2
    say(
        f"{est.path}, no reference (Alparone et al. 2008 QNR; windows {block_size} px at "
        f"high resolution, {max(block_size // scale, 2)} at low):"
    )
    show = resolve_progress(progress)
    with _maybe(show, f"D_lambda ({pairs} band pairs)"):
        dl = metrics.d_lambda(f, lr, block_size=block_size, scale=scale)
    with _maybe(show, f"D_s ({f.shape[-1]} x {m.shape[-1]} band pairs)"):
        ds = metrics.d_s(f, lr, m, block_size=block_size, scale=scale)
    notes = []
    if not valid.all() or not lr_valid.all():
        notes.append("nodata pixels were filled with band means before computing the indices")
    if figure is not None:
        from keras_hsifusion.evaluation.figures import consistency_figure

        wavelengths = hsi.wavelengths if hsi.wavelengths is not None else est.wavelengths
        consistency_figure(figure, f, lr, spatial_degrade(f, scale), wavelengths, est.path)
    return {
        "lr_hsi": os.fspath(lr_hsi),
        "hr_msi": os.fspath(hr_msi),
        "scale": scale,
        "block_size": block_size,
        "metrics": {"d_lambda": dl, "d_s": ds, "qnr": (1.0 - dl) * (1.0 - ds)},
        "notes": notes,
    }


class _maybe:
    """A `Heartbeat` when `show`, else nothing."""

    def __init__(self, show, label):
        self.beat = Heartbeat(label) if show else None

    def __enter__(self):
        if self.beat is not None:
            self.beat.__enter__()
        return self

    def __exit__(self, *exc):
        return self.beat.__exit__(*exc) if self.beat is not None else False
