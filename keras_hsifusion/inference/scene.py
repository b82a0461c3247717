"""Fusing files: `fuse_files(lr_hsi, hr_msi, output, method)`, what `khf fuse` does.

`fuse_files` checks every argument (method, outputs, tiling, sensor) before it reads
anything, reads both images with `keras_hsifusion.data.raster.read_raster`, says so when
they look swapped, checks that their footprints agree, fills nodata pixels with band means,
checks a preset's band centres, fuses with `keras_hsifusion.inference.fuse` tile by tile into
a `RasterWriter` on the HR-MSI grid with the LR-HSI's wavelengths (atomic: an error or
Ctrl-C leaves no file), puts nodata back, and optionally writes a false-colour preview and
computes metrics against a reference. The helpers it is made of (`neutral_fill`, `hr_grid`,
`check_not_swapped`, `check_same_grid`, `reference_metrics`) serve `khf evaluate` too
(`keras_hsifusion.evaluation.files`).

Examples:
>>> import os, tempfile, numpy as np
>>> from keras_hsifusion.data import raster
>>> folder = tempfile.mkdtemp()
>>> rng = np.random.default_rng(0)
>>> raster.write_raster(os.path.join(folder, "lr.h5"), rng.random((8, 8, 5)),
...                     crs="EPSG:32616", transform=(40, 0, 5e5, 0, -40, 4.4e6))
>>> raster.write_raster(os.path.join(folder, "hr.h5"), rng.random((32, 32, 3)),
...                     crs="EPSG:32616", transform=(10, 0, 5e5, 0, -10, 4.4e6))
>>> result = fuse_files(os.path.join(folder, "lr.h5"), os.path.join(folder, "hr.h5"),
...                     os.path.join(folder, "fused.h5"), "bicubic")
>>> result["shape"], result["scale"]
((32, 32, 5), 4)
>>> raster.read_raster(result["output"]).transform
(10.0, 0.0, 500000.0, 0.0, -10.0, 4400000.0)
"""

import math
import numbers
import os
import time
import warnings

import numpy as np

from keras_hsifusion.data import raster
from keras_hsifusion.inference.fuse import fuse
from keras_hsifusion.inference.methods import resolve_method

__all__ = [
    "check_not_swapped",
    "check_output_path",
    "check_same_grid",
    "fuse_files",
    "hr_grid",
    "neutral_fill",
    "reference_metrics",
]

# The longest side of `preview` PNGs (the output is subsampled to it).
PREVIEW_SIDE = 4096


def neutral_fill(array, valid):
    """A copy of `array` `(H, W, C)` with the pixels where `valid` is False set to the band
    means of the valid ones (zeros if none is valid); `array` itself when all are valid."""
    if valid.all():
        return array
    out = np.array(array, np.float32)
    good = out[valid]
    means = good.mean(axis=0) if good.size else np.zeros(out.shape[-1], np.float32)
    out[~valid] = means
    return out


def hr_grid(lr_hsi, hr_msi, scale):
    """`(crs, transform)` of the fused image: the HR-MSI's grid, or the LR-HSI's with its
    pixel size divided by `scale` when only the LR-HSI is georeferenced."""
    if hr_msi.transform is not None:
        return hr_msi.crs or lr_hsi.crs, hr_msi.transform
    if lr_hsi.transform is not None:
        a, b, c, d, e, f = lr_hsi.transform
        return lr_hsi.crs, (a / scale, b / scale, c, d / scale, e / scale, f)
    return hr_msi.crs or lr_hsi.crs, None


