"""Reference scenes in files (`data.open_scenes`, `data.LazyFusionPatches`, `data.scene` in
training configs): every format, CAVE-style PNG folders, scene and region splits that no
held-out pixel crosses, lazy reads, and recipes that train from (a) a folder of CAVE-style
PNG scenes, (b) a list of `.mat` scenes and (c) a GeoTIFF, all cut from Indian Pines."""

import csv
import json
import tracemalloc

import numpy as np
import pytest
from harness import MSST_CONFIG_TINY

from keras_hsifusion import data, training
from keras_hsifusion.cli import main
from keras_hsifusion.evaluation import protocol

# Indian Pines bands near Sentinel-2A's B2, B3, B4 and B8 (and between), so that the sensor's
# response is covered: 18 bands, 439-918 nm. An explicit response: 4 of them.
_BLUE_GREEN = (440, 460, 470, 490, 510, 550, 560, 570, 600)
_TARGETS = _BLUE_GREEN + (655, 665, 675, 760, 800, 840, 880, 900, 920)
C = len(_TARGETS)
SRF = np.eye(C)[:, [3, 6, 10, 14]].tolist()


@pytest.fixture(scope="module")
def ip():
    cube, wl = data.indian_pines()
    idx = sorted({int(np.argmin(np.abs(wl - t))) for t in _TARGETS})
    return cube[..., idx], wl[idx]


def _write_cave(root, scenes):
    """`root/<name>/<name>/<name>_NN.png`, 16-bit single-band PNGs, as CAVE ships them."""
    from PIL import Image

    for name, cube in scenes.items():
        folder = root / name / name
        folder.mkdir(parents=True)
        for b in range(cube.shape[-1]):
            Image.fromarray(cube[..., b].astype(np.uint16)).save(folder / f"{name}_{b + 1:02d}.png")
    (root / "README.txt").write_text("not a scene")
    return root


def _crops(cube, size, corners):
    return [cube[r : r + size, c : c + size] for r, c in corners]


def _log_losses(out):
    with open(out / "log.csv", newline="") as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


TRAIN = {
    "model": MSST_CONFIG_TINY,
    "optimizer": {"class": "Adam", "learning_rate": 2e-3},
    "epochs": 4,
    "steps_per_epoch": 2,
    "tensorboard": False,
}
PATCHES = {"patch_size": 8, "batch_size": 2, "patches_per_epoch": 4}


def _assert_learns(out, results):
    losses = _log_losses(out)
    assert len(losses) == 4 and np.all(np.isfinite(losses)), losses
    assert losses[-1] < 0.8 * losses[0], losses
    assert results["epochs"] == 4 and np.isfinite(results["test"]["psnr"])


# --------------------------------------------------------------------------- readers


def test_every_format_reads_the_same_windows(tmp_path, ip):
    cube, wl = ip
    scene = cube[:20, :24]
    files = {
        "a.npy": dict(),
        "b.h5": dict(wavelengths=wl),
        "c.mat": dict(wavelengths=wl),
        "d.mat": dict(wavelengths=wl, mat_version="7.3"),
        "e.npz": dict(wavelengths=wl),
        "f.tif": dict(wavelengths=wl),
        "g.hdr": dict(wavelengths=wl),
    }
    for name, kwargs in files.items():
        data.write_raster(tmp_path / name, scene, **kwargs)
    _write_cave(tmp_path, {"h": np.round(scene * 1000)})
    scenes = data.open_scenes(tmp_path)
    assert scenes.names == list("abcdefgh")  # README.txt and ENVI's .img are not scenes
    lazy = {s.name: s.lazy for s in scenes}
    assert lazy == dict(a=True, b=True, c=False, d=True, e=False, f=True, g=True, h=False)
    for s in scenes:
        expected = np.round(scene * 1000) if s.name == "h" else scene
        assert s.shape == (20, 24, C), s
        np.testing.assert_array_equal(s.read((3, 11), (5, 21)), expected[3:11, 5:21], s.name)
        np.testing.assert_array_equal(s.read(), expected, s.name)
        if s.name not in "ah":  # .npy and PNGs carry no band centres
            np.testing.assert_allclose(s.wavelengths, wl, atol=1e-3, err_msg=s.name)
    np.testing.assert_allclose(scenes.wavelengths, wl, atol=1e-3)
    # a list of paths, an ENVI data file named for its header, a single CAVE scene folder
    two = data.open_scenes([tmp_path / "g.img", str(tmp_path / "h")], wavelengths=wl + 1)
    assert two.names == ["g", "h"] and two[1].shape == (20, 24, C)
    np.testing.assert_array_equal(two.wavelengths, wl + 1)  # the given ones win
    assert two.index("g") == 0 and two.index(str(tmp_path / "h")) == 1


