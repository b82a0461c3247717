"""`fuse(..., skip_fit="scene")`: a global skip's regression is fitted once on the whole scene
and applied to every tile, so tiled fusion gives the one-pass result (docs/fuse.md)."""

import importlib

import numpy as np
import pytest
from harness import MSST_NET_TINY, WriteRecorder, assert_close, run_model

import keras_hsifusion as khf
from keras_hsifusion import baselines
from keras_hsifusion.baselines.global_skip import fit_scene, global_skip_statistics
from keras_hsifusion.layers import GlobalSkip


def scene(h, w, bands, msi_bands=3, scale=4, seed=0):
    # A smooth, correlated pair (as real scenes): the HSI a mix of the MSI plus noise.
    rng = np.random.default_rng(seed)
    hr = rng.random((scale * h, scale * w, msi_bands))
    mix = rng.random((msi_bands, bands))
    lr = khf.data.spatial_degrade(hr @ mix, scale) + 0.05 * rng.random((h, w, bands))
    return lr.astype(np.float32), hr.astype(np.float32)


@pytest.mark.parametrize("method", ["poly_detail_injection", "detail_injection"])
def test_tiled_classical_skip_with_the_scene_fit_is_the_one_pass_result(method):
    lr, hr = scene(30, 26, bands=7)  # 120 x 104 HR: 3 x 2 tiles of 64
    one_pass = baselines.get_method(method)(lr, hr, 4)
    tiled = khf.fuse(lr, hr, method, tile=64, overlap=48)
    assert_close(tiled, one_pass, rtol=2e-5, what="scene fit, tiled")
    # Each tile fitting its own regression (the earlier behaviour) is visibly different.
    per_tile = khf.fuse(lr, hr, method, tile=64, overlap=48, skip_fit="tile")
    assert np.abs(per_tile - one_pass).max() > 1e-3 * np.abs(one_pass).max()
    # Units: the scene fit divides by the scene's max|lr_hsi|, as the one-pass baseline.
    big = khf.fuse(lr * 1000, hr * 1000, method, tile=64, overlap=48)
    assert_close(big / 1000, one_pass, rtol=2e-5, what="inputs x1000")


def test_scene_fit_is_read_in_blocks_and_equals_one_block(monkeypatch):
    lr, hr = scene(20, 9, bands=5)
    whole = fit_scene("poly_detail_injection", lr, hr, 4)
    # 3 LR rows per block (with the PSF's halo): 7 blocks of an 80 x 36 HR scene.
    monkeypatch.setattr(baselines.global_skip, "FIT_BLOCK_PIXELS", 3 * 16 * 9)
    blocks = fit_scene("poly_detail_injection", lr, hr, 4)
    assert blocks.pixels == whole.pixels == 20 * 9 and blocks.divisor == float(lr.max())
    assert_close(blocks.weights, whole.weights, rtol=1e-6, what="weights")
    # Inside the block the baseline applies them to any part of the scene.
    with global_skip_statistics(whole):
        top = baselines.poly_detail_injection(lr[:10], hr[:40], 4)
    one_pass = baselines.poly_detail_injection(lr, hr, 4)
    assert_close(top[:24], one_pass[:24], rtol=2e-5, what="upper half with the scene fit")


def test_tiled_zoo_model_with_global_skip_uses_the_scene_fit():
    model = khf.applications.MSSTNet(**MSST_NET_TINY, global_skip="poly_detail_injection")
    # Gate 0: the model is its global skip (test_global_skip.py), so the tiles must give the
    # skip's one-pass output.
    model.get_layer("global_skip_gate").gate.assign(0.0)
    lr, hr = scene(16, 12, bands=4)  # 64 x 48 HR: 4 x 2 tiles of 40 x 40 (alignment 8)
    one_pass = GlobalSkip("poly_detail_injection", 4)([lr[None], hr[None]])[0]
    tiled = model.fuse(lr, hr, tile=40, overlap=32)
    assert_close(tiled, one_pass, rtol=2e-5, what="tiled model, scene fit")
    # Outside `fuse` the layer fits its own input again: the function JAX compiled with the
    # scene's statistics as constants was not left on the model (same tile shape here).
    part = {"lr_hsi": lr[None, :10, :10], "hr_msi": hr[None, :40, :40]}
    own_fit = GlobalSkip("poly_detail_injection", 4)([part["lr_hsi"], part["hr_msi"]])
    assert_close(run_model(model, part), own_fit, rtol=1e-5, what="a tile after fuse")
    assert np.abs(own_fit[0] - tiled[:40, :40]).max() > 1e-3 * np.abs(tiled).max()


