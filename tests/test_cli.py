"""The `khf` command line on small georeferenced files made from Indian Pines."""

import importlib.metadata
import json
import os
import pathlib
import re
import shlex
import struct
import subprocess
import sys

import numpy as np
import pytest
from harness import BACKEND, HSSDCT_CONFIG_TINY, NEXT_BACKEND, ROOT, TINY_DATA, assert_close

from keras_hsifusion import data, metrics
from keras_hsifusion.cli import build_parser, main
from keras_hsifusion.data import raster
from keras_hsifusion.inference import fuse
from keras_hsifusion.profiling import runner

rasterio = pytest.importorskip("rasterio")

PRESET = "hssdct_indianpines_s2_x4"
NODATA = -9999.0
# UTM zone 16N (Indiana): LR-HSI pixels of 40 m, HR-MSI pixels of 10 m, same corner.
CRS = "EPSG:32616"
LR_T = (40.0, 0.0, 507000.0, 0.0, -40.0, 4484000.0)
HR_T = (10.0, 0.0, 507000.0, 0.0, -10.0, 4484000.0)
# An LR-HSI pixel and an HR-MSI pixel marked nodata.
LR_HOLE, HR_HOLE = (2, 3), (25, 6)


def _scene(size, offset=0):
    cube, wl = data.indian_pines()
    hr = cube[offset : offset + size, offset : offset + size]
    lr, msi = data.degrade(hr, 4, data.spectral_response("sentinel2a-10m", wl))
    return lr, msi, hr, wl


def _write_pair(folder, size, holes):
    """Writes lr_hsi.tif, hr_msi.tif, reference.tif; returns the arrays (without holes)."""
    lr, msi, hr, wl = _scene(size)
    lr_file, msi_file = lr.copy(), msi.copy()
    if holes:
        lr_file[LR_HOLE] = NODATA
        msi_file[HR_HOLE] = NODATA
    nodata = NODATA if holes else None
    raster.write_raster(
        folder / "lr_hsi.tif", lr_file, crs=CRS, transform=LR_T, nodata=nodata, wavelengths=wl
    )
    raster.write_raster(
        folder / "hr_msi.tif",
        msi_file,
        crs=CRS,
        transform=HR_T,
        nodata=nodata,
        band_names=["B2", "B3", "B4", "B8"],
    )
    raster.write_raster(folder / "reference.tif", hr, crs=CRS, transform=HR_T, wavelengths=wl)
    return lr, msi, hr, wl


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """32x32 HR pixels (8x8 LR), with one nodata pixel in each input."""
    folder = tmp_path_factory.mktemp("pair")
    arrays = _write_pair(folder, 32, holes=True)
    return folder, arrays


def _filled(x, hole_mask):
    # the documented neutral fill: band means of the valid pixels
    x = x.copy()
    x[hole_mask] = x[~hole_mask].mean(axis=0)
    return x


def _expected(lr, msi, method):
    lr_mask = np.zeros(lr.shape[:2], bool)
    lr_mask[LR_HOLE] = True
    hr_mask = np.zeros(msi.shape[:2], bool)
    hr_mask[HR_HOLE] = True
    fused = fuse(_filled(lr, lr_mask), _filled(msi, hr_mask), method, scale=4)
    hole = hr_mask | np.kron(lr_mask, np.ones((4, 4), bool))
    fused[hole] = NODATA
    return fused, hole


def _no_temporary_files(folder):
    return not [p for p in os.listdir(folder) if p.startswith(".tmp-")]