def test_scene_specs_are_checked(tmp_path, ip):
    cube, wl = ip
    np.save(tmp_path / "a.npy", cube[:16, :16])
    np.save(tmp_path / "b.npy", cube[:16, :16, :5])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"`scene`: no such file or folder: '.*x\.tif'"):
        data.open_scenes(str(tmp_path / "x.tif"))
    with pytest.raises(ValueError, match=r"`scene`: unsupported file type '\.txt'"):
        (tmp_path / "a.txt").write_text("")
        data.open_scenes(str(tmp_path / "a.txt"))
    with pytest.raises(ValueError, match=r"no scene in folder"):
        data.open_scenes(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"different band counts: \{'a': 18, 'b': 5\}"):
        data.open_scenes(tmp_path)
    with pytest.raises(ValueError, match=r"`wavelengths` must have one entry per band \(18\)"):
        data.open_scenes(tmp_path / "a.npy", wavelengths=[500.0])
    scenes = data.open_scenes([tmp_path / "a.npy", cube[:16, :16]])
    with pytest.raises(ValueError, match=r"`split.test`: no scene 'c'"):
        scenes.split({"val": ["a"], "test": ["c"]})
    with pytest.raises(ValueError, match=r"scene 'a' is in both `val` and `test`"):
        scenes.split({"val": ["a"], "test": ["a"]})
    with pytest.raises(ValueError, match=r"`split.train` names no scene"):
        scenes.split({"val": ["a"], "test": ["scene1"]})
    with pytest.raises(ValueError, match="outside the scene"):
        scenes[0].read((0, 17), None)


def test_lazy_reads_touch_a_window_not_the_scene(tmp_path, ip):
    cube, _ = ip
    big = np.tile(cube[:64, :64], (6, 6, 2))  # 384 x 384 x 36 float32: 21 MB on disk
    paths = [tmp_path / "big.npy", tmp_path / "big.h5", tmp_path / "big.tif"]
    for p in paths:
        data.write_raster(p, big)
    scenes = data.open_scenes(paths)
    sampler = data.response_sampler({"srf": np.eye(2 * C)[:, ::9].tolist()}, 4, None, 2 * C)
    ds = data.LazyFusionPatches(scenes, 4, sampler, patch_size=32, batch_size=4, seed=0)
    ds[0]  # opens the files
    tracemalloc.start()
    for i in range(len(ds)):
        ds[i]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3e6, peak  # a batch and its windows, far below one scene (21 MB)


# --------------------------------------------------------------------------- simulation


