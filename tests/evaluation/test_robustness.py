"""`keras_hsifusion.evaluation`: the robustness sweep (grid, simulation, sweep, report, CLI)."""

import json
import re

import numpy as np
import pytest

from keras_hsifusion.cli import main as khf_main
from keras_hsifusion.evaluation import (
    make_condition,
    robustness_grid,
    run_sweep,
    simulate_condition,
    write_sweep,
)
from keras_hsifusion.evaluation.protocol import DEFAULT_DATA, build_data
from keras_hsifusion.evaluation.robustness import main as sweep_main

# 48x48 crop, 16 test columns, 10 bands: a condition simulates and fuses in milliseconds.
TINY = {"crop": 48, "test_size": 16, "band_step": 20}
CHEAP = ["bicubic", "poly_detail_injection"]


@pytest.fixture(scope="module")
def quick_rows():
    return run_sweep(CHEAP, robustness_grid("quick"), TINY, log=None)


def test_grids():
    grid = robustness_grid()
    assert 20 <= len(grid) <= 25
    assert len({c["name"] for c in grid}) == len(grid)
    assert grid[0] == make_condition()  # the training degradation first
    assert grid[0] == {
        "name": "psf4",
        "psf_fwhm": 4.0,
        "snr_lr_db": None,
        "snr_msi_db": None,
        "profile": "white",
        "depth_db": 0.0,
    }
    clean = [c for c in grid if c["snr_lr_db"] is None and c["snr_msi_db"] is None]
    assert sorted(c["psf_fwhm"] for c in clean) == [2, 3, 4, 5, 6, 7]
    noisy = [c for c in grid if c["snr_lr_db"] is not None]
    assert {c["psf_fwhm"] for c in noisy} == {4.0}
    lr = [c["snr_lr_db"] for c in noisy]
    msi = [c["snr_msi_db"] for c in noisy]
    assert min(lr) <= 15 and max(lr) >= 45 and min(msi) <= 25 and max(msi) >= 50
    white40 = sorted(c["snr_lr_db"] for c in noisy if c["snr_msi_db"] == 40 and c["depth_db"] == 0)
    assert white40 == [15, 20, 25, 30, 35, 40, 45]
    banded = [c for c in noisy if c["profile"] == "sensor"]
    assert [c["snr_lr_db"] for c in banded] == [20, 25, 30, 35]
    assert all(c["depth_db"] == 10 and c["snr_msi_db"] == 40 for c in banded)
    quick = robustness_grid("quick")
    assert [c["name"] for c in quick] == ["psf4", "psf7", "lr15_msi40", "lr25_msi40_sensor10"]
    assert robustness_grid(scale=8)[0]["psf_fwhm"] == 8


def test_nominal_condition_is_build_data():
    data = build_data({"data": {**DEFAULT_DATA, **TINY, "val_size": 8, "patch_size": 8}})
    scene = simulate_condition(make_condition(), TINY)
    for key in ("lr_hsi", "hr_msi"):
        np.testing.assert_array_equal(scene["inputs"][key], data["test_inputs"][key])
    np.testing.assert_array_equal(scene["target"], data["test_target"])
    np.testing.assert_array_equal(scene["wavelengths"], data["wavelengths"])
    assert scene["srf"] is None  # 10 bands miss the narrow Sentinel-2 bands
    full = simulate_condition(make_condition(), {**TINY, "band_step": 1})
    np.testing.assert_allclose(full["srf"].sum(axis=0), 1.0)


def test_psf_and_noise_change_the_pair():
    nominal = simulate_condition(make_condition(), TINY)
    wide = simulate_condition(make_condition(psf_fwhm=7), TINY)
    np.testing.assert_array_equal(wide["target"], nominal["target"])
    np.testing.assert_array_equal(wide["inputs"]["hr_msi"], nominal["inputs"]["hr_msi"])
    lr0, lr7 = nominal["inputs"]["lr_hsi"], wide["inputs"]["lr_hsi"]
    assert lr7.shape == lr0.shape and np.abs(lr7 - lr0).max() > 1e-3
    # a wider PSF smooths: less variance between neighbouring LR pixels
    assert np.abs(np.diff(lr7, axis=1)).mean() < np.abs(np.diff(lr0, axis=1)).mean()
    noisy = make_condition(snr_lr_db=20, snr_msi_db=30)
    a, b = simulate_condition(noisy, TINY), simulate_condition(noisy, TINY)
    np.testing.assert_array_equal(a["inputs"]["lr_hsi"], b["inputs"]["lr_hsi"])  # seeded
    other = simulate_condition(noisy, TINY, seed=1)
    assert not np.array_equal(a["inputs"]["lr_hsi"], other["inputs"]["lr_hsi"])
    for key, snr in (("lr_hsi", 20), ("hr_msi", 30)):
        clean, x = nominal["inputs"][key], a["inputs"][key]
        power = np.mean(clean.astype(np.float64) ** 2)
        measured = 10 * np.log10(power / np.mean((x.astype(np.float64) - clean) ** 2))
        assert measured == pytest.approx(snr, abs=1.5), key
    banded = simulate_condition(make_condition(None, 20, 30, "sensor", 10), TINY)
    err = np.mean((banded["inputs"]["lr_hsi"] - nominal["inputs"]["lr_hsi"]) ** 2, axis=(0, 1, 2))
    blue = np.asarray(banded["wavelengths"]) < 500
    assert blue.any()
    power = np.mean(nominal["inputs"]["lr_hsi"] ** 2, axis=(0, 1, 2))
    snr_band = 10 * np.log10(power / err)
    assert snr_band[blue].mean() < snr_band[~blue].mean()  # noisier in the blue