def check_not_swapped(lr_hsi, hr_msi):
    """Raises a `ValueError` "the inputs look swapped" when the LR-HSI `Raster` has fewer
    bands than the HR-MSI on a finer grid (smaller pixels, or more of them without a map
    grid), i.e. the multispectral image was given as the hyperspectral one."""
    if lr_hsi.shape[-1] >= hr_msi.shape[-1]:
        return
    if lr_hsi.transform is not None and hr_msi.transform is not None:
        if lr_hsi.crs and hr_msi.crs and not raster.same_crs(lr_hsi.crs, hr_msi.crs):
            return
        finer = all(a < b for a, b in zip(lr_hsi.pixel_size, hr_msi.pixel_size))
    else:
        finer = all(a > b for a, b in zip(lr_hsi.shape[:2], hr_msi.shape[:2]))
    if finer:
        raise ValueError(
            f"the inputs look swapped: the LR-HSI {lr_hsi.describe()} has fewer bands on a "
            f"finer grid than the HR-MSI {hr_msi.describe()}. Give the low-resolution "
            "hyperspectral image first and the high-resolution multispectral image second."
        )


def check_same_grid(a, b, what):
    """Raises a `ValueError` naming `what` when two `Raster`s differ in size or map grid."""
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(f"{what}: sizes differ: {a.describe()} vs {b.describe()}")
    if a.transform is not None and b.transform is not None:
        tol = 0.01 * min(a.pixel_size)
        if any(abs(x - y) > tol for x, y in zip(a.transform, b.transform)) or (
            a.crs and b.crs and not raster.same_crs(a.crs, b.crs)
        ):
            raise ValueError(f"{what}: grids differ: {a.describe()} vs {b.describe()}")


def reference_metrics(ref, est, valid, scale=None):
    """PSNR, SAM, RMSE (and ERGAS with `scale`) of `est` against `ref` `(H, W, C)` on the
    pixels where `valid` is True; SSIM too when every pixel is valid (it needs whole
    images). Returns `{name: float}`."""
    from keras_hsifusion import metrics

    values = {}
    if valid.all():
        r, e = ref.astype(np.float64), est.astype(np.float64)
        values["ssim"] = metrics.ssim(r, e)
    else:  # pixel-wise metrics on the valid pixels only
        r = ref[valid][None].astype(np.float64)
        e = est[valid][None].astype(np.float64)
    values.update(psnr=metrics.psnr(r, e), sam=metrics.sam(r, e), rmse=metrics.rmse(r, e))
    if scale:
        values["ergas"] = metrics.ergas(r, e, scale)
    return values


class _MaskedOut:
    """Forwards `out[r0:r1, c0:c1, :] = block` with nodata pixels set to `nodata`."""

    def __init__(self, target, valid, nodata):
        self.target, self.valid, self.nodata = target, valid, nodata
        self.shape, self.dtype, self.ndim = target.shape, target.dtype, 3

    def __setitem__(self, key, block):
        # `fuse` writes `out[r0:r1, c0:c1, :]`: three slices of step 1
        if not (isinstance(key, tuple) and len(key) == 3):
            raise TypeError(f"Expected out[r0:r1, c0:c1, :] = block. Received: {key!r}")
        (r0, r1, _), (c0, c1, _), (b0, b1, _) = (k.indices(n) for k, n in zip(key, self.shape))
        block = np.array(np.broadcast_to(block, (r1 - r0, c1 - c0, b1 - b0)), np.float32)
        block[~self.valid[r0:r1, c0:c1]] = self.nodata
        self.target[key] = block

    def __getitem__(self, key):
        return self.target[key]


def _output_paths(path):
    paths = [path]
    if path.lower().endswith(".hdr"):  # an ENVI output is two files
        paths.append(os.path.splitext(path)[0] + ".img")
    return paths


