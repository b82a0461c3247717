"""Derives the small spectral tables shipped in ``keras_hsifusion/data/`` (run once, offline).

Not part of the package. Run it from the repository root with a Python that has ``pyrsr``,
``colour-science`` and ``spectral`` installed (they are only needed here, never at run time)::

    python tools/derive_tables.py keras_hsifusion/data

It writes:

- ``srf_tables.npz``: for each sensor, ``<sensor>/wavelengths`` (N,) in nm on a regular grid,
  ``<sensor>/response`` (N, k) float32, the published relative spectral responses linearly
  resampled onto that grid (zero outside a band's published range, values as published, no
  normalisation), and ``<sensor>/bands`` (k,) band names.
- ``indian_pines_bands.npz``: ``centers_nm``, ``fwhm_nm`` (200,) and ``aviris_index`` (200,)
  the 1-based rows of the 220-band AVIRIS calibration file ``92AV3C.spc`` that the corrected
  Indian Pines cube keeps (rows 104-108, 150-163 and 220 are the water-absorption bands it drops).

Sources (see ``README.md`` beside the tables for licences and credits).
"""

import os
import sys

import numpy as np


def _on_grid(wl, resp, grid):
    out = np.interp(grid, wl, resp, left=0.0, right=0.0)
    return np.clip(out, 0.0, None)


def _pyrsr_sensor(satellite, sensor, bands, scale_to_nm, start, stop):
    import pyrsr

    root = os.path.join(os.path.dirname(pyrsr.__file__), "data", satellite, sensor)
    grid = np.arange(start, stop + 1, 1.0)
    cols = []
    for b in bands:
        data = np.loadtxt(os.path.join(root, f"band_{b}"), skiprows=1)
        cols.append(_on_grid(data[:, 0] * scale_to_nm, data[:, 1], grid))
    return grid, np.stack(cols, axis=1), [f"B{b}" for b in bands]


def derive_srf_tables():
    import colour

    tables = {}
    # Sentinel-2A MSI (ESA S2-SRF_COPE-GSEG-EOPG-TN-15-0007 v3.0), via pyrsr.
    tables["sentinel2a-10m"] = _pyrsr_sensor(
        "Sentinel-2A", "MSI", ["2", "3", "4", "8"], 1, 400, 1000
    )
    s2 = ["1", "2", "3", "4", "5", "6", "7", "8", "8A", "11", "12"]  # pyrsr's after_ac set
    tables["sentinel2a"] = _pyrsr_sensor("Sentinel-2A", "MSI", s2, 1, 400, 2400)
    # Landsat 8 OLI (NASA Ball_BA_RSR v1.2), files in micrometres; bands 1-7 (no pan, no cirrus).
    l8 = ["1", "2", "3", "4", "5", "6", "7"]
    tables["landsat8-oli"] = _pyrsr_sensor("Landsat-8", "OLI_TIRS", l8, 1000.0, 400, 2400)
    # Cameras and the CIE observer from colour-science.
    nikon = colour.MSDS_CAMERA_SENSITIVITIES["Nikon 5100 (NPL)"]  # labels red, green, blue
    tables["nikon5100-rgb"] = (nikon.wavelengths, nikon.values, ["R", "G", "B"])
    import colour.characterisation as char

    csv = os.path.join(
        os.path.dirname(char.__file__),
        "datasets",
        "rawtoaces",
        "CANON_EOS_5DMark_II_RGB_Sensitivities.csv",
    )
    canon = np.loadtxt(csv, delimiter=",", skiprows=1)
    tables["canon5dmk2-rgb"] = (canon[:, 0], canon[:, 1:4], ["R", "G", "B"])
    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]
    tables["cie1931-xyz"] = (cmfs.wavelengths, cmfs.values, ["X", "Y", "Z"])
    out = {}
    for name, (grid, resp, bands) in tables.items():
        out[f"{name}/wavelengths"] = np.asarray(grid, np.float32)
        out[f"{name}/response"] = np.asarray(resp, np.float32)
        out[f"{name}/bands"] = np.asarray(bands, dtype="U8")
    return out


def derive_indian_pines_bands():
    import spectral
    from spectral.io.aviris import read_aviris_bands

    spc = os.path.join(os.path.dirname(spectral.__file__), "tests", "data", "92AV3C.spc")
    info = read_aviris_bands(spc)
    centers = np.asarray(info.centers, np.float64)
    fwhm = np.asarray(info.bandwidths, np.float64)
    dropped = set(range(104, 109)) | set(range(150, 164)) | {220}
    keep = np.array([i for i in range(1, 221) if i not in dropped])
    return {
        "centers_nm": centers[keep - 1],
        "fwhm_nm": fwhm[keep - 1],
        "aviris_index": keep.astype(np.int32),
    }


if __name__ == "__main__":
    default = os.path.join(os.path.dirname(__file__), os.pardir, "keras_hsifusion", "data")
    dest = sys.argv[1] if len(sys.argv) > 1 else os.path.normpath(default)
    np.savez_compressed(os.path.join(dest, "srf_tables.npz"), **derive_srf_tables())
    np.savez_compressed(os.path.join(dest, "indian_pines_bands.npz"), **derive_indian_pines_bands())
    print("wrote", dest)
