"""`keras_hsifusion.fuse`: tiles reassemble exactly, blend without seams, write to any target,
keep the preset normalisation, give the same numbers on Dask, and reject bad arguments."""

import importlib

import numpy as np
import pytest
from harness import HSSDCT_TINY, MSST_NET_TINY, WriteRecorder, assert_close, run_model

import keras_hsifusion as khf
from keras_hsifusion import baselines
from keras_hsifusion.inference.tiling import TilePlan, axis_weights, plan_axis, plan_tiles

fuse_module = importlib.import_module("keras_hsifusion.inference.fuse")


def nearest(lr_hsi, hr_msi, scale, srf=None, psf_fwhm=None):
    """A local, deterministic stand-in method: nearest upsampling plus the MSI mean."""
    lr, hr = np.asarray(lr_hsi, np.float32), np.asarray(hr_msi, np.float32)
    up = np.repeat(np.repeat(lr, scale, axis=-3), scale, axis=-2)
    return up + hr.mean(axis=-1, keepdims=True)


@pytest.fixture
def nearest_method(monkeypatch):
    monkeypatch.setitem(baselines.METHODS, "test_nearest", nearest)
    return "test_nearest"


def scene(h, w, bands=5, msi_bands=3, scale=4, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    lr = rng.random((h, w, bands)).astype(dtype)
    hr = rng.random((scale * h, scale * w, msi_bands)).astype(dtype)
    return lr, hr


def tiny_hssdct(**kwargs):
    # window_size 4: windows 2..16, tiles aligned to 32 HR pixels.
    return khf.applications.HSSDCT(**{**HSSDCT_TINY, "window_size": 4, **kwargs})


# --- tiling --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, tile, overlap, multiple",
    [(100, 48, 16, 8), (256, 128, 32, 32), (257, 128, 32, 32), (50, 128, 32, 32), (999, 64, 8, 4)],
)
def test_plan_axis_covers_aligned_and_weights_sum_to_one(size, tile, overlap, multiple):
    intervals = plan_axis(size, tile, overlap, multiple)
    assert intervals[0][0] == 0 and intervals[-1][1] == size
    for (a0, a1), (b0, _) in zip(intervals, intervals[1:]):
        assert b0 % multiple == 0 and a0 < b0 and a1 - b0 >= overlap  # aligned, overlapping
    assert all(b - a == tile for a, b in intervals[:-1])
    assert tile <= intervals[-1][1] - intervals[-1][0] < tile + multiple or size <= tile
    total = np.zeros(size)
    for (a, b), w in zip(intervals, axis_weights(intervals, size)):
        assert np.all(w >= 0)
        total[a:b] += w
    np.testing.assert_allclose(total, 1.0, rtol=0, atol=1e-12)


def test_weights_are_smooth_and_zero_at_inner_tile_borders():
    intervals = plan_axis(160, 64, 32, 32)  # starts 0, 32, 64, 96: overlaps of 32
    weights = axis_weights(intervals, 160)
    for k, w in enumerate(weights):
        if k > 0:
            assert w[0] == 0.0  # a tile's own border next to a neighbour carries no weight
        if k < len(intervals) - 1:
            assert w[-1] == 0.0
        assert np.max(np.abs(np.diff(w))) < 0.2  # a ramp, not a step
    assert weights[0][0] == 1.0 and weights[-1][-1] == 1.0  # scene edges: full weight


def test_scene_smaller_than_a_tile_is_one_pass():
    plan = plan_tiles((40, 24), 4, (128, 128), (32, 32), 32)
    assert len(plan) == 1 and plan.rows == [(0, 40)] and plan.cols == [(0, 24)]
    assert np.all(plan.weight(0, 0) == 1.0)
    assert isinstance(plan, TilePlan)