def check_output_path(name, path, overwrite, mat_version="5"):
    """Checks the output argument `name` before anything is read: refuses an existing file
    (unless `overwrite`), a missing folder, and for a raster (any `name` but `"preview"`,
    `"figure"` and `"json"`) an unsupported extension or a format whose library is missing;
    `preview` and `figure` must be `.png`. Returns the path as a string."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`{name}` must be a file path. Received: {name}={path!r}")
    path = os.fspath(path)
    for p in _output_paths(path):
        if os.path.exists(p) and not overwrite:
            raise FileExistsError(f"{p} exists; pass --overwrite (overwrite=True) to replace it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"the folder of the output {path} does not exist")
    if name in ("preview", "figure"):
        if not path.lower().endswith(".png"):
            raise ValueError(f"`{name}` must be a .png file. Received: {name}={path!r}")
        return path
    if name == "json":
        return path
    # A one-pixel writer, dropped at once: the extension, `mat_version` and the format's
    # library (rasterio, spectral) are checked by the writer itself.
    raster.open_writer(path, (1, 1, 1), mat_version=mat_version).abort()
    return path


def _check_int(name, value, least, allow_none=True):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"`{name}` must be an integer >= {least}. Received: {name}={value!r}")
    return int(value)


def _resolve(method):
    """`(method for fuse, name, kind, preset card or None)`. A preset is known by its card
    (read, not loaded: `fuse` loads the model once the inputs are known to fit it); a
    `.keras` file is loaded; an unknown name is `resolve_method`'s error, listing the
    choices."""
    from keras_hsifusion import baselines, presets

    if isinstance(method, (str, os.PathLike)):
        name = os.fspath(method)
        if name in baselines.METHODS:
            return name, name, "classical", None
        if not name.endswith(".keras"):
            try:
                card = presets.load_card(name)
            except (ValueError, FileNotFoundError):
                resolve_method(name)  # raises, naming the presets and classical methods
                raise
            return name, name, "model", card
        if not os.path.isfile(name):
            raise FileNotFoundError(f"No such model file: {name}")
        from keras_hsifusion.utils.files import load_keras_file

        method = load_keras_file(name, compile=False)
    resolved = resolve_method(method)
    return method, resolved.name, resolved.kind, getattr(method, "preset_card", None)


def _check_card(card, name, hsi, msi, scale):
    """The band counts and scale a preset's card asks for, before its model is loaded."""
    for key, wanted, got in (
        ("hsi_bands", card.get("hsi_bands"), hsi.shape[-1]),
        ("msi_bands", card.get("msi_bands"), msi.shape[-1]),
        ("scale", card.get("scale"), scale),
    ):
        if wanted is not None and wanted != got:
            raise ValueError(
                f"The preset {name!r} needs {key}={wanted}, but the pair {hsi.describe()} + "
                f"{msi.describe()} (scale {scale}) has {got}"
            )


def _check_inputs_exist(**paths):
    for name, path in paths.items():
        if path is None:
            continue
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"`{name}` must be a file path. Received: {name}={path!r}")
        if not os.path.exists(path):
            raise FileNotFoundError(f"No such file: {os.fspath(path)}")