def test_fuse_geotiff_keeps_grid_wavelengths_and_nodata(pair, tmp_path, capsys):
    folder, (lr, msi, _, wl) = pair
    out = tmp_path / "fused.tif"
    argv = [
        "fuse",
        str(folder / "lr_hsi.tif"),
        str(folder / "hr_msi.tif"),
        "-m",
        "bicubic",
        "-o",
        str(out),
        "--preview",
        str(tmp_path / "preview.png"),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "scale 4" in printed and "17 HR pixels are nodata" in printed
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32616
        assert tuple(src.transform)[:6] == HR_T  # the HR-MSI grid
        assert (src.height, src.width, src.count) == (32, 32, 200)
        assert src.nodata == NODATA
        got_wl = [float(src.tags(i)["wavelength"]) for i in range(1, 201)]
        fused = np.moveaxis(src.read(), 0, -1)
    np.testing.assert_allclose(got_wl, wl, rtol=1e-6)
    expected, hole = _expected(lr, msi, "bicubic")
    assert hole.sum() == 16 + 1
    assert np.all(fused[hole] == NODATA) and np.all(fused[~hole] > -1)
    np.testing.assert_array_equal(fused, expected)
    png = (tmp_path / "preview.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (32, 32)
    assert _no_temporary_files(tmp_path)


def test_fuse_with_a_preset_to_hdf5(pair, tmp_path):
    folder, (lr, msi, _, wl) = pair
    out = tmp_path / "fused.h5"
    argv = [
        "fuse",
        str(folder / "lr_hsi.tif"),
        str(folder / "hr_msi.tif"),
        "-m",
        PRESET,
        "-o",
        str(out),
        "--quiet",
    ]
    assert main(argv) == 0
    got = raster.read_raster(out)
    assert got.crs == CRS and got.transform == HR_T and got.nodata == NODATA
    np.testing.assert_allclose(got.wavelengths, wl)
    expected, hole = _expected(lr, msi, PRESET)
    assert np.all(got.array[hole] == NODATA)
    # same arrays, same tiles; float32 kernels may differ in the last bits between calls
    assert_close(got.array[~hole], expected[~hole], rtol=1e-4)


def test_fuse_in_a_subprocess_on_another_backend(pair, tmp_path):
    # `--backend` differs from the running Keras: the command runs again in a fresh
    # `python -m keras_hsifusion` process with KERAS_BACKEND set.
    folder, (lr, msi, _, wl) = pair
    out = tmp_path / "fused.hdr"
    argv = [
        "fuse",
        str(folder / "lr_hsi.tif"),
        str(folder / "hr_msi.tif"),
        "-m",
        "bicubic",
        "-o",
        str(out),
        "--backend",
        NEXT_BACKEND[BACKEND],
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "keras_hsifusion", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"Keras backend {NEXT_BACKEND[BACKEND]}" in proc.stdout
    got = raster.read_raster(out)
    assert got.crs == CRS and got.transform == pytest.approx(HR_T)
    np.testing.assert_allclose(got.wavelengths, wl, rtol=1e-6)
    np.testing.assert_array_equal(got.array, _expected(lr, msi, "bicubic")[0])


def _shifted(folder, tmp_path, **changes):
    src = raster.read_raster(folder / "hr_msi.tif")
    fields = dict(crs=src.crs, transform=src.transform, nodata=src.nodata)
    fields.update(changes)
    array = fields.pop("array", src.array)
    raster.write_raster(tmp_path / "bad_msi.tif", array, **fields)
    return str(tmp_path / "bad_msi.tif")


@pytest.mark.parametrize(
    "changes,reason",
    [
        ({"transform": (10.0, 0.0, 507020.0, 0.0, -10.0, 4484000.0)}, "origins differ"),
        ({"crs": "EPSG:32617"}, "different CRS"),
        ({"transform": (15.0, 0.0, 507000.0, 0.0, -15.0, 4484000.0)}, "not an integer ratio"),
        ({"array": np.zeros((28, 32, 4), "float32")}, "should be 32x32"),
    ],
)
def test_footprint_mismatch_is_one_line_and_exit_1(pair, tmp_path, capsys, changes, reason):
    folder, _ = pair
    bad = _shifted(folder, tmp_path, **changes)
    out = tmp_path / "fused.tif"
    code = main(["fuse", str(folder / "lr_hsi.tif"), bad, "-m", "bicubic", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("khf fuse: error: Footprints disagree")
    assert reason in lines[0] and "lr_hsi.tif" in lines[0] and "bad_msi.tif" in lines[0]
    assert "Traceback" not in err
    assert not out.exists() and _no_temporary_files(tmp_path)
    with pytest.raises(ValueError, match="Footprints disagree"):
        main(["fuse", str(folder / "lr_hsi.tif"), bad, "-m", "bicubic", "-o", str(out), "--debug"])


def test_sensor_options_with_a_model_are_one_line_errors(pair, tmp_path, capsys):
    folder, _ = pair
    out = tmp_path / "fused.tif"
    lr, hr = str(folder / "lr_hsi.tif"), str(folder / "hr_msi.tif")
    for option in (["--sensor", "sentinel2a-10m"], ["--psf-fwhm", "4"]):
        code = main(["fuse", lr, hr, "-m", "hssdct_indianpines_s2_x4", "-o", str(out), *option])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and len(err) == 1
        assert "apply to classical methods only" in err[0] and "hssdct_indianpines_s2_x4" in err[0]
        assert not out.exists() and _no_temporary_files(tmp_path)


def test_existing_output_is_refused_and_interruptions_leave_nothing(
    pair, tmp_path, capsys, monkeypatch
):
    folder, _ = pair
    out = tmp_path / "fused.tif"
    out.write_bytes(b"precious")
    argv = [
        "fuse",
        str(folder / "lr_hsi.tif"),
        str(folder / "hr_msi.tif"),
        "-m",
        "bicubic",
        "-o",
        str(out),
    ]
    assert main(argv) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    # interrupted after writing the first rows: the old file stays, no temporary file
    from keras_hsifusion.inference import scene

    def interrupted(lr, hr, method, *, out, **kwargs):
        out[0:4, :, :] = 1.0
        raise KeyboardInterrupt

    monkeypatch.setattr(scene, "fuse", interrupted)
    assert main([*argv, "--overwrite"]) == 130
    assert out.read_bytes() == b"precious" and _no_temporary_files(tmp_path)
    assert "khf fuse: interrupted" in capsys.readouterr().err
    monkeypatch.undo()
    assert main([*argv, "--overwrite", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert raster.read_raster(out).shape == (32, 32, 200)
    # user errors of every kind: one line, exit code 1
    for bad, match in [
        (
            ["fuse", "missing.tif", str(folder / "hr_msi.tif"), "-m", "bicubic", "-o", "x.tif"],
            "No such file: missing.tif",
        ),
        ([*argv[:4], "no_such_method", "-o", str(tmp_path / "y.tif")], "no_such_method"),
        ([*argv[:6], str(tmp_path / "z.xyz")], "Unsupported output extension"),
        (["evaluate", str(out)], "--lr-hsi and --hr-msi"),
    ]:
        assert main(bad) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and match in err[0], err
    with pytest.raises(SystemExit) as info:
        main(["fuse", "a.tif"])  # argparse: usage and exit code 2
    assert info.value.code == 2


def test_evaluate_with_and_without_reference(pair, tmp_path):
    folder, (lr, msi, hr, wl) = pair
    est = tmp_path / "fused.tif"
    clean = tmp_path / "lr_clean.tif"
    raster.write_raster(clean, lr, crs=CRS, transform=LR_T, wavelengths=wl)
    msi_clean = tmp_path / "msi_clean.tif"
    raster.write_raster(msi_clean, msi, crs=CRS, transform=HR_T)
    fused = fuse(lr, msi, "bicubic", scale=4)
    raster.write_raster(est, fused, crs=CRS, transform=HR_T, wavelengths=wl)
    ref = folder / "reference.tif"
    argv = [
        "evaluate",
        str(est),
        str(ref),
        "--scale",
        "4",
        "--json",
        str(tmp_path / "m.json"),
        "--figure",
        str(tmp_path / "errors.png"),
    ]
    assert main(argv) == 0
    got = json.loads((tmp_path / "m.json").read_text())["metrics"]
    assert got["psnr"] == pytest.approx(metrics.psnr(hr, fused), rel=1e-9)
    assert got["sam"] == pytest.approx(metrics.sam(hr, fused), rel=1e-9)
    assert got["ergas"] == pytest.approx(metrics.ergas(hr, fused, 4), rel=1e-9)
    assert got["ssim"] == pytest.approx(metrics.ssim(hr, fused), rel=1e-9)
    assert 25 < got["psnr"] < 40
    assert (tmp_path / "errors.png").read_bytes()[:4] == b"\x89PNG"
    # the nodata pixels of the estimate are left out of the pixel-wise metrics
    holed = fused.copy()
    holed[HR_HOLE] = NODATA
    raster.write_raster(tmp_path / "holed.tif", holed, crs=CRS, transform=HR_T, nodata=NODATA)
    argv = [
        "evaluate",
        str(tmp_path / "holed.tif"),
        str(ref),
        "--lr-hsi",
        str(clean),
        "--json",
        str(tmp_path / "h.json"),
    ]
    assert main(argv) == 0
    got = json.loads((tmp_path / "h.json").read_text())
    keep = np.ones((32, 32), bool)
    keep[HR_HOLE] = False
    assert got["valid_pixels"] == 1023 and got["scale"] == 4 and "ssim" not in got["metrics"]
    assert got["metrics"]["psnr"] == pytest.approx(
        metrics.psnr(hr[keep][None], fused[keep][None]), rel=1e-9
    )
    # no reference: the full-resolution indices from the fusion's inputs
    argv = [
        "evaluate",
        str(est),
        "--lr-hsi",
        str(clean),
        "--hr-msi",
        str(msi_clean),
        "--json",
        str(tmp_path / "q.json"),
        "--figure",
        str(tmp_path / "qnr.png"),
    ]
    assert main(argv) == 0
    got = json.loads((tmp_path / "q.json").read_text())["metrics"]
    d_lambda = metrics.d_lambda(fused, lr, block_size=32, scale=4)
    d_s = metrics.d_s(fused, lr, msi, block_size=32, scale=4)
    assert got["d_lambda"] == pytest.approx(d_lambda, rel=1e-6)
    assert got["d_s"] == pytest.approx(d_s, rel=1e-6)
    assert got["qnr"] == pytest.approx((1 - d_lambda) * (1 - d_s), rel=1e-6)
    assert 0 < got["d_lambda"] < 0.1 and 0 < got["d_s"] < 0.5
    assert (tmp_path / "qnr.png").stat().st_size > 1000


def test_presets_listing(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"hssdct_indianpines_s2_x4\s+HSSDCT\s+3,027,555\s+4\s+200\+4", out)
    assert "msst_net_indianpines_s2_x4" in out
    assert main(["presets", "--json"]) == 0
    cards = json.loads(capsys.readouterr().out)
    assert cards[PRESET]["class"] == "HSSDCT" and cards[PRESET]["scale"] == 4


def test_console_script_is_declared():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'khf = "keras_hsifusion.cli:main"' in text
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert any(e.name == "khf" and e.value == "keras_hsifusion.cli:main" for e in scripts)


# --------------------------------------------------------------------------- README

TINY_RECIPE = {
    "name": "my_recipe",
    "data": TINY_DATA,
    "model": HSSDCT_CONFIG_TINY,
    "steps_per_epoch": 1,
    "tensorboard": False,
}


def readme_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith("khf "):
                commands.append(line)
    return commands


def test_readme_examples_run(tmp_path, monkeypatch, capsys):
    commands = readme_commands()
    names = {shlex.split(c)[1] for c in commands}
    assert names == {"fuse", "evaluate", "presets", "train", "bench", "demo"}, names
    # the files the examples name: a 32x32 (8x8 LR) georeferenced pair from Indian Pines,
    # the size of `pair` (one more compilation of the preset would cost minutes under JAX)
    lr, msi, _, _ = _write_pair(tmp_path, 32, holes=False)
    (tmp_path / "my_recipe.json").write_text(json.dumps(TINY_RECIPE))
    monkeypatch.chdir(tmp_path)
    for command in commands:
        argv = shlex.split(command)[1:]
        pinned = _pinned_backend(argv)
        if pinned not in (None, BACKEND):
            # A command that names its backend runs the same in every backend's suite (in a
            # process of that backend): it runs in that backend's suite; here it must parse.
            args, extra = build_parser().parse_known_args(argv)
            if args.command == "bench":
                runner.parse(extra)
            else:
                assert not extra, (command, extra)
            continue
        code = main(argv)
        captured = capsys.readouterr()
        assert code == 0, (command, captured.err[-2000:])
    fused = raster.read_raster("fused.tif")
    assert fused.transform == HR_T
    tiled = fuse(lr, msi, "bicubic", scale=4, tile=16, overlap=8)
    np.testing.assert_array_equal(fused.array, tiled)
    assert os.path.getsize("fused.png") > 100
    assert json.loads(pathlib.Path("metrics.json").read_text())["metrics"]["psnr"] > 25
    assert json.load(open("runs/my_recipe/results.json"))["epochs"] == 2
    if BACKEND == "torch":  # the backend the README's demo and bench examples name
        assert os.path.isfile("runs/demo/demo.png") or not _has_matplotlib()
        assert os.path.isfile("runs/bench/tiny.json")


def _pinned_backend(argv):
    """The one backend a command line names (`--backend X`, `--backends X`), or None."""
    for flag in ("--backend", "--backends"):
        if flag in argv:
            return argv[argv.index(flag) + 1]
    return None


def _has_matplotlib():
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def test_train_distribution_option(tmp_path, monkeypatch, capsys):
    # `--distribution` overrides the config's key; what reaches the runner is validated.
    from keras_hsifusion import training

    seen = []

    def run_experiment(config, out, **kwargs):
        seen.append(config["distribution"])
        return None  # what a rank > 0 of a torch.distributed run returns: nothing printed

    monkeypatch.setattr(training, "run_experiment", run_experiment)
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({**TINY_RECIPE, "distribution": "data_parallel"}))
    out = str(tmp_path / "run")
    assert main(["train", str(recipe), "--out", out]) == 0
    assert main(["train", str(recipe), "--out", out, "--distribution", "none"]) == 0
    recipe.write_text(json.dumps(TINY_RECIPE))
    assert main(["train", str(recipe), "--out", out, "--distribution", "data_parallel"]) == 0
    assert seen == [
        {"class": "data_parallel", "devices": None},
        None,
        {"class": "data_parallel", "devices": None},
    ]
    assert capsys.readouterr().out == ""
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(recipe), "--distribution", "model_parallel"])
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err
