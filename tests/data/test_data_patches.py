import keras
import numpy as np
import pytest

from keras_hsifusion import data

C, CM, S = 6, 3, 4


def _scene(h=48, w=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 1, (h, w, C)).astype("float32")


def _srf(seed=1):
    srf = np.random.default_rng(seed).uniform(0, 1, (C, CM))
    return srf / srf.sum(0)


def _tiny_model():
    lr = keras.Input((None, None, C), name="lr_hsi")
    msi = keras.Input((None, None, CM), name="hr_msi")
    up = keras.layers.UpSampling2D(S)(lr)
    x = keras.layers.Concatenate()([up, msi])
    out = keras.layers.Conv2D(C, 3, padding="same")(x)
    model = keras.Model({"lr_hsi": lr, "hr_msi": msi}, out)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mae")
    return model


def test_grid_patches_are_crops_of_the_simulated_pair():
    hr = _scene()
    srf = _srf()
    ds = data.FusionPatches(hr, S, srf, patch_size=16, batch_size=4, mode="grid", stride=8)
    lr_full, msi_full = data.degrade(hr, S, srf)
    assert len(ds.positions) == 5 * 4 and len(ds) == 5
    x, y = ds[1]
    assert set(x) == {"lr_hsi", "hr_msi"}
    assert x["lr_hsi"].shape == (4, 4, 4, C) and x["hr_msi"].shape == (4, 16, 16, CM)
    assert y.shape == (4, 16, 16, C) and y.dtype == np.float32
    for n, (_, r, c) in enumerate(ds.positions[4:8]):
        np.testing.assert_array_equal(y[n], hr[r : r + 16, c : c + 16])
        np.testing.assert_array_equal(x["hr_msi"][n], msi_full[r : r + 16, c : c + 16])
        np.testing.assert_array_equal(
            x["lr_hsi"][n], lr_full[r // S : (r + 16) // S, c // S : (c + 16) // S]
        )
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_augmentation_is_consistent_across_the_three_arrays():
    # given pairs with a box PSF and an identity SRF: flips/rot90 must keep them paired
    rng = np.random.default_rng(0)
    hr = rng.uniform(size=(8, 8, C)).astype("float32")
    lr = hr.reshape(2, S, 2, S, C).mean(axis=(1, 3))
    msi = hr[..., :CM].copy()
    ds = data.FusionPatches(
        hr, S, lr_hsi=lr, hr_msi=msi, patch_size=8, batch_size=16, patches_per_epoch=16, seed=0
    )
    assert ds.augment
    x, y = ds[0]
    dihedral = [np.rot90(f, k) for f in (hr, hr[::-1]) for k in range(4)]
    seen = set()
    for n in range(16):
        match = [i for i, d in enumerate(dihedral) if np.array_equal(d, y[n])]
        assert len(match) == 1
        seen.add(match[0])
        np.testing.assert_allclose(
            x["lr_hsi"][n], y[n].reshape(2, S, 2, S, C).mean(axis=(1, 3)), rtol=1e-6
        )
        np.testing.assert_array_equal(x["hr_msi"][n], y[n][..., :CM])
    assert len(seen) >= 3
    # seeded: the same batch again; next epoch: new draws
    np.testing.assert_array_equal(ds[0][1], y)
    ds.on_epoch_end()
    assert not np.array_equal(ds[0][1], y)


@pytest.mark.parametrize("scale,fwhm", [(2, None), (3, None), (4, None), (4, 8.0), (8, None)])
def test_spatial_split_guard_is_minimal_and_leak_free(scale, fwhm):
    width = 96 if scale != 3 else 99
    train, val = data.spatial_split(width, width, scale, val_size=24, psf_fwhm=fwhm)
    mat = data.psf_matrix(width, scale, fwhm)

    def footprint(cols, extra_guard=0):
        lr = range(cols.start // scale, (cols.stop + extra_guard) // scale)
        support = set(np.nonzero(mat[list(lr)].sum(0))[0]) if len(lr) else set()
        return support | set(range(cols.start, cols.stop))

    tr_cols, va_cols = train[1], val[1]
    assert va_cols.stop == (width // scale) * scale and va_cols.stop - va_cols.start == 24
    assert train[0] == val[0] == slice(0, (width // scale) * scale)
    assert not footprint(tr_cols) & footprint(va_cols)
    guard = va_cols.start - tr_cols.stop
    if guard:  # one LR column less of guard would leak
        assert footprint(tr_cols, scale) & footprint(va_cols)


def test_split_regions_give_disjoint_patch_sets():
    hr = _scene(48, 96)
    train, val = data.spatial_split(48, 96, S, val_size=32)
    kw = dict(patch_size=16, batch_size=4, mode="grid", stride=4)
    tr = data.FusionPatches(hr, S, _srf(), region=train, **kw)
    va = data.FusionPatches(hr, S, _srf(), region=val, **kw)
    mat = data.psf_matrix(96, S)

    def cols(ds):
        used = set()
        for _, _, c in ds.positions:
            used |= set(range(c, c + 16))
            used |= set(np.nonzero(mat[c // S : (c + 16) // S].sum(0))[0])
        return used

    assert not cols(tr) & cols(va)
    assert min(c for _, _, c in va.positions) == 64
    # random patches stay inside the region too
    rnd = data.FusionPatches(hr, S, _srf(), region=train, patch_size=16, patches_per_epoch=40)
    positions = rnd._random_positions(np.random.default_rng(0), 200)
    assert max(c for _, _, c in positions) + 16 <= train[1].stop


def test_fusion_patches_feed_fit_on_every_backend():
    ds = data.FusionPatches(
        [_scene(), _scene(seed=5)], S, _srf(), patch_size=16, batch_size=4, seed=0
    )
    model = _tiny_model()
    hist = model.fit(ds, epochs=2, verbose=0)
    assert len(hist.history["loss"]) == 2 and np.all(np.isfinite(hist.history["loss"]))
    assert hist.history["loss"][1] < hist.history["loss"][0]


def test_tf_data_feeds_fit():
    tf = pytest.importorskip("tensorflow")
    ds = data.FusionPatches(_scene(), S, _srf(), patch_size=16, batch_size=4, seed=0)
    tf_ds = tf.data.Dataset.from_generator(
        ds.as_generator, output_signature=ds.output_signature()
    ).repeat()
    model = _tiny_model()
    hist = model.fit(tf_ds, steps_per_epoch=len(ds), epochs=2, verbose=0, shuffle=False)
    assert np.all(np.isfinite(hist.history["loss"]))


def test_torch_dataloader_feeds_fit():
    torch = pytest.importorskip("torch")
    ds = data.FusionPatches(_scene(), S, _srf(), patch_size=16, batch_size=4, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, shuffle=True)
    model = _tiny_model()
    hist = model.fit(loader, epochs=2, verbose=0, shuffle=False)
    assert np.all(np.isfinite(hist.history["loss"]))


def test_argument_errors():
    with pytest.raises(ValueError, match="patch_size"):
        data.FusionPatches(_scene(), S, _srf(), patch_size=18)
    with pytest.raises(ValueError, match="srf"):
        data.FusionPatches(_scene(), S)
    with pytest.raises(ValueError, match="No 64x64 patch"):
        data.FusionPatches(_scene(), S, _srf(), patch_size=64)
    with pytest.raises(ValueError, match="mode"):
        data.FusionPatches(_scene(), S, _srf(), mode="tiles")