def _preview(path, source, wavelengths, bands):
    """A false-colour PNG of three bands of `source`, read back from disk."""
    bands, name = raster.false_colour_bands(wavelengths, bands)
    picked = raster.read_raster(source, bands=bands)
    rgb, valid = picked.array, picked.valid_mask()
    step = max(1, -(-max(rgb.shape[:2]) // PREVIEW_SIDE))
    raster.write_png(path, raster.false_colour(rgb[::step, ::step], valid[::step, ::step]))
    return name


def fuse_files(
    lr_hsi,
    hr_msi,
    output,
    method,
    *,
    scale=None,
    tile=None,
    overlap=None,
    batch_size=1,
    sensor=None,
    psf_fwhm=None,
    hsi_key=None,
    msi_key=None,
    mat_version="5",
    preview=None,
    reference=None,
    reference_key=None,
    overwrite=False,
    progress=None,
    log=None,
):
    """Fuses an LR-HSI file with an HR-MSI file into a georeferenced file (`khf fuse`).

    In order: every argument is checked (the outputs' extensions, folders and existence,
    `tile`, `overlap`, `batch_size`, `scale`, the method (a preset or `.keras` model is
    loaded), `sensor`, `psf_fwhm`, that the inputs exist); then both inputs
    are read; swapped inputs are reported as such (`check_not_swapped`); the footprints are
    checked (`raster.check_footprints`: same CRS, integer pixel-size ratio, aligned origins;
    the scale); a preset's band centres are checked against the LR-HSI's wavelengths (a
    `UserWarning` when the LR-HSI has none, so the check cannot run); nodata pixels of each
    input are filled with its band means and the HR pixels under a nodata pixel of either
    input are written as nodata (the LR-HSI's nodata value, else the HR-MSI's, else NaN);
    the fusion (`khf.fuse`) is written tile row by tile row through
    `raster.open_writer`, on the HR-MSI grid (`hr_grid`) with the LR-HSI's wavelengths and
    band names, to a temporary file renamed when complete: an error or a Ctrl-C leaves no
    file and an existing one untouched. See docs/cli.md, "khf fuse".

    Args:
        lr_hsi: path of the low-resolution hyperspectral image (GeoTIFF, ENVI `.hdr`, HDF5,
            `.mat`, `.npz`, `.npy`).
        hr_msi: path of the high-resolution multispectral image.
        output: path of the fused image; the format follows the extension.
        method: a preset name or folder, a `.keras` file, a `FusionModel` or a classical
            method name (`keras_hsifusion.baselines.METHODS`).
        scale: the expected resolution ratio (the files give it; a different one is an
            error). Default None.
        tile, overlap, batch_size: tiling of `khf.fuse` (defaults per method).
        sensor: MSI sensor name (`keras_hsifusion.data.list_sensors()`) whose spectral
            response a classical method uses; needs the LR-HSI's wavelengths.
        psf_fwhm: PSF FWHM in HR pixels for classical methods that use one.
        hsi_key, msi_key: array names inside `.h5`/`.mat`/`.npz` inputs.
        mat_version: `"5"` or `"7.3"` for a `.mat` output.
        preview: optional `.png` path: a false-colour view of the output (`raster.
            false_colour`), read back from the written file.
        reference: optional path of the true HR-HSI on the output's grid: PSNR, SAM, RMSE,
            ERGAS (and SSIM without nodata) of the output against it, on the valid pixels.
        reference_key: array name inside a `.h5`/`.mat`/`.npz` reference.
        overwrite: replace existing outputs. Default False (a `FileExistsError`).
        progress: progress of the tiles on stderr; None: when stderr is a terminal.
        log: optional callable taking one line (what was read, nodata, notes).

    Returns:
        A dict: `output`, `shape` `(H, W, C)`, `scale`, `method`, `backend` (Keras'),
        `nodata_pixels`, `seconds`, `preview` (the PNG's path or None), `preview_bands`
        (the false-colour combination) and `metrics` (against `reference`, or None).

    Raises:
        ValueError / TypeError: a bad argument (naming it and the value), swapped inputs,
            footprints that disagree, a preset's wavelengths or band counts.
        FileNotFoundError / FileExistsError: a missing input or output folder, an existing
            output without `overwrite`.
    """
    say = log or (lambda message: None)
    t0 = time.time()
    # -- every argument, before reading anything
    output = check_output_path("output", output, overwrite, mat_version)
    if preview is not None:
        preview = check_output_path("preview", preview, overwrite)
    tile = tile if isinstance(tile, (tuple, list)) else _check_int("tile", tile, 1)
    overlap = _check_int("overlap", overlap, 0)
    batch_size = _check_int("batch_size", batch_size, 1, allow_none=False)
    scale = _check_int("scale", scale, 1)
    method, name, kind, card = _resolve(method)
    if (sensor is not None or psf_fwhm is not None) and kind != "classical":
        raise ValueError(
            f"`sensor` (--sensor) and `psf_fwhm` (--psf-fwhm) apply to classical methods only; "
            f"{name} is a model, which learned its sensor from its training data"
        )
    if sensor is not None:
        from keras_hsifusion.data import list_sensors

        if sensor not in list_sensors():
            raise ValueError(
                f"Unknown `sensor`. Expected one of {list_sensors()}. Received: sensor={sensor!r}"
            )
    if psf_fwhm is not None and not (
        isinstance(psf_fwhm, numbers.Real) and math.isfinite(psf_fwhm) and psf_fwhm > 0
    ):
        raise ValueError(f"`psf_fwhm` must be a positive number. Received: psf_fwhm={psf_fwhm!r}")
    _check_inputs_exist(lr_hsi=lr_hsi, hr_msi=hr_msi, reference=reference)
    # -- the inputs
    hsi = raster.read_raster(lr_hsi, key=hsi_key)
    msi = raster.read_raster(hr_msi, key=msi_key)
    check_not_swapped(hsi, msi)
    scale = raster.check_footprints(hsi, msi, scale=scale)
    say(f"LR-HSI {hsi.describe()}")
    say(f"HR-MSI {msi.describe()}; scale {scale}")
    if card is not None and card.get("hsi_wavelengths_nm") is not None:
        if hsi.wavelengths is None:
            warnings.warn(
                f"The LR-HSI {hsi.path} has no wavelengths, so its bands cannot be checked "
                f"against the band centres of the preset {card.get('name', name)!r} "
                "(`hsi_wavelengths_nm` of its card): make sure they are the same sensor's",
                UserWarning,
                stacklevel=2,
            )
        else:
            from keras_hsifusion import presets

            presets.check_wavelengths(card, hsi.wavelengths, name="LR-HSI")
    if card is not None:
        _check_card(card, card.get("name", name), hsi, msi, scale)
    srf = None
    if sensor is not None:
        from keras_hsifusion.data import spectral_response

        if hsi.wavelengths is None:
            raise ValueError(f"`sensor` needs the wavelengths of the LR-HSI {hsi.path}")
        srf = spectral_response(sensor, hsi.wavelengths)
    lr_valid, hr_valid = hsi.valid_mask(), msi.valid_mask()
    valid = hr_valid & np.repeat(np.repeat(lr_valid, scale, axis=0), scale, axis=1)
    nodata = hsi.nodata if hsi.nodata is not None else msi.nodata
    if nodata is None and not valid.all():
        nodata = float("nan")
    holes = int((~valid).sum())
    if holes:
        say(f"{holes} HR pixels are nodata in an input; they stay nodata ({nodata})")
    lr, hr = neutral_fill(hsi.array, lr_valid), neutral_fill(msi.array, hr_valid)
    crs, transform = hr_grid(hsi, msi, scale)
    shape = (msi.shape[0], msi.shape[1], hsi.shape[-1])
    if output.lower().endswith(".npy") and (transform is not None or hsi.wavelengths is not None):
        say(f"note: {output}: .npy files keep no georeferencing or wavelengths")
    import keras

    backend = keras.backend.backend()
    say(f"method {name}, Keras backend {backend}")
    # -- the fusion, written atomically
    with raster.open_writer(
        output,
        shape,
        crs=crs,
        transform=transform,
        nodata=nodata,
        wavelengths=hsi.wavelengths,
        band_names=hsi.band_names,
        mat_version=mat_version,
    ) as writer:
        out = writer if valid.all() else _MaskedOut(writer, valid, nodata)
        fuse(
            lr,
            hr,
            method,
            scale=scale,
            tile=tile,
            overlap=overlap,
            batch_size=batch_size,
            progress=progress,
            out=out,
            srf=srf,
            psf_fwhm=psf_fwhm,
        )
    result = {
        "output": output,
        "shape": shape,
        "scale": scale,
        "method": name,
        "backend": backend,
        "nodata_pixels": holes,
        "seconds": time.time() - t0,
        "preview": None,
        "preview_bands": None,
        "metrics": None,
    }
    if preview is not None:
        result["preview_bands"] = _preview(preview, output, hsi.wavelengths, shape[-1])
        result["preview"] = preview
    if reference is not None:
        ref = raster.read_raster(reference, key=reference_key)
        fused = raster.read_raster(output)
        if ref.shape != fused.shape:
            raise ValueError(f"shapes differ: {fused.describe()} vs {ref.describe()}")
        check_same_grid(fused, ref, "output and reference")
        both = fused.valid_mask() & ref.valid_mask()
        result["metrics"] = reference_metrics(ref.array, fused.array, both, scale)
    return result