def test_lazy_patches_match_the_in_memory_simulation(ip):
    # Same positions and conditions: the windows read from disk give FusionPatches' pairs.
    cube, wl = ip
    scene = cube[:48, :48]
    cfg = {"psf_fwhm": {"uniform": [3, 6]}, "noise_snr_db": 30}
    sampler = data.DegradationSampler(cfg, 4, wl, "sentinel2a-10m")
    region = (slice(8, 40), slice(4, 44))
    mem = data.FusionPatches(scene, 4, patch_size=16, region=region, degradations=sampler, seed=3)
    lazy = data.LazyFusionPatches([data.Scene(scene)], 4, sampler, [region], patch_size=16)
    for y, x in ((8, 4), (24, 28), (16, 12)):
        a = mem._simulate(0, y, x, np.random.default_rng(7))
        b = lazy.patch(0, y, x, np.random.default_rng(7))
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def test_held_out_region_equals_whole_scene_degradation(ip):
    cube, wl = ip
    scene = cube[:48, :64]
    srf = data.spectral_response("sentinel2a-10m", wl)
    lr, msi = data.degrade(scene, 4, srf)
    sampler = data.DegradationSampler({}, 4, wl, "sentinel2a-10m")
    region = (slice(0, 48), slice(40, 64))
    cond = data.nominal_condition(sampler)
    inputs, target = data.simulate_regions([data.Scene(scene)], [(0, region)], 4, sampler, [cond])
    np.testing.assert_allclose(inputs["lr_hsi"][0], lr[:, 10:16], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(inputs["hr_msi"][0], msi[:, 40:64], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(target[0], scene[:, 40:64])


def test_response_tables(tmp_path, ip):
    _, wl = ip
    grid, resp, bands = data.sensor_table("sentinel2a-10m")
    path = tmp_path / "s2.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["wavelength_nm", *bands])
        writer.writerows(np.column_stack([grid, resp]).tolist())
    table = data.read_response_table(path)
    assert table[2] == bands
    sampler = data.response_sampler({"srf": str(path)}, 4, wl, wl.size)
    expected = data.spectral_response("sentinel2a-10m", wl)
    cond = data.nominal_condition(sampler)
    np.testing.assert_allclose(sampler.srf(cond), expected, atol=1e-12)
    shifted = {**cond, "msi_shift_nm": 10.0}
    assert not np.allclose(sampler.srf(shifted), expected)
    bad = tmp_path / "bad.csv"
    bad.write_text("wavelength_nm,b1\n500,1\n400,1\n")
    with pytest.raises(ValueError, match=r"`data.srf`: .*bad.csv.* wavelengths increasing"):
        data.read_response_table(bad, "data.srf")


# --------------------------------------------------------------------------- configs


def _config(**data_keys):
    return {"model": {"class": "HSSDCT"}, "data": data_keys}


CONFIG_ERRORS = [
    ({"scene": "x.tif"}, r"`data.scene`: no such file or folder: 'x.tif'"),
    ({"scene": ["a.npy", "x.mat"]}, r"`data.scene`: no such file or folder: 'x.mat'"),
    ({"scene": 3}, r"`data.scene` takes a path or a list of paths. Received: data.scene=3"),
    ({"scene": "a.txt"}, r"`data.scene`: unsupported file type '.txt': 'a.txt'"),
    ({"split": "scenes"}, r"`data.split` must be 'region' or"),
    ({"split": {"val": ["a"]}}, r"`data.split.test` must name one or more scenes"),
    ({"split": {"val": ["a"], "test": ["zz"]}}, r"`data.split.test`: no scene 'zz'"),
    ({"split": {"val": ["a"], "tests": ["b"]}}, r"`data.split` must be 'region'"),
    ({"wavelengths": "400-700"}, r"`data.wavelengths` must be a list of band centres"),
    ({"srf": "nope.csv"}, r"`data.srf`: no such file: 'nope.csv'"),
    ({"srf": [[1, -1]]}, r"`data.srf` must be a sensor table .* or a \(C, c\) list"),
    ({"srf": [[1.0]], "msi_shift_nm": 5}, r"`data.msi_shift_nm` needs a response table"),
    ({"normalise": "mean"}, r"`data.normalise` must be a positive number"),
    ({"crop": 0}, r"`data.crop` must be an integer >= 1"),
    ({"key": 3}, r"`data.key` must be an array name"),
    ({"bands": 3}, r"Unknown key\(s\) \['bands'\] in `data`"),
    ({"scene": "indian_pines", "srf": [[1.0]]}, r"`data.srf` is for scenes in files"),
    ({"scene": "indian_pines", "split": "region"}, r"`data.split` is for scenes in files"),
]


def test_config_errors_name_the_key(tmp_path, ip, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save("a.npy", ip[0][:16, :16])
    np.save("b.npy", ip[0][16:32, :16])
    (tmp_path / "a.txt").write_text("")
    for data_keys, match in CONFIG_ERRORS:
        with pytest.raises(ValueError, match=match):
            training.validate_config(_config(**{"scene": ".", **data_keys}))
    config = training.validate_config(_config(scene=".", split={"val": ["a"], "test": ["b.npy"]}))
    assert config["data"]["crop"] is None and config["data"]["normalise"] == "max"
    assert training.validate_config(config) == config  # validating twice changes nothing


def test_build_time_errors_name_the_key(tmp_path, ip):
    cube, wl = ip
    np.save(tmp_path / "a.npy", cube[:40, :40])
    scene = str(tmp_path / "a.npy")

    def build(**keys):
        return protocol.build_data(training.validate_config(_config(scene=scene, **keys)))

    with pytest.raises(
        ValueError,
        match=r"`data.wavelengths` are needed by the sensor `data.sensor`='sentinel2a-10m'",
    ):
        build()  # a .npy has no band centres and the sensor needs them
    with pytest.raises(ValueError, match=r"`data.wavelengths` must have one entry per band"):
        build(wavelengths=[500.0, 600.0])
    with pytest.raises(ValueError, match=r"`data.srf` must be \(18, c\)"):
        build(srf=[[1.0, 0.5]] * 3)
    with pytest.raises(ValueError, match=r"`data.crop` must be at most 40 for scene 'a'"):
        build(crop=64, wavelengths=wl.tolist())
    with pytest.raises(ValueError, match=r"`data.split`='region' in scene 'a': Cannot split"):
        build(wavelengths=wl.tolist())  # 40 columns: no room for 48 test columns


def test_indian_pines_config_is_unchanged():
    # The file keys are not added to Indian Pines configs, whose data stay bit-identical.
    config = training.validate_config({"model": "HSSDCT"})
    assert set(config["data"]) == set(protocol.DEFAULT_DATA)


def test_any_integer_scale(tmp_path, ip):
    cube, wl = ip
    np.save(tmp_path / "a.npy", cube[:144, :144])
    for scale in (2, 3, 8):
        keys = dict(scene=str(tmp_path / "a.npy"), wavelengths=wl.tolist(), scale=scale)
        keys.update(patch_size=4 * scale, test_size=2 * scale, val_size=2 * scale, batch_size=2)
        built = protocol.build_data(training.validate_config(_config(**keys)))
        inputs, target = built["train"][0]
        p = 4 * scale
        assert inputs["lr_hsi"].shape == (2, 4, 4, C) and target.shape == (2, p, p, C)
        lr, msi = built["test_inputs"]["lr_hsi"], built["test_inputs"]["hr_msi"]
        assert msi.shape[1:3] == (144 // scale * scale, 2 * scale) and lr.shape[1:3] == (
            144 // scale,
            2,
        )


# --------------------------------------------------------------------------- leaks


def test_scene_split_keeps_held_out_scenes_out_of_training(tmp_path, ip):
    cube, _ = ip
    crops = _crops(np.round(cube * 1000), 32, [(0, 0), (0, 64), (64, 0), (64, 64)])
    crops[2] = np.full_like(crops[2], 30000)  # the validation scene
    crops[3] = np.full_like(crops[3], 65535)  # the test scene
    root = _write_cave(tmp_path / "cave", dict(zip(["s0", "s1", "val", "test"], crops)))
    config = training.validate_config(
        _config(
            scene=str(root),
            split={"val": ["val"], "test": [str(root / "test")]},
            srf=SRF,
            psf_fwhm={"uniform": [3.0, 6.0]},
            noise_snr_db={"choice": [None, 35.0]},
            **{**PATCHES, "patches_per_epoch": 64},
        )
    )
    built = protocol.build_data(config)
    assert built["scenes"] == {"train": ["s0", "s1"], "val": ["val"], "test": ["test"]}
    divisor = built["divisor"]
    assert divisor == max(crops[0].max(), crops[1].max()) <= 1000
    # Two epochs of training batches: nothing of the held-out scenes (values 30 and 65).
    train = built["train"]
    for _ in range(2):
        for inputs, target in train.as_generator():
            for a in (inputs["lr_hsi"], inputs["hr_msi"], target):
                assert a.max() < 1.5, a.max()  # noise: at 35 dB, well below 1.5
    np.testing.assert_array_equal(built["test_target"], 65535 / np.float32(divisor))
    np.testing.assert_array_equal(built["val_target"], 30000 / np.float32(divisor))
    assert built["val_target"].shape == (4, 32, 32, C)  # 4 validation conditions


def test_region_split_keeps_held_out_columns_out_of_training(tmp_path, ip):
    cube, wl = ip
    scenes = [cube[:64, :64].copy(), cube[64:112, 48:112].copy()]  # 64x64 and 48x64
    val_size, test_size = 8, 16
    for k, s in enumerate(scenes):
        s[:, -test_size:] = 1e6  # test columns
        train_cols = 64 - test_size - 8  # minus the guard band at x4, FWHM 4
        s[-val_size:, :train_cols] = 1e3  # validation rows (`val_axis=0`)
        data.write_raster(tmp_path / f"s{k}.tif", s, wavelengths=wl)
    config = training.validate_config(
        _config(
            scene=[str(tmp_path / "s0.tif"), str(tmp_path / "s1.tif")],
            test_size=test_size,
            val_size=val_size,
            val_axis=0,
            **{**PATCHES, "patches_per_epoch": 64},
        )
    )
    built = protocol.build_data(config)
    regions = dict(built["regions"])
    assert regions["test"] == [
        ("s0", (slice(0, 64), slice(48, 64))),
        ("s1", (slice(0, 48), slice(48, 64))),
    ]
    assert [r for _, r in regions["val"]] == [
        (slice(56, 64), slice(0, 40)),
        (slice(40, 48), slice(0, 40)),
    ]
    assert built["divisor"] < 1.0  # the maximum of the training regions only
    for inputs, target in built["train"].as_generator():
        for a in (inputs["lr_hsi"], inputs["hr_msi"], target):
            assert a.max() <= 1.0 + 1e-6, a.max()
    # Held-out strips of both scenes, joined along their long side; no test pixel in the
    # validation inputs (a PSF tap on a 1e6 pixel would add more than 1e3).
    assert built["test_target"].shape == (1, 64 + 48, 16, C)
    assert built["val_target"].shape == (1, 8, 40 + 40, C)
    assert np.all(built["test_target"] == np.float32(1e6) / np.float32(built["divisor"]))
    for a in (built["val_inputs"]["lr_hsi"], built["val_inputs"]["hr_msi"]):
        assert a.max() <= 1e3 / built["divisor"] * (1 + 1e-6)


# --------------------------------------------------------------------------- recipes


def test_recipe_trains_from_cave_png_folder(tmp_path, ip):
    cube, _ = ip
    corners = [(0, 0), (0, 48), (48, 0), (48, 48), (96, 0), (96, 48)]
    crops = _crops(np.round(cube * 60000), 48, corners)
    names = ["balloons", "beads", "cd", "chart", "clay", "cloth"]
    root = _write_cave(tmp_path / "cave", dict(zip(names, crops)))
    config = {
        **TRAIN,
        "data": {
            "scene": str(root),
            "split": {"val": ["chart"], "test": ["cloth"]},
            "srf": SRF,
            "normalise": 65535,
            **PATCHES,
        },
    }
    out = tmp_path / "run"
    results = training.run_experiment(config, out, verbose=0, log=lambda *a: None)
    _assert_learns(out, results)
    saved = json.loads((out / "config.json").read_text())["data"]
    assert saved["split"] == config["data"]["split"] and saved["crop"] is None


def test_recipe_trains_from_a_list_of_mat_files(tmp_path, ip):
    cube, wl = ip
    paths = []
    for k, crop in enumerate(_crops(cube, 48, [(0, 0), (0, 48), (48, 0), (48, 48), (96, 96)])):
        paths.append(str(tmp_path / f"scene{k}.mat"))
        data.write_cube(paths[-1], crop, wavelengths=wl, mat_version="7.3" if k % 2 else "5")
    split = {"train": paths[:3], "val": ["scene3"], "test": [paths[4]]}
    config = {**TRAIN, "data": {"scene": paths, "split": split, **PATCHES}}
    out = tmp_path / "run"
    results = training.run_experiment(config, out, verbose=0, log=lambda *a: None)
    _assert_learns(out, results)


def test_recipe_trains_from_a_geotiff_with_khf_train(tmp_path, ip, monkeypatch):
    # One scene, the region split: test = the rightmost 48 columns, validation = the 48
    # before them (guard bands between), training = the first 16 columns.
    cube, wl = ip
    data.write_raster(tmp_path / "scene.tif", cube[:48, :128], wavelengths=wl)
    grid, resp, bands = data.sensor_table("sentinel2a-10m")
    with open(tmp_path / "s2.csv", "w", newline="") as f:
        csv.writer(f).writerows([["wavelength_nm", *bands], *np.column_stack([grid, resp])])
    recipe = {
        **TRAIN,
        "name": "my_scene",
        "data": {"scene": "scene.tif", "srf": "s2.csv", "val_size": 48, **PATCHES},
    }
    (tmp_path / "my_recipe.json").write_text(json.dumps(recipe))
    monkeypatch.chdir(tmp_path)  # relative paths: from the working directory
    assert main(["train", "my_recipe.json", "--quiet"]) == 0
    results = json.loads((tmp_path / "runs/my_scene/results.json").read_text())
    _assert_learns(tmp_path / "runs/my_scene", results)
    # Every recipe above validates and tests on 48x48 images: one XLA program for all.
    built = protocol.build_data(training.validate_config({**recipe, "model": "MSSTNet"}))
    assert built["val_target"].shape == built["test_target"].shape == (1, 48, 48, C)
    assert built["regions"]["train"] == [("scene", (slice(0, 48), slice(0, 16)))]