def test_dask_uses_the_same_scene_fit():
    da = pytest.importorskip("dask.array")
    import dask

    lr, hr = scene(24, 20, bands=5, seed=2)
    expected = khf.fuse(lr, hr, "poly_detail_injection", tile=48, overlap=32)
    lazy = khf.fuse(
        da.from_array(lr, chunks=(10, 10, 5)),
        da.from_array(hr, chunks=(40, 40, 3)),
        "poly_detail_injection",
        tile=48,
        overlap=32,
    )
    with dask.config.set(scheduler="synchronous"):
        np.testing.assert_array_equal(lazy.compute(), expected)


def test_bad_skip_fit():
    lr, hr = scene(8, 8, bands=5)
    with pytest.raises(ValueError, match=r"`skip_fit` must be one of .*skip_fit='image'"):
        khf.fuse(lr, hr, "poly_detail_injection", skip_fit="image")


def test_local_methods_write_each_tile_core_once(monkeypatch):
    fuse_module = importlib.import_module("keras_hsifusion.inference.fuse")

    blends = []
    real = fuse_module._fuse_numpy

    def spy(m, lr, hr, plan, *args):
        blends.append((m.name, plan.blend))
        if not plan.blend:  # 0/1 weights on cores that partition the scene
            for weights, size in ((plan.row_weights, 120), (plan.col_weights, 104)):
                total = np.zeros(size)
                for (a, b), w in zip(plan.rows if size == 120 else plan.cols, weights):
                    assert set(np.unique(w)) <= {0.0, 1.0}
                    total[a:b] += w
                np.testing.assert_array_equal(total, 1.0)
        return real(m, lr, hr, plan, *args)

    monkeypatch.setattr(fuse_module, "_fuse_numpy", spy)
    lr, hr = scene(30, 26, bands=7)

    in_memory = khf.fuse(lr, hr, "poly_detail_injection", tile=64, overlap=48)
    target = WriteRecorder(in_memory.shape)
    khf.fuse(lr, hr, "poly_detail_injection", tile=64, overlap=48, out=target)
    np.testing.assert_array_equal(target.data, in_memory)
    rows = [r for a, b, c, d in target.writes for r in range(a, b)]
    assert rows == list(range(120)) and all((c, d) == (0, 104) for _, _, c, d in target.writes)
    khf.fuse(lr, hr, "poly_detail_injection", tile=64, overlap=48, skip_fit="tile")
    khf.fuse(lr, hr, "gsa", tile=64, overlap=48)
    # Cores for the scene-fitted skip; blending where tiles fit their own, or for a method
    # that is not local (GSA's regression and statistics are per tile).
    poly = "poly_detail_injection"
    assert blends == [(poly, False), (poly, False), (poly, True), ("gsa", True)]


@pytest.mark.parametrize("method, psf_fwhm", [("poly_detail_injection", 7.0), ("bicubic", None)])
def test_default_tiles_of_a_local_method_overlap_by_its_halo_and_give_the_one_pass_result(
    monkeypatch, method, psf_fwhm
):
    fuse_module = importlib.import_module("keras_hsifusion.inference.fuse")
    lr, hr = scene(40, 34, bands=6, seed=4)  # 160 x 136 HR
    one_pass = khf.fuse(lr, hr, method, psf_fwhm=psf_fwhm)
    # A budget that leaves tiles of at most 64 HR pixels (one pass needs ~2.4-3.4 MB).
    monkeypatch.setattr(fuse_module, "_available_memory", lambda: 2_500_000)
    m = fuse_module.resolve_method(method)
    plan = fuse_module._plan(m, (160, 136), 6, 4, None, None, True, psf_fwhm, "scene")
    halo = 4 * (2 + 3) if method != "bicubic" else 4 * 3  # the PSF of FWHM 7 reaches 2 LR
    assert plan.overlap == (2 * halo, 2 * halo) and max(plan.tile) <= 64 and len(plan) > 4
    tiled = khf.fuse(lr, hr, method, psf_fwhm=psf_fwhm)
    assert_close(tiled, one_pass, rtol=2e-5, what=f"{method}, default tiles")
