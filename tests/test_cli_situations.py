"""`khf` in the situations a user puts it in: swapped inputs, bad arguments with inputs that
do not even exist (checked first), a preset whose wavelength check cannot run."""

import numpy as np
import pytest
from test_cli import CRS, HR_T, LR_T, _no_temporary_files, _write_pair

from keras_hsifusion.cli import main
from keras_hsifusion.data import raster

pytestmark = pytest.mark.backend_independent


def _one_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_swapped_inputs_are_reported_as_swapped(tmp_path, capsys):
    pytest.importorskip("rasterio")
    _write_pair(tmp_path, 32, holes=False)
    lr, msi = str(tmp_path / "lr_hsi.tif"), str(tmp_path / "hr_msi.tif")
    out = tmp_path / "fused.tif"
    assert main(["fuse", msi, lr, "-m", "bicubic", "-o", str(out)]) == 1
    line = _one_line(capsys)
    assert line.startswith("khf fuse: error: the inputs look swapped: ")
    assert line.index("hr_msi.tif") < line.index("lr_hsi.tif")  # as given: LR_HSI first
    assert "4 bands" in line and "200 bands" in line
    assert not out.exists() and _no_temporary_files(tmp_path)
    # the right order works
    assert main(["fuse", lr, msi, "-m", "bicubic", "-o", str(out), "--quiet"]) == 0


@pytest.mark.parametrize(
    "options,match",
    [
        (["-m", "no_such_preset", "-o", "out.tif"], "Received: method='no_such_preset'"),
        (["-m", "bicubic", "-o", "out.xyz"], "Unsupported output extension '.xyz'"),
        (["-m", "bicubic", "-o", "missing/out.tif"], "missing/out.tif does not exist"),
        (["-m", "bicubic", "-o", "out.tif", "--tile", "0"], "Received: tile=0"),
        (["-m", "bicubic", "-o", "out.tif", "--batch-size", "0"], "batch_size=0"),
        (["-m", "bicubic", "-o", "out.tif", "--preview", "p.jpg"], "must be a .png"),
        (["-m", "model.keras", "-o", "out.tif"], "No such model file: model.keras"),
    ],
)
def test_arguments_are_checked_before_the_inputs_are_read(tmp_path, capsys, options, match):
    # neither input exists: the error about the argument comes first
    options = [str(tmp_path / o) if o.endswith((".tif", ".xyz", ".jpg")) else o for o in options]
    assert main(["fuse", "no_lr.tif", "no_msi.tif", *options]) == 1
    line = _one_line(capsys)
    assert line.startswith("khf fuse: error: ") and match in line, line
    assert "no_lr.tif" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    with pytest.raises(SystemExit) as info:  # choices: argparse, before anything else
        main(["fuse", "no_lr.tif", "no_msi.tif", "-m", "gsa", "-o", "o.tif", "--sensor", "x"])
    assert info.value.code == 2 and "invalid choice: 'x'" in capsys.readouterr().err


def test_a_preset_without_wavelengths_to_check_is_a_warning(tmp_path, capsys):
    rng = np.random.default_rng(0)
    # no wavelengths in the LR-HSI; 10 bands, so that the preset refuses it before fusing
    raster.write_raster(tmp_path / "lr.h5", rng.random((8, 8, 10)), crs=CRS, transform=LR_T)
    raster.write_raster(tmp_path / "msi.h5", rng.random((32, 32, 4)), crs=CRS, transform=HR_T)
    argv = ["fuse", str(tmp_path / "lr.h5"), str(tmp_path / "msi.h5"), "-o", str(tmp_path / "o.h5")]
    assert main([*argv, "-m", "hssdct_indianpines_s2_x4", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2, err
    assert err[0].startswith("khf fuse: warning: The LR-HSI ") and "has no wavelengths" in err[0]
    assert "hssdct_indianpines_s2_x4" in err[0]
    assert err[1].startswith("khf fuse: error: ") and "hsi_bands=200" in err[1]
    # a classical method takes any bands: no check, no warning
    assert main([*argv, "-m", "bicubic", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
