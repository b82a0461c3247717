"""Quicklooks: false-colour band choice, percentile stretch and a dependency-free PNG writer."""

import numpy as np

from keras_hsifusion.data.raster.writer import umask_mode

__all__ = ["false_colour", "false_colour_bands", "write_png"]


def false_colour_bands(wavelengths, bands):
    """Three band indices for a false-colour view, and the name of the combination.

    Colour-infrared (860, 650, 550 nm as R, G, B; vegetation shows red) when the
    wavelengths reach 800 nm, true colour (650, 550, 460 nm) when they cover the visible
    only, and bands at 3/4, 1/2 and 1/4 of the cube without wavelengths.

    Args:
        wavelengths: `(C,)` band centres in nm, or None.
        bands: number of bands C.

    Returns:
        `(indices, description)`.
    """
    if bands < 3:
        return [0] * 3 if bands == 1 else [1, 0, 0], "grey"
    if wavelengths is None:
        return [(3 * bands) // 4, bands // 2, bands // 4], "bands at 3/4, 1/2, 1/4"
    wl = np.asarray(wavelengths, np.float64)
    targets, name = ((860.0, 650.0, 550.0), "CIR 860/650/550 nm")
    if wl.max() < 800.0:
        targets, name = ((650.0, 550.0, 460.0), "RGB 650/550/460 nm")
    return [int(np.argmin(np.abs(wl - t))) for t in targets], name


def false_colour(rgb_bands, valid=None, reference=None):
    """Stretches three bands to uint8 RGB between the 1st and 99th percentiles.

    Args:
        rgb_bands: `(H, W, 3)` array (the three bands of `false_colour_bands`).
        valid: optional `(H, W)` bool; invalid pixels are black and ignored by the stretch.
        reference: optional `(H', W', 3)` array whose percentiles set the stretch.

    Returns:
        uint8 `(H, W, 3)`.
    """
    x = np.asarray(rgb_bands, np.float64)
    ref = x if reference is None else np.asarray(reference, np.float64)
    pixels = ref.reshape(-1, 3)
    if valid is not None and reference is None:
        pixels = pixels[np.asarray(valid).reshape(-1)]
    pixels = pixels[np.isfinite(pixels).all(axis=1)]
    if pixels.size == 0:
        return np.zeros(x.shape[:2] + (3,), np.uint8)
    lo, hi = np.percentile(pixels, 1, axis=0), np.percentile(pixels, 99, axis=0)
    out = np.clip((x - lo) / np.maximum(hi - lo, 1e-12), 0.0, 1.0)
    out = np.nan_to_num(out, nan=0.0)
    if valid is not None:
        out[~np.asarray(valid)] = 0.0
    return np.round(out * 255.0).astype(np.uint8)


def write_png(path, rgb):
    """Writes an 8-bit `(H, W, 3)` (or `(H, W)`) image as PNG with zlib only, atomically."""
    import struct
    import zlib

    from keras_hsifusion.utils.files import atomic_path

    img = np.asarray(rgb)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.ndim != 3 or img.shape[-1] != 3 or img.dtype != np.uint8:
        raise ValueError(f"`rgb` must be uint8 (H, W, 3). Received {img.dtype} {img.shape}")
    h, w, _ = img.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, w * 3)], axis=1)

    def chunk(tag, data):
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
        + chunk(b"IEND", b"")
    )
    with atomic_path(path, ".png") as tmp:
        with open(tmp, "wb") as f:
            f.write(png)
        umask_mode(tmp)
