import math

import keras
import numpy as np
import pytest

from keras_hsifusion import metrics


def _pair(shape=(24, 20, 5), seed=0, noise=0.05):
    rng = np.random.default_rng(seed)
    ref = rng.uniform(0.1, 1.0, size=shape)
    est = np.clip(ref + noise * rng.standard_normal(shape), 0.0, None)
    return ref, est


# ------------------------------------------------------------------ against independent code


def test_psnr_rmse_ergas_cc_match_hyperevalsr():
    hev = pytest.importorskip("HyperEvalSR.metrics")
    ref, est = _pair()
    assert metrics.rmse(ref, est) == pytest.approx(hev.RMSE(ref, est), rel=1e-12)
    assert metrics.psnr(ref, est) == pytest.approx(hev.PSNR(ref, est), rel=1e-12)
    assert metrics.ergas(ref, est, 4) == pytest.approx(hev.ERGAS(ref, est, 4), rel=1e-12)
    assert metrics.cc(ref, est) == pytest.approx(hev.CC(ref, est), rel=1e-12)


def test_psnr_rmse_ergas_by_hand():
    # 2x2x2 cube: errors 0.1 in band 0 only.
    ref = np.array([[[1.0, 2.0], [1.0, 2.0]], [[1.0, 2.0], [1.0, 2.0]]])
    est = ref.copy()
    est[..., 0] += 0.1
    mse = 0.01 / 2
    assert metrics.rmse(ref, est) == pytest.approx(math.sqrt(mse))
    assert metrics.psnr(ref, est) == pytest.approx(10 * math.log10(4.0 / mse))
    # band 0: RMSE 0.1, mean 1 -> 0.01; band 1: 0 -> ERGAS = 100/4 * sqrt(0.005)
    assert metrics.ergas(ref, est, 4) == pytest.approx(25 * math.sqrt(0.005))
    assert metrics.psnr(ref, ref) == float("inf")


def test_ssim_matches_scikit_image():
    skm = pytest.importorskip("skimage.metrics")
    ref, est = _pair((32, 27, 4), noise=0.2)
    expected = skm.structural_similarity(
        ref,
        est,
        channel_axis=-1,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=ref.max() - ref.min(),
    )
    assert metrics.ssim(ref, est) == pytest.approx(expected, rel=1e-10)
    assert metrics.ssim(ref, ref) == pytest.approx(1.0)


def test_sam_direct_formula_with_zero_pixels_and_clipping():
    ref, est = _pair((6, 5, 4))
    ref[0, 0] = 0.0  # skipped
    est[1, 1] = 0.0  # skipped
    est[2, 2] = 3.0 * ref[2, 2]  # cosine rounds to 1 (+eps): clipped
    angles = []
    for i in range(6):
        for j in range(5):
            r, e = ref[i, j], est[i, j]
            nr, ne = math.sqrt(sum(v * v for v in r)), math.sqrt(sum(v * v for v in e))
            if nr == 0 or ne == 0:
                continue
            c = sum(a * b for a, b in zip(r, e, strict=True)) / (nr * ne)
            angles.append(math.degrees(math.acos(max(-1.0, min(1.0, c)))))
    assert metrics.sam(ref, est) == pytest.approx(sum(angles) / len(angles), rel=1e-12)
    assert metrics.sam(ref, 2.5 * ref) == pytest.approx(0.0, abs=1e-6)


def test_cc_by_numpy_corrcoef():
    ref, est = _pair((9, 7, 3))
    expected = np.mean(
        [np.corrcoef(ref[..., k].ravel(), est[..., k].ravel())[0, 1] for k in range(3)]
    )
    assert metrics.cc(ref, est) == pytest.approx(expected, rel=1e-12)


def _q_brute(x, y):
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(ddof=1), y.var(ddof=1)
    cxy = np.sum((x - mx) * (y - my)) / (x.size - 1)
    return 4 * cxy * mx * my / ((vx + vy) * (mx**2 + my**2))


def test_uiqi_brute_force_windows():
    ref, est = _pair((11, 10, 2), noise=0.3)
    per_band = []
    for k in range(2):
        qs = [
            _q_brute(ref[i : i + 8, j : j + 8, k], est[i : i + 8, j : j + 8, k])
            for i in range(11 - 7)
            for j in range(10 - 7)
        ]
        per_band.append(np.mean(qs))
    assert metrics.uiqi(ref, est) == pytest.approx(np.mean(per_band), rel=1e-9)
    assert metrics.uiqi(ref, ref) == pytest.approx(1.0)


def test_batches_average_per_image():
    ref, est = _pair((3, 16, 16, 4))
    for fn in (metrics.psnr, metrics.sam, metrics.rmse, metrics.cc, metrics.uiqi, metrics.ssim):
        assert fn(ref, est) == pytest.approx(
            np.mean([fn(r, e) for r, e in zip(ref, est, strict=True)])
        )
    assert metrics.ergas(ref, est, 2) == pytest.approx(
        np.mean([metrics.ergas(r, e, 2) for r, e in zip(ref, est, strict=True)])
    )


