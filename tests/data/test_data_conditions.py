"""Degradation distributions: specs, band SNR profiles, per-patch simulation, build_data."""

import numpy as np
import pytest

from keras_hsifusion import data, training
from keras_hsifusion.data import conditions
from keras_hsifusion.evaluation import protocol

# numpy only: runs once, under the first backend of `make test` (tests/conftest.py)
pytestmark = pytest.mark.backend_independent

WL = np.linspace(400.0, 2500.0, 60)


def test_value_specs_check_and_draw():
    rng = np.random.default_rng(0)
    assert conditions.check_value_spec("k", None) is None
    assert conditions.check_value_spec("k", 3) == 3.0
    spec = conditions.check_value_spec("k", {"uniform": [2, 7]})
    draws = [conditions.draw_value(spec, rng) for _ in range(200)]
    assert 2 <= min(draws) < 2.5 and 6.5 < max(draws) <= 7
    spec = conditions.check_value_spec("k", {"choice": [None, 30]})
    assert {conditions.draw_value(spec, rng) for _ in range(50)} == {None, 30.0}
    assert conditions.spec_max({"uniform": [2, 7]}, 4) == 7
    assert conditions.spec_max({"choice": [None, 3]}, 4) == 4
    for bad in ({"uniform": [7, 2]}, {"normal": [0, 1]}, "wide", [1, 2], True, float("nan")):
        with pytest.raises(ValueError, match="`data.psf_fwhm`"):
            conditions.check_value_spec("data.psf_fwhm", bad, minimum=0)
    with pytest.raises(ValueError, match="greater than 0"):
        conditions.check_value_spec("data.psf_fwhm", {"uniform": [-1, 2]}, minimum=0)


def test_band_profiles():
    rng = np.random.default_rng(1)
    assert np.all(conditions.band_snr_offsets(WL, "white", 10) == 0)
    off = conditions.band_snr_offsets(WL, "sensor", 8.0)
    assert abs(off.mean()) < 1e-12 and np.ptp(off) == pytest.approx(8.0)

    # noisiest (lowest SNR) in the blue, the water-vapour bands and the far SWIR
    def at(nm):
        return off[np.argmin(np.abs(WL - nm))]

    assert at(400) < at(700) and at(1380) < at(1250) and at(2500) < at(2200)
    smooth = conditions.band_snr_offsets(WL, "smooth", 5.0, rng)
    assert np.ptp(smooth) == pytest.approx(5.0) and abs(smooth.mean()) < 1e-12
    assert np.max(np.abs(np.diff(smooth))) < 1.0  # smooth over the bands
    table = conditions.band_snr_offsets(WL, {"table": [[400, -4], [2500, 4]]}, 0)
    np.testing.assert_allclose(table, np.linspace(-4, 4, 60), atol=1e-12)
    with pytest.raises(ValueError, match="`data.noise_profile`"):
        conditions.check_profile("data.noise_profile", "pink")
    with pytest.raises(ValueError, match="`data.noise_profile`"):
        conditions.check_profile("data.noise_profile", {"table": [[500, 1], [400, 2]]})


def test_degrade_band_dependent_snr_is_realised():
    x = np.random.default_rng(2).uniform(0.2, 1.0, (256, 256, 3)).astype("float32")
    srf = np.eye(3)
    snr = np.array([10.0, 20.0, 30.0])
    clean, _ = data.degrade(x, 2, srf)
    noisy, _ = data.degrade(x, 2, srf, noise_snr_db=(snr, None), seed=0)
    measured = 10 * np.log10(
        np.mean(clean.astype(np.float64) ** 2, axis=(0, 1))
        / np.mean((noisy - clean.astype(np.float64)) ** 2, axis=(0, 1))
    )
    np.testing.assert_allclose(measured, snr, atol=0.15)
    with pytest.raises(ValueError, match="one per band"):
        data.degrade(x, 2, srf, noise_snr_db=(np.ones(4), None))


def _scene():
    cube, wl = data.indian_pines()
    return cube[:64, :64, ::2], wl[::2]