# --- reassembly ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lr_size, tile, overlap",
    [
        ((16, 16), 32, 8),
        ((25, 19), 32, 8),  # 100 x 76 HR: not divisible by the tile
        ((25, 19), (48, 24), (16, 4)),  # rectangular tiles, overlap rounded up to 4
        ((30, 7), 40, 12),
        ((9, 9), 64, 16),  # smaller than a tile: one pass
    ],
)
def test_local_method_reassembles_exactly(nearest_method, lr_size, tile, overlap):
    lr, hr = scene(*lr_size)
    expected = nearest(lr, hr, 4)
    fused = khf.fuse(lr, hr, nearest_method, tile=tile, overlap=overlap)
    assert fused.dtype == np.float32 and fused.shape == expected.shape
    assert_close(fused, expected, rtol=1e-6, what="tiled local method")


def test_classical_default_is_one_pass_and_tiles_when_asked():
    lr, hr = scene(20, 24)
    one_pass = baselines.bicubic(lr, hr, 4)
    np.testing.assert_array_equal(khf.fuse(lr, hr, "bicubic"), one_pass)
    # Bicubic is local: its tile borders fall in the unweighted outer quarter of 32 overlaps.
    tiled = khf.fuse(lr, hr, "bicubic", tile=48, overlap=32, progress=True)
    assert_close(tiled, one_pass, rtol=1e-6, what="tiled bicubic")


def test_integer_inputs(nearest_method):
    lr, hr = scene(12, 10)
    lr16, hr16 = (lr * 1000).astype(np.uint16), (hr * 1000).astype(np.int32)
    fused = khf.fuse(lr16, hr16, nearest_method, tile=24, overlap=8)
    assert fused.dtype == np.float32
    expected = nearest(lr16.astype(np.float32), hr16.astype(np.float32), 4)
    assert_close(fused, expected, rtol=1e-6, what="integer inputs")


# --- models --------------------------------------------------------------------------------