def test_shape_errors_name_the_arguments():
    with pytest.raises(ValueError, match="est.shape"):
        metrics.psnr(np.ones((4, 4, 2)), np.ones((4, 4, 3)))
    with pytest.raises(ValueError, match="scale"):
        metrics.ergas(np.ones((4, 4, 2)), np.ones((4, 4, 2)), 0)


# ------------------------------------------------------------------ no reference


def test_d_lambda_d_s_qnr_brute_force():
    rng = np.random.default_rng(3)
    fused = rng.uniform(0.1, 1, (16, 16, 3))
    lr = rng.uniform(0.1, 1, (4, 4, 3))
    pan = rng.uniform(0.1, 1, (16, 16, 1))
    lr_pan = rng.uniform(0.1, 1, (4, 4, 1))

    def q(a, b, block):  # mean Q over sliding windows, independent loop
        h, w = a.shape
        return np.mean(
            [
                _q_brute(a[i : i + block, j : j + block], b[i : i + block, j : j + block])
                for i in range(h - block + 1)
                for j in range(w - block + 1)
            ]
        )

    diffs = [
        abs(q(fused[..., i], fused[..., j], 8) - q(lr[..., i], lr[..., j], 2))
        for i in range(3)
        for j in range(3)
        if i != j
    ]
    dl = metrics.d_lambda(fused, lr, block_size=8)
    assert dl == pytest.approx(np.mean(diffs), rel=1e-9)
    ds_terms = [
        abs(q(fused[..., i], pan[..., 0], 8) - q(lr[..., i], lr_pan[..., 0], 2)) for i in range(3)
    ]
    ds = metrics.d_s(fused, lr, pan, block_size=8, lr_msi=lr_pan)
    assert ds == pytest.approx(np.mean(ds_terms), rel=1e-9)
    # the default LR-MSI comes from the package's sensor model; qnr combines both terms
    ds_default = metrics.d_s(fused, lr, pan, block_size=8)
    assert metrics.qnr(fused, lr, pan, block_size=8) == pytest.approx((1 - dl) * (1 - ds_default))


# ------------------------------------------------------------------ stateful keras metrics


@pytest.mark.parametrize(
    "cls,fn",
    [
        (metrics.PSNR, metrics.psnr),
        (metrics.SAM, metrics.sam),
        (metrics.RMSE, metrics.rmse),
        (metrics.ERGAS, lambda r, e: metrics.ergas(r, e, 4)),
    ],
)
def test_keras_metric_accumulates_over_batches(cls, fn):
    ref, est = _pair((5, 8, 8, 6), seed=1, noise=0.1)
    ref = ref.astype("float32")
    est = est.astype("float32")
    ref[1, 0, 0] = 0.0  # a zero pixel, skipped by SAM
    m = cls()
    m.update_state(ref[:2], est[:2])
    m.update_state(ref[2:], est[2:])
    expected = fn(ref.astype(np.float64), est.astype(np.float64))
    assert float(keras.ops.convert_to_numpy(m.result())) == pytest.approx(expected, rel=1e-4)
    m.reset_state()
    assert float(keras.ops.convert_to_numpy(m.result())) == 0.0
    # sample weights: weight 0 drops an image
    m.update_state(ref, est, sample_weight=np.array([1, 1, 0, 0, 0], "float32"))
    assert float(keras.ops.convert_to_numpy(m.result())) == pytest.approx(
        fn(ref[:2].astype(np.float64), est[:2].astype(np.float64)), rel=1e-4
    )
    clone = cls.from_config(m.get_config())
    assert clone.get_config() == m.get_config()


def test_keras_metrics_in_compiled_fit_and_evaluate():
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, keras.layers.Conv2D(3, 1)(inp))
    model.compile(
        optimizer="sgd",
        loss="mse",
        metrics=[metrics.PSNR(), metrics.SAM(), metrics.ERGAS(scale=2), metrics.RMSE()],
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 1, (6, 8, 8, 3)).astype("float32")
    y = rng.uniform(0.1, 1, (6, 8, 8, 3)).astype("float32")
    out = model.evaluate(x, y, batch_size=4, return_dict=True, verbose=0)
    pred = model.predict(x, verbose=0).astype(np.float64)
    assert out["psnr"] == pytest.approx(metrics.psnr(y, pred), rel=1e-4)
    assert out["sam"] == pytest.approx(metrics.sam(y, pred), rel=1e-4)
    assert out["ergas"] == pytest.approx(metrics.ergas(y, pred, 2), rel=1e-4)
    assert out["rmse"] == pytest.approx(metrics.rmse(y, pred), rel=1e-4)


def test_uiqi_flat_windows_follow_wang_bovik():
    ref = np.full((10, 9, 1), 0.5)
    assert metrics.uiqi(ref, ref) == pytest.approx(1.0)
    # flat but different means: 2 m_x m_y / (m_x^2 + m_y^2)
    assert metrics.uiqi(ref, np.full_like(ref, 0.25)) == pytest.approx(0.8)