def test_per_patch_simulation_equals_whole_scene_simulation():
    # one fixed condition, no noise: a patch simulated alone (with its PSF margin) equals the
    # same patch cut from the scene simulated whole, wherever the margin stays in the scene
    hr, wl = _scene()
    sampler = data.DegradationSampler({"psf_fwhm": 6.0}, 4, wl, "sentinel2a-10m")
    ds = data.FusionPatches(
        hr, 4, patch_size=16, batch_size=4, augment=False, seed=3, degradations=sampler
    )
    srf = sampler.srf(sampler.draw(np.random.default_rng(0)))
    lr_whole, msi_whole = data.degrade(hr, 4, srf, psf_fwhm=6.0)
    rng = np.random.default_rng(0)
    for y, x in ((16, 20), (24, 32), (20, 24)):
        lr, msi, target = ds._simulate(0, y, x, rng)
        np.testing.assert_allclose(lr, lr_whole[y // 4 : y // 4 + 4, x // 4 : x // 4 + 4], 1e-5)
        np.testing.assert_allclose(msi, msi_whole[y : y + 16, x : x + 16], rtol=1e-5)
        np.testing.assert_array_equal(target, hr[y : y + 16, x : x + 16])


def test_random_patches_deterministic_varied_and_inside_region():
    hr, wl = _scene()
    spec = {
        "psf_fwhm": {"uniform": [2, 7]},
        "noise_snr_db": [{"uniform": [20, 40]}, 35],
        "noise_profile": ["sensor", "smooth"],
        "msi_shift_nm": {"uniform": [-2, 2]},
    }
    sampler = data.DegradationSampler(spec, 4, wl, "sentinel2a-10m")
    assert sampler.random and sampler.max_psf_fwhm == 7
    region = (slice(0, 64), slice(0, 32))
    poisoned = hr.copy()
    poisoned[:, 32:] = np.nan  # nothing right of the region may reach a batch
    kwargs = dict(patch_size=16, batch_size=8, patches_per_epoch=16, region=region, seed=5)
    ds = data.FusionPatches(poisoned, 4, degradations=sampler, **kwargs)
    (a, t), (b, _) = ds[0], ds[0]
    for key in a:
        assert np.all(np.isfinite(a[key])), key
        np.testing.assert_array_equal(a[key], b[key])
    assert np.all(np.isfinite(t))
    # a different seed gives other noise and conditions
    other = data.FusionPatches(poisoned, 4, degradations=sampler, **{**kwargs, "seed": 6})[0][0]
    assert not np.array_equal(other["lr_hsi"], a["lr_hsi"])
    with pytest.raises(ValueError, match="`degradations`"):
        data.FusionPatches(hr, 4, lr_hsi=hr[::4, ::4], hr_msi=hr, degradations=sampler)


def test_build_data_with_ranges_records_validation_conditions():
    base = {"crop": 96, "test_size": 32, "val_size": 16, "band_step": 20, "patch_size": 16}
    cfg = training.validate_config(
        {
            "model": {"class": "HSSDCT", "nf": 32, "gc": 16},
            "data": {
                **base,
                "psf_fwhm": {"uniform": [3, 6]},
                "noise_snr_db": [{"uniform": [20, 30]}, None],
                "noise_profile": "sensor",
                "val_conditions": 3,
            },
        }
    )
    d = protocol.build_data(cfg)
    assert len(d["val_conditions"]) == 3 and d["val_inputs"]["lr_hsi"].shape[0] == 3
    assert d["val_target"].shape[0] == 3
    for c in d["val_conditions"]:
        assert 3 <= c["psf_fwhm"] <= 6 and 20 <= c["snr_lr_db"] <= 30
        # offsets are recorded for every band of the scene
        assert c["snr_msi_db"] is None and len(c["lr_band_offsets_db"]) == 200
    # the test region is the protocol's, simulated under the nominal (clean) condition
    plain = protocol.build_data(training.validate_config({"model": cfg["model"], "data": base}))
    assert d["regions"]["test"] == plain["regions"]["test"]
    assert d["test_condition"] == {"psf_fwhm": None, "noise_snr_db": None}
    np.testing.assert_array_equal(d["test_target"], plain["test_target"])
    # the training region ends before the validation strip's guard (widest PSF)
    assert d["regions"]["train"][1].stop <= d["regions"]["val"][1].start
    d2 = protocol.build_data(cfg)
    np.testing.assert_array_equal(d2["val_inputs"]["lr_hsi"], d["val_inputs"]["lr_hsi"])


@pytest.mark.parametrize(
    "key, value",
    [
        ("psf_fwhm", {"uniform": [0, 3]}),
        ("noise_snr_db", [10, 20, 30]),
        ("noise_profile", "pink"),
        ("msi_width_scale", -1),
        ("val_conditions", 0),
    ],
)
def test_config_rejects_bad_degradation_specs(key, value):
    with pytest.raises(ValueError, match=key):
        training.validate_config({"model": {"class": "HSSDCT"}, "data": {key: value}})
