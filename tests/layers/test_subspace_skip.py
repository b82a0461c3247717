"""`ops.subspace.hysime_projection` and `GlobalSkip("hysime_detail_injection")`: the float32
graph form of HySime's subspace and of `baselines.hysime_detail_injection` (float64 numpy,
matched to the toolbox under Octave in test_baselines_subspace.py), on every backend."""

import keras
import numpy as np
import pytest
from harness import HSSDCT_TINY

from keras_hsifusion.applications import HSSDCT
from keras_hsifusion.baselines import hysime_detail_injection, poly_detail_injection
from keras_hsifusion.baselines.subspace import signal_subspace
from keras_hsifusion.layers import GlobalSkip
from keras_hsifusion.ops.subspace import hysime_projection


def low_rank_scene(seed, h, bands, rank, noise, scale=4, msi_bands=3):
    """A rank-`rank` HR-HSI plus white noise on the LR-HSI, and its 3-band MSI."""
    rng = np.random.default_rng(seed)
    big = h * scale
    abundances = rng.random((big, big, rank))
    abundances = (abundances + np.roll(abundances, 1, axis=0) + np.roll(abundances, 1, axis=1)) / 3
    endmembers = rng.random((rank, bands))
    hr_hsi = abundances @ endmembers
    lr = hr_hsi.reshape(h, scale, h, scale, bands).mean(axis=(1, 3))
    lr = lr + noise * rng.normal(size=lr.shape)
    srf = rng.random((bands, msi_bands))
    msi = hr_hsi @ (srf / srf.sum(axis=0))
    return lr.astype(np.float32), msi.astype(np.float32), hr_hsi


@pytest.mark.parametrize(
    "h, bands, rank, noise",
    [(16, 30, 4, 0.01), (8, 50, 3, 0.02), (12, 40, 5, 0.005)],
    ids=["one-group", "groups", "many-pixels"],
)
def test_projection_matches_the_numpy_subspace(h, bands, rank, noise):
    lr, _, _ = low_rank_scene(0, h, bands, rank, noise)
    basis = signal_subspace(lr)
    projection, dims = hysime_projection(lr[None])
    projection = keras.ops.convert_to_numpy(projection)[0]
    assert int(keras.ops.convert_to_numpy(dims)[0]) == basis.shape[1] == rank
    np.testing.assert_allclose(projection, basis @ basis.T, atol=2e-3)
    # an orthogonal projection of the reported rank
    np.testing.assert_allclose(projection @ projection, projection, atol=1e-4)
    assert np.trace(projection) == pytest.approx(rank, abs=1e-3)


def test_projection_is_per_image_and_unit_free():
    a, _, _ = low_rank_scene(1, 12, 30, 3, 0.01)
    b, _, _ = low_rank_scene(2, 12, 30, 6, 0.01)
    batch = np.stack([a, 1000.0 * b])
    projection, dims = hysime_projection(batch)
    assert keras.ops.convert_to_numpy(dims).tolist() == [3, 6]
    alone = keras.ops.convert_to_numpy(hysime_projection(b[None])[0])[0]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(projection)[1], alone, atol=2e-3)


def test_too_few_pixels_keep_every_band():
    lr = np.random.default_rng(0).random((1, 1, 1, 6)).astype(np.float32)
    projection, dims = hysime_projection(lr)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(projection)[0], np.eye(6), atol=0)
    assert int(keras.ops.convert_to_numpy(dims)[0]) == 6


def test_skip_equals_the_classical_method_and_denoises():
    lr, msi, truth = low_rank_scene(3, 16, 40, 4, 0.1)
    # The zoo models see max-normalised pairs; the classical method normalises the same way.
    top = np.abs(lr).max()
    skip = GlobalSkip("hysime_detail_injection", 4)([lr[None] / top, msi[None] / top])
    skip = keras.ops.convert_to_numpy(skip)[0] * top
    classical = hysime_detail_injection(lr, msi, 4)
    np.testing.assert_allclose(skip, classical, atol=3e-4 * np.abs(classical).max())
    poly = poly_detail_injection(lr, msi, 4)
    error = lambda x: float(np.sqrt(np.mean((x - truth) ** 2)))  # noqa: E731
    assert error(skip) < 0.8 * error(poly)


def test_a_zoo_model_takes_the_skip_and_round_trips(tmp_path):
    lr, msi, _ = low_rank_scene(
        4, 4, HSSDCT_TINY["hsi_bands"], 2, 0.01, msi_bands=HSSDCT_TINY["msi_bands"]
    )
    model = HSSDCT(**{**HSSDCT_TINY, "window_size": 2, "global_skip": "hysime_detail_injection"})
    out = keras.ops.convert_to_numpy(model({"lr_hsi": lr[None], "hr_msi": msi[None]}))
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(again({"lr_hsi": lr[None], "hr_msi": msi[None]})),
        out,
        rtol=1e-5,
        atol=1e-6,
    )