def test_noise_lowers_psnr_monotonically():
    conditions = [make_condition()] + [
        make_condition(snr_lr_db=snr, snr_msi_db=40) for snr in (45, 35, 25, 15)
    ]
    rows = run_sweep(["poly_detail_injection"], conditions, TINY, log=None)
    assert [r["condition"] for r in rows] == [c["name"] for c in conditions]
    psnr = [r["psnr"] for r in rows]
    assert all(a > b for a, b in zip(psnr, psnr[1:])), psnr
    assert psnr[0] - psnr[-1] > 5


def test_rows(quick_rows):
    assert len(quick_rows) == 2 * 4
    assert [r["method"] for r in quick_rows] == ["bicubic"] * 4 + ["poly_detail_injection"] * 4
    for r in quick_rows:
        assert {"psnr", "sam", "ergas", "seconds", "condition", "kind", "scale"} <= set(r)
        assert r["kind"] == "classical" and r["scale"] == 4
        assert np.isfinite(r["psnr"]) and r["sam"] > 0 and r["seconds"] >= 0
    nominal = {r["method"]: r for r in quick_rows if r["condition"] == "psf4"}
    assert nominal["poly_detail_injection"]["psnr"] > nominal["bicubic"]["psnr"]


def _md_table(text, title):
    after = text.split(f"### {title}", 1)[1].split("\n", 1)[1]
    block = after.strip().split("\n\n", 1)[0]
    lines = block.splitlines()
    methods = [c.strip() for c in lines[0].strip("|").split("|")][5:]
    table = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        for method, cell in zip(methods, cells[5:]):
            table[cells[0], method] = cell
    return table


def test_write_sweep(quick_rows, tmp_path):
    prefix = tmp_path / "out" / "sweep"
    paths = write_sweep(quick_rows, prefix, command="khf bench robustness", notes=["a note"])
    assert paths[:2] == [f"{prefix}.json", f"{prefix}.md"]
    saved = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert saved["command"] == "khf bench robustness" and saved["rows"] == quick_rows
    md = (tmp_path / "out" / "sweep.md").read_text()
    assert "Command: `khf bench robustness`" in md and "- a note" in md
    for title, key, digits, best in (("PSNR", "psnr", 2, max), ("SAM", "sam", 3, min)):
        table = _md_table(md, title)
        assert len(table) == len(quick_rows)
        for r in quick_rows:
            cell = table[r["condition"], r["method"]]
            assert float(cell.strip("*")) == round(r[key], digits)
            shown = [round(x[key], digits) for x in quick_rows if x["condition"] == r["condition"]]
            assert cell.startswith("**") == (round(r[key], digits) == best(shown))
    pytest.importorskip("matplotlib")
    assert paths[2] == f"{prefix}.png"
    assert (tmp_path / "out" / "sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_input():
    grid = robustness_grid("quick")
    with pytest.raises(ValueError, match=r"`methods`.*method='nope'"):
        run_sweep(["bicubic", "nope"], grid, TINY, log=None)
    with pytest.raises(ValueError, match=r"`methods`.*methods=\[\]"):
        run_sweep([], grid, TINY, log=None)
    with pytest.raises(ValueError, match=r"`conditions`.*conditions=\[\]"):
        run_sweep(CHEAP, [], TINY, log=None)
    with pytest.raises(ValueError, match=r"`grid`.*grid='huge'"):
        robustness_grid("huge")
    with pytest.raises(ValueError, match=r"`psf_fwhm`.*psf_fwhm=-1"):
        make_condition(psf_fwhm=-1)
    with pytest.raises(ValueError, match=r"`profile`.*profile='pink'"):
        make_condition(snr_lr_db=20, profile="pink")
    with pytest.raises(ValueError, match=r"data_config\['scene'\]='cave.h5'"):
        simulate_condition(make_condition(), {"scene": "cave.h5"})
    with pytest.raises(ValueError, match=r"`rows`"):
        write_sweep([], "unused")
    with pytest.raises(ValueError, match=r"`--methods`.*'nope'"):
        sweep_main(["--methods", "nope", "--presets"])


def test_cli(tmp_path, capsys):
    out = tmp_path / "r"
    args = ["--grid", "quick", "--methods", *CHEAP, "--presets", "--crop", "48"]
    args += ["--test-size", "16", "--band-step", "20", "--out", str(out)]
    code = khf_main(["bench", "robustness", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"wrote {out}.md" in captured.out
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["command"] == "khf bench robustness " + " ".join(args)
    assert saved["meta"]["data"] == TINY and saved["meta"]["grid"] == "quick"
    assert len(saved["rows"]) == 8
    md = out.with_suffix(".md").read_text()
    assert re.search(r"\| psf4 \| 4 \| - \| - \| none \|", md)
    code = khf_main(["bench", "robustness", "--grid", "quick", "--methods", "nope"])
    assert code == 1 and "nope" in capsys.readouterr().err


def test_demo_noisy_pair(capsys):
    from keras_hsifusion import demo

    noisy = demo.run_noisy(TINY, 4, {}, {})
    assert list(noisy["estimates"]) == [demo.NOISY_CLASSICAL]  # no preset given
    est, psnr = noisy["estimates"][demo.NOISY_CLASSICAL]
    assert est.shape == (48, 16, 10) and noisy["lr_hsi"].shape == (12, 4, 10)
    clean = run_sweep([demo.NOISY_CLASSICAL], [make_condition()], TINY, log=None)[0]["psnr"]
    assert 10 < psnr < clean
    assert "noisy pair (LR-HSI 25 dB, MSI 40 dB)" in capsys.readouterr().out