def test_model_tiles_are_the_model_on_each_tile_blended():
    model = tiny_hssdct()
    assert model.fuse_multiple == 32 and model.fuse_tile % 32 == 0
    lr, hr = scene(24, 14, bands=8)  # 96 x 56 HR, tiles of 64 with overlap 32
    fused = model.fuse(lr, hr, tile=64, overlap=32)
    plan = plan_tiles((96, 56), 4, 64, 32, 32)
    assert (plan.rows, plan.cols) == ([(0, 64), (32, 96)], [(0, 56)])
    expected = np.zeros_like(fused)
    for i, (r0, r1) in enumerate(plan.rows):
        for j, (c0, c1) in enumerate(plan.cols):
            x = {
                "lr_hsi": lr[None, r0 // 4 : r1 // 4, c0 // 4 : c1 // 4],
                "hr_msi": hr[None, r0:r1, c0:c1],
            }
            expected[r0:r1, c0:c1] += run_model(model, x)[0] * plan.weight(i, j)
    assert_close(fused, expected, rtol=1e-4, what="tiled model")
    one_pass = run_model(model, {"lr_hsi": lr[None], "hr_msi": hr[None]})[0]
    assert_close(model.fuse(lr, hr, tile=96), one_pass, rtol=1e-4, what="one tile = one pass")


def test_msst_net_alignment_and_batches():
    model = khf.applications.MSSTNet(**MSST_NET_TINY)
    assert model.fuse_multiple == 8  # patches 2, 4, 8 and 2 heads over LR rows, x4
    lr, hr = scene(10, 12, bands=4)  # 40 x 48 HR: 4 x 5 tiles of 16 x 16
    assert len(plan_tiles((40, 48), 4, 16, 8, 8)) == 20
    batched = model.fuse(lr, hr, tile=16, overlap=8, batch_size=3)  # batches of 3 and 2
    single = model.fuse(lr, hr, tile=16, overlap=8)
    assert batched.shape == (40, 48, 4) and np.all(np.isfinite(batched))
    assert_close(batched, single, rtol=1e-4, what="batch_size 3 vs 1")


def test_preset_tiled_vs_one_pass_on_real_data():
    from keras_hsifusion import data as khf_data

    cube, wavelengths = khf_data.indian_pines()
    cube = np.ascontiguousarray(cube[:96, 32:96])
    srf = khf_data.spectral_response("sentinel2a-10m", wavelengths)
    lr, msi = khf_data.degrade(cube, 4, srf, seed=0)
    model = khf.from_preset("hssdct_indianpines_s2_x4")
    one_pass = model.fuse(lr, msi, tile=96, overlap=0)
    tiled = model.fuse(lr, msi, tile=64, overlap=32)  # 2 x 1 tiles
    mse = np.mean((tiled.astype(np.float64) - one_pass) ** 2)
    assert 10 * np.log10(one_pass.max() ** 2 / mse) > 40.0  # PSNR between them
    assert abs(khf.metrics.psnr(cube, tiled) - khf.metrics.psnr(cube, one_pass)) < 0.5


def test_preset_normalisation_round_trip():
    name = "hssdct_indianpines_s2_x4"
    lr, hr = scene(8, 8, bands=200, msi_bands=4, seed=1)
    lr, hr = lr * 0.5, hr * 0.5
    by_name = khf.fuse(lr, hr, name)
    model = khf.inference.resolve_method(name).model  # the model loaded for that call
    # The card's rule: divide both inputs by the LR-HSI maximum, multiply the output back.
    d = float(lr.max())
    direct = run_model(model, {"lr_hsi": lr[None] / d, "hr_msi": hr[None] / d})[0] * d
    assert_close(by_name, direct, rtol=1e-4)
    # So the result follows the units of the input (uint16 digital numbers here).
    counts = khf.fuse((lr * 9604).astype(np.uint16), (hr * 9604).astype(np.uint16), name)
    assert counts.dtype == np.float32
    assert_close(counts / 9604, by_name, rtol=2e-3, what="uint16 input")
    # A model without a card sees the input as given; one carrying its card is normalised.
    model.preset_card = None
    plain = model.fuse(lr, hr)
    direct = run_model(model, {"lr_hsi": lr[None], "hr_msi": hr[None]})[0]
    assert_close(plain, direct, what="no card")
    assert np.abs(plain - by_name).max() > 1e-6 * np.abs(by_name).max()  # it did rescale
    model.preset_card = khf.presets.load_card(name)
    assert_close(model.fuse(lr, hr), by_name, rtol=1e-5)


# --- output targets ------------------------------------------------------------------------


def test_out_targets_memmap_and_h5py(tmp_path, nearest_method):
    import h5py

    lr, hr = scene(19, 13)
    expected = khf.fuse(lr, hr, nearest_method, tile=32, overlap=8)
    memmap = np.lib.format.open_memmap(tmp_path / "out.npy", "w+", np.float32, expected.shape)
    assert khf.fuse(lr, hr, nearest_method, tile=32, overlap=8, out=memmap) is memmap
    memmap.flush()
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
    with h5py.File(tmp_path / "out.h5", "w") as f:
        dataset = f.create_dataset("fused", expected.shape, np.float32)
        khf.fuse(lr, hr, nearest_method, tile=32, overlap=8, out=dataset)
    with h5py.File(tmp_path / "out.h5", "r") as f:
        np.testing.assert_array_equal(f["fused"][...], expected)


def test_rows_are_written_once_when_final(nearest_method):
    lr, hr = scene(30, 6)
    target = WriteRecorder((120, 24, 5))
    khf.fuse(lr, hr, nearest_method, tile=32, overlap=8, out=target)
    rows = [r for a, b, _, _ in target.writes for r in range(a, b)]
    assert rows == list(range(120))  # every row once, top to bottom
    assert len(target.writes) == len(plan_tiles((120, 24), 4, 32, 8, 4).rows)
    assert_close(target.data, nearest(lr, hr, 4), rtol=1e-6)


def test_memory_guard_refuses_before_allocating(monkeypatch, nearest_method):
    monkeypatch.setattr(fuse_module, "_available_memory", lambda: 1000)
    lr, hr = scene(8, 8)
    with pytest.raises(MemoryError, match=r"out="):
        khf.fuse(lr, hr, nearest_method, tile=16, overlap=4)
    out = np.zeros((32, 32, 5), np.float32)  # with a target it runs
    khf.fuse(lr, hr, nearest_method, tile=16, overlap=4, out=out)
    assert_close(out, nearest(lr, hr, 4), rtol=1e-6)


# --- Dask ----------------------------------------------------------------------------------


def test_dask_matches_in_memory_on_a_local_cluster():
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    lr, hr = scene(24, 20, seed=3)
    expected = khf.fuse(lr, hr, "bicubic", tile=48, overlap=16)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster),
    ):
        lazy = khf.fuse(
            da.from_array(lr, chunks=(10, 10, 5)),
            da.from_array(hr, chunks=(40, 40, 3)),
            "bicubic",
            tile=48,
            overlap=16,
        )
        assert isinstance(lazy, da.Array) and lazy.dtype == np.float32
        result = lazy.compute()
    np.testing.assert_array_equal(result, expected)


