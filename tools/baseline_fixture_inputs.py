"""Makes the small real input pair of the classical-baseline golden fixtures (deterministic).

Not part of the package. Run it from the repository root (it needs the ``datasets`` extra,
``tensorly``, for the Indian Pines cube)::

    python tools/baseline_fixture_inputs.py [tests/fixtures/baselines]

It writes ``inputs.npz`` (the x4 pair every classical-baseline fixture uses) and
``inputs_x3.npz`` (a smaller x3 pair for the odd-ratio branches of the reference code).

The pair follows the training protocol (``keras_hsifusion.evaluation.protocol.build_data``) on a
smaller cut, so that the reference MATLAB code run under GNU Octave stays fast:

- the Indian Pines cube (``keras_hsifusion.data.indian_pines``, divided by its maximum),
  rows and columns ``40:104`` (a 64 x 64 HR crop inside the 144 x 144 protocol crop) and every
  5th band (``0, 5, ..., 195``: 40 bands);
- ``srf``: ``spectral_response("sentinel2a-10m", wavelengths)`` on those 40 band centres
  (Sentinel-2A B2, B3, B4, B8; every column sums to 1), so that ``hr_msi = hr_hsi @ srf``
  holds exactly for the stored arrays (the protocol's MSI sees all 200 bands; a fixture whose
  SRF is the one that made its MSI is what SRF-aware methods need);
- ``keras_hsifusion.data.degrade(hr_hsi, scale=4, srf, psf_fwhm=4.0)``: Gaussian PSF with
  FWHM = scale HR pixels, decimation by 4, no noise.

``inputs_x3.npz``: the same with rows and columns ``40:76`` (36 x 36), every 5th of the
first 100 bands (20 bands, 400-1340 nm, which Sentinel-2A B2, B3, B4, B8 fall in), scale 3
and ``psf_fwhm=3.0``.

Stored (float32 unless said): ``hr_hsi`` (64, 64, 40) the reference, ``lr_hsi`` (16, 16, 40),
``hr_msi`` (64, 64, 4), ``srf`` (40, 4) float64, ``wavelengths`` (40,) float64 nm,
``band_index`` (40,) int (0-based bands of the 200-band cube), ``crop`` int (4,)
``(row0, row1, col0, col1)``, ``scale`` int, ``psf_fwhm`` float, ``sensor`` str.
Other fixture scripts may add their own per-method initialisations to their own files.
"""

import os
import sys

import numpy as np

SENSOR = "sentinel2a-10m"
# name: (rows, cols, bands (start, stop, step) of the 200, scale, psf_fwhm)
PAIRS = {
    "inputs": ((40, 104), (40, 104), (0, 200, 5), 4, 4.0),
    "inputs_x3": ((40, 76), (40, 76), (0, 100, 5), 3, 3.0),
}
DEFAULT_DIR = os.path.join("tests", "fixtures", "baselines")


def make_inputs(name="inputs"):
    """The fixture pair `name` (a key of `PAIRS`) as a dict of numpy arrays."""
    from keras_hsifusion import data as khf_data

    (r0, r1), (c0, c1), band_range, scale, psf_fwhm = PAIRS[name]
    cube, wavelengths = khf_data.indian_pines()
    bands = np.arange(*band_range)
    hr = np.ascontiguousarray(cube[r0:r1, c0:c1][..., bands]).astype(np.float32)
    wl = wavelengths[bands].astype(np.float64)
    srf = khf_data.spectral_response(SENSOR, wl)
    lr, msi = khf_data.degrade(hr, scale, srf, psf_fwhm=psf_fwhm)
    return {
        "hr_hsi": hr,
        "lr_hsi": np.asarray(lr, dtype=np.float32),
        "hr_msi": np.asarray(msi, dtype=np.float32),
        "srf": np.asarray(srf, dtype=np.float64),
        "wavelengths": wl,
        "band_index": bands.astype(np.int64),
        "crop": np.array([r0, r1, c0, c1], dtype=np.int64),
        "scale": np.int64(scale),
        "psf_fwhm": np.float64(psf_fwhm),
        "sensor": np.array(SENSOR),
    }


def main(argv):
    out_dir = argv[1] if len(argv) > 1 else DEFAULT_DIR
    os.makedirs(out_dir, exist_ok=True)
    for name in PAIRS:
        out = os.path.join(out_dir, f"{name}.npz")
        arrays = make_inputs(name)
        np.savez_compressed(out, **arrays)
        shapes = {k: v.shape for k, v in arrays.items()}
        print(f"wrote {out} ({os.path.getsize(out)} bytes): {shapes}")


if __name__ == "__main__":
    main(sys.argv)
