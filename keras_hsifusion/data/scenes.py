"""Real sample scenes that come from installed PyPI packages (no download at run time)."""

import importlib.util
import os

import numpy as np

__all__ = ["indian_pines", "indian_pines_bands"]

_BANDS = os.path.join(os.path.dirname(__file__), "indian_pines_bands.npz")
TENSORLY_VERSION = "0.10.0"


def indian_pines_bands():
    """Band centres and FWHMs (nm) of the 200 bands of the corrected Indian Pines cube.

    From the AVIRIS calibration file `92AV3C.spc` shipped with the `spectral` package (220
    bands), dropping the 1-based bands 104-108, 150-163 and 220 (water absorption), as the
    corrected cube does. The derived table is committed (`indian_pines_bands.npz`); see
    `README.md` in this folder. (The wavelength list inside `tensorly` is the 220-band list
    truncated to 200 entries and is wrong past its index 102.)

    Returns:
        `(centers_nm, fwhm_nm)`, two float64 arrays `(200,)`.
    """
    with np.load(_BANDS) as data:
        return data["centers_nm"].astype(np.float64), data["fwhm_nm"].astype(np.float64)


def indian_pines():
    """The AVIRIS Indian Pines corrected cube, normalised to [0, 1], and its band centres.

    145 x 145 pixels, 200 bands (400-2500 nm, water-absorption bands removed), recorded by
    AVIRIS on 12 June 1992 over the Purdue University Agronomy farm, Indiana. The cube is
    read from the `tensorly` package (`tensorly/datasets/data/Indian_pines_corrected.npy`,
    verified with tensorly 0.10.0; install it with `pip install keras-hsifusion[datasets]`)
    and divided by its maximum.

    Data licence: CC BY 3.0. Credit: Baumgardner, M. F., Biehl, L. L., Landgrebe, D. A.
    (2015). 220 Band AVIRIS Hyperspectral Image Data Set: June 12, 1992 Indian Pine Test
    Site 3. Purdue University Research Repository. doi:10.4231/R7RX991C

    Returns:
        `(cube, wavelengths_nm)`: float32 `(145, 145, 200)` in [0, 1] and float64 `(200,)`
        band centres (see `indian_pines_bands`).

    Examples:
    >>> cube, wl = indian_pines()
    >>> cube.shape, wl[[0, -1]].round(2)
    ((145, 145, 200), array([ 400.02, 2489.11]))
    """
    spec = importlib.util.find_spec("tensorly")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "`indian_pines()` reads the cube shipped in the `tensorly` package. Install it with "
            f"`pip install keras-hsifusion[datasets]` (tensorly=={TENSORLY_VERSION})."
        )
    path = os.path.join(
        spec.submodule_search_locations[0], "datasets", "data", "Indian_pines_corrected.npy"
    )
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"The installed tensorly has no Indian Pines cube at {path}. "
            f"Install tensorly=={TENSORLY_VERSION}."
        )
    raw = np.load(path)
    if raw.shape != (145, 145, 200):
        raise ValueError(f"Unexpected Indian Pines cube in {path}: shape {raw.shape}")
    cube = raw.astype(np.float32)
    cube /= cube.max()
    return cube, indian_pines_bands()[0]