def test_dask_with_a_model_and_its_card():
    da = pytest.importorskip("dask.array")
    import dask

    model = khf.applications.MSSTNet(**MSST_NET_TINY)
    model.preset_card = {"normalisation": {"input": "divide by the LR-HSI maximum"}}
    lr, hr = scene(10, 12, bands=4, seed=4)
    lr, hr = lr * 3, hr * 3
    expected = model.fuse(lr, hr, tile=16, overlap=8)
    lazy = model.fuse(da.from_array(lr, chunks=(4, 4, 4)), da.from_array(hr), tile=16, overlap=8)
    with dask.config.set(scheduler="synchronous"):
        np.testing.assert_array_equal(lazy.compute(), expected)
    plain = model.fuse(lr / lr.max(), hr / lr.max(), tile=16, overlap=8)
    del model.preset_card
    assert_close(expected, model.fuse(lr / lr.max(), hr / lr.max(), tile=16, overlap=8) * lr.max())
    assert_close(plain * lr.max(), expected, rtol=1e-5, what="card normalisation")


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"tile": 0}, ValueError, "`tile` must be positive"),
        ({"tile": 30}, ValueError, "multiple of the scale"),
        ({"tile": 2.5}, TypeError, "`tile` must be an int"),
        ({"tile": (32, 32, 32)}, ValueError, "pair"),
        ({"tile": 32, "overlap": 32}, ValueError, "smaller than `tile`"),
        ({"tile": 32, "overlap": -4}, ValueError, "`overlap` must be >= 0"),
        ({"tile": 32, "overlap": 30}, ValueError, "no stride"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"scale": 3}, ValueError, "scale=3"),
        ({"out": np.zeros((4, 4, 5))}, ValueError, "`out` must have the shape"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    lr, hr = scene(8, 8)
    with pytest.raises(error, match=match):
        khf.fuse(lr, hr, "bicubic", **kwargs)


def test_bad_methods_and_inputs():
    lr, hr = scene(8, 8)
    with pytest.raises(ValueError, match=r"Unknown `method`.*hssdct_indianpines.*bicubic"):
        khf.fuse(lr, hr, "no_such_method")
    with pytest.raises(TypeError, match="`method` must be"):
        khf.fuse(lr, hr, 42)
    with pytest.raises(ValueError, match="`hr_msi` must be"):
        khf.fuse(lr, hr[:30], "bicubic")
    with pytest.raises(ValueError, match=r"channels-last \(height, width, bands\)"):
        khf.fuse(lr[None], hr[None], "bicubic")
    model = tiny_hssdct()
    with pytest.raises(ValueError, match="multiple of 32"):
        model.fuse(*scene(16, 16, bands=8), tile=48)
    with pytest.raises(ValueError, match="`lr_hsi` must have 8 bands"):
        model.fuse(lr, hr)
    with pytest.raises(ValueError, match="classical methods only"):
        khf.fuse(*scene(16, 16, bands=8), model, psf_fwhm=4.0)
