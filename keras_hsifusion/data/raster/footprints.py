"""Where a raster lies on the ground: CRS comparison, ENVI map info, footprint checks.

`check_footprints(lr_hsi, hr_msi)` checks that two `Raster`s cover the same ground on grids
whose pixel sizes are an integer ratio apart, and returns that ratio. `envi_georef` and
`envi_map_info` convert between an ENVI header's `map info` / `coordinate system string` and
the `(crs, transform)` of the raster model (`model.py`).
"""

import math
import re

__all__ = ["check_footprints", "envi_georef", "envi_map_info", "normalise_crs", "same_crs"]


def normalise_crs(crs):
    """`"EPSG:<code>"` when rasterio can identify the CRS, else the string as given."""
    if not crs:
        return None
    try:
        from rasterio.crs import CRS

        return CRS.from_user_input(crs).to_string()
    except Exception:  # no rasterio, or a string it cannot parse
        return crs


def same_crs(a, b):
    """True when the CRS strings `a` and `b` name the same system (rasterio compares WKT)."""
    if a == b:
        return True
    if a is None or b is None:
        return False
    try:
        from rasterio.crs import CRS

        return CRS.from_user_input(a) == CRS.from_user_input(b)
    except Exception:  # no rasterio, or a string it cannot parse: compare the text
        return " ".join(str(a).split()) == " ".join(str(b).split())


_UTM = {"north": 32600, "south": 32700}


def envi_georef(meta):
    """`(crs, transform)` from ENVI `map info` / `coordinate system string` (or Nones)."""
    info = meta.get("map info")
    crs = meta.get("coordinate system string")
    if isinstance(crs, list):
        crs = ",".join(crs)
    crs = crs.strip().strip("{}").strip() if crs else None
    if not info:
        return crs, None
    if isinstance(info, str):
        info = info.strip("{}").split(",")
    info = [s.strip() for s in info]
    try:
        ref_x, ref_y, east, north, px, py = (float(v) for v in info[1:7])
    except (ValueError, IndexError):
        return crs, None
    rotation = 0.0
    for item in info[7:]:
        if item.lower().startswith("rotation="):
            rotation = float(item.split("=", 1)[1])
    theta = math.radians(rotation)
    a, b = px * math.cos(theta), py * math.sin(theta)
    d, e = px * math.sin(theta), -py * math.cos(theta)
    # ENVI's reference pixel is 1-based and names the pixel's top-left corner
    c = east - (ref_x - 1) * a - (ref_y - 1) * b
    f = north - (ref_x - 1) * d - (ref_y - 1) * e
    if crs is None and info[0].upper() == "UTM" and len(info) >= 10:
        datum = info[9].upper().replace(" ", "")
        if datum in ("WGS-84", "WGS84"):
            crs = f"EPSG:{_UTM.get(info[8].lower(), 32600) + int(float(info[7]))}"
    return crs, (a, b, c, d, e, f)


def envi_map_info(transform, crs):
    """ENVI header entries `map info` and `coordinate system string` of a grid ({} without a
    transform); UTM/WGS-84 EPSG codes are written as ENVI's `UTM` projection."""
    if transform is None:
        return {}
    meta = {}
    a, b, c, d, e, f = transform
    if abs(b) > 1e-12 or abs(d) > 1e-12:
        px, py = math.hypot(a, d), math.hypot(b, e)
        rotation = f", rotation={math.degrees(math.atan2(d, a)):.10g}"
    else:
        px, py, rotation = a, -e, ""
    name, extra = "Arbitrary", ""
    if crs and re.fullmatch(r"EPSG:32[67]\d\d", crs):
        code = int(crs.split(":")[1])
        hemi = "North" if code < 32700 else "South"
        name, extra = "UTM", f", {code % 100}, {hemi}, WGS-84"
    meta["map info"] = (
        f"{{{name}, 1, 1, {c:.10g}, {f:.10g}, {px:.10g}, {py:.10g}{extra}{rotation}}}"
    )
    if crs:
        wkt = crs
        try:
            from rasterio.crs import CRS

            wkt = CRS.from_user_input(crs).to_wkt()
        except Exception:  # no rasterio: keep the string as given
            pass
        meta["coordinate system string"] = f"{{{wkt}}}"
    return meta


