import os

import h5py
import numpy as np
import pytest
import scipy.io

from keras_hsifusion import data

# numpy only: runs once, under the first backend of `make test` (tests/conftest.py)
pytestmark = pytest.mark.backend_independent


@pytest.fixture
def cube():
    return np.random.default_rng(0).uniform(0, 1, (6, 5, 4)).astype("float32")


WL = np.array([450.0, 550.0, 650.0, 850.0])


@pytest.mark.parametrize("ext", [".mat", ".npz", ".h5", ".hdf5"])
def test_round_trip_with_wavelengths(tmp_path, cube, ext):
    path = tmp_path / f"scene{ext}"
    data.write_cube(path, cube, wavelengths=WL, key="hsi")
    got, wl = data.read_cube(path)
    assert got.dtype == np.float32 and got.shape == (6, 5, 4)
    np.testing.assert_array_equal(got, cube)
    np.testing.assert_array_equal(wl, WL)
    got, _ = data.read_cube(path, key="hsi")
    np.testing.assert_array_equal(got, cube)


def test_npy_chw_layout_and_2d(tmp_path, cube):
    np.save(tmp_path / "a.npy", np.moveaxis(cube, -1, 0))
    got, wl = data.read_cube(tmp_path / "a.npy", layout="chw")
    np.testing.assert_array_equal(got, cube)
    assert wl is None
    np.save(tmp_path / "b.npy", cube[..., 0].astype("uint16"))
    got, _ = data.read_cube(tmp_path / "b.npy")
    assert got.shape == (6, 5, 1) and got.dtype == np.float32


def test_matlab_v73_is_read_in_matlab_order(tmp_path, cube):
    path = tmp_path / "v73.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        # MATLAB stores column-major: an (H, W, C) variable appears as (C, W, H) in HDF5
        f.create_dataset("hsi", data=cube.T)
        f.create_dataset("wavelengths", data=WL[None, :].T)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(124, b" ") + b"\x00\x02IM")
    with pytest.raises(NotImplementedError):
        scipy.io.loadmat(path)  # what scipy says about such a file
    got, wl = data.read_cube(path)
    np.testing.assert_array_equal(got, cube)
    np.testing.assert_array_equal(wl, WL)


def test_several_cubes_need_a_key(tmp_path, cube):
    path = tmp_path / "two.npz"
    np.savez(path, a=cube, b=cube)
    with pytest.raises(ValueError, match="key"):
        data.read_cube(path)
    with pytest.raises(KeyError, match="'c'"):
        data.read_cube(path, key="c")


def test_hssdct_official_layout(tmp_path, cube):
    rng = np.random.default_rng(1)
    msi4, msi6 = rng.uniform(size=(6, 5, 4)), rng.uniform(size=(6, 5, 6))
    lr = rng.uniform(size=(3, 2, 4))
    prefix = str(tmp_path / "train_Cashin_18")
    data.write_hssdct_sample(prefix, cube, lr, {4: msi4, 6: msi6})
    assert sorted(os.listdir(tmp_path)) == [
        "train_Cashin_18GT.npz.npy",
        "train_Cashin_18hrmsi.npz",
        "train_Cashin_18lrhsi.npz",
    ]
    with np.load(prefix + "hrmsi.npz") as f:
        assert sorted(f.files) == ["hrmsi4", "hrmsi6"]
    sample = data.read_hssdct_sample(prefix, msi_bands=6)
    np.testing.assert_array_equal(sample["hr_hsi"], cube)
    np.testing.assert_allclose(sample["hr_msi"], msi6, rtol=1e-6)
    np.testing.assert_allclose(sample["lr_hsi"], lr, rtol=1e-6)
    # a folder holding GT.npz.npy, lrhsi.npz, hrmsi.npz works too
    folder = tmp_path / "scene"
    folder.mkdir()
    data.write_hssdct_sample(folder, cube, lr, msi4)
    assert data.read_hssdct_sample(folder)["hr_msi"].shape == (6, 5, 4)


def test_envi_round_trip(tmp_path, cube):
    pytest.importorskip("spectral")
    path = tmp_path / "scene.hdr"
    data.write_cube(path, cube, wavelengths=WL)
    got, wl = data.read_cube(path)
    np.testing.assert_array_equal(got, cube)
    np.testing.assert_allclose(wl, WL)


def test_tiff_contiguous_and_planar(tmp_path, cube):
    tifffile = pytest.importorskip("tifffile")
    data.write_cube(tmp_path / "a.tif", cube)
    np.testing.assert_array_equal(data.read_cube(tmp_path / "a.tif")[0], cube)
    tifffile.imwrite(tmp_path / "b.tiff", np.moveaxis(cube, -1, 0), photometric="minisblack")
    np.testing.assert_array_equal(data.read_cube(tmp_path / "b.tiff")[0], cube)


@pytest.mark.parametrize("ext", [".npy", ".npz", ".mat", ".h5", ".tif"])
def test_truncated_files_raise_naming_the_file(tmp_path, cube, ext):
    if ext == ".tif":
        pytest.importorskip("tifffile")
    path = tmp_path / f"broken{ext}"
    data.write_cube(path, np.tile(cube, (8, 8, 1)))
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(ValueError, match="broken"):
        data.read_cube(path)


def test_garbage_and_mislabelled_files(tmp_path, cube):
    junk = tmp_path / "junk.mat"
    junk.write_bytes(b"this is not a MATLAB file at all" * 10)
    with pytest.raises(ValueError, match="junk.mat"):
        data.read_cube(junk)
    mislabelled = tmp_path / "really_npy.h5"
    np.save(tmp_path / "x.npy", cube)
    os.replace(tmp_path / "x.npy", mislabelled)
    with pytest.raises(ValueError, match="really_npy.h5"):
        data.read_cube(mislabelled)
    text = tmp_path / "labels.npz"
    np.savez(text, names=np.array(["a", "b"]))
    with pytest.raises(ValueError, match="labels.npz"):
        data.read_cube(text)
    with pytest.raises(ValueError, match="extension"):
        data.read_cube(tmp_path / "scene.xyz")
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        data.read_cube(tmp_path / "missing.npy")