def _scale_from_sizes(hsi, msi):
    (h, w), (H, W) = hsi.shape[:2], msi.shape[:2]
    if H % h or W % w or H // h != W // w:
        raise ValueError(
            f"The HR-MSI is not an integer multiple of the LR-HSI: {msi.describe()} vs "
            f"{hsi.describe()}."
        )
    return H // h


def check_footprints(lr_hsi, hr_msi, scale=None):
    """Checks that two rasters cover the same ground and returns the resolution ratio.

    With a transform on both: the CRSs must agree (when both are known), the ratio of pixel
    sizes must be the same integer on both axes, `lr_hsi.transform` must equal
    `hr_msi.transform` with its pixel size multiplied by that ratio (origins within 1% of an
    HR pixel), and the HR size must be the ratio times the LR size. Without a transform on
    one of them, only the sizes are checked.

    Args:
        lr_hsi: `Raster` of the low-resolution HSI.
        hr_msi: `Raster` of the high-resolution MSI.
        scale: optional expected ratio; a different inferred ratio is an error.

    Returns:
        The integer scale.

    Raises:
        ValueError: naming both files, their grids and what differs.
    """
    both = f"LR-HSI {lr_hsi.describe()} and HR-MSI {hr_msi.describe()}"
    if lr_hsi.transform is None or hr_msi.transform is None:
        inferred = _scale_from_sizes(lr_hsi, hr_msi)
    else:
        if lr_hsi.crs and hr_msi.crs and not same_crs(lr_hsi.crs, hr_msi.crs):
            raise ValueError(f"Footprints disagree: different CRS for {both}.")
        (lx, ly), (mx, my) = lr_hsi.pixel_size, hr_msi.pixel_size
        sx, sy = lx / mx, ly / my
        inferred = round(sx)
        if abs(sx - inferred) > 1e-6 * sx or abs(sy - inferred) > 1e-6 * sy or inferred < 1:
            raise ValueError(
                f"Footprints disagree: pixel sizes are not an integer ratio (x {sx:g}, "
                f"y {sy:g}) for {both}."
            )
        a, b, c, d, e, f = hr_msi.transform
        s = inferred
        expected = (a * s, b * s, c, d * s, e * s, f)
        tol_lin = 1e-6 * max(lx, ly)
        tol_origin = 0.01 * min(mx, my)
        lin_ok = all(abs(x - y) <= tol_lin for x, y in zip(expected[::3], lr_hsi.transform[::3]))
        lin_ok &= all(abs(x - y) <= tol_lin for x, y in zip(expected[1::3], lr_hsi.transform[1::3]))
        dx = lr_hsi.transform[2] - c
        dy = lr_hsi.transform[5] - f
        if not lin_ok:
            raise ValueError(
                f"Footprints disagree: the LR-HSI grid is not the HR-MSI grid x {s} (rotation "
                f"or axis direction differs) for {both}."
            )
        if abs(dx) > tol_origin or abs(dy) > tol_origin:
            raise ValueError(
                f"Footprints disagree: origins differ by ({dx:g}, {dy:g}) map units for {both}."
            )
        (h, w), (H, W) = lr_hsi.shape[:2], hr_msi.shape[:2]
        if (H, W) != (s * h, s * w):
            raise ValueError(
                f"Footprints disagree: with scale {s} the HR-MSI should be {s * h}x{s * w} px "
                f"for {both}."
            )
    if scale is not None and int(scale) != inferred:
        raise ValueError(f"`scale`={scale} but the files give scale {inferred}: {both}.")
    return inferred
