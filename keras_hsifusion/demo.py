"""`make demo`: the shipped presets fuse a real held-out scene, next to the classical methods.

Run with `python -m keras_hsifusion.demo [--out DIR]`. What it does:

1. loads the AVIRIS Indian Pines cube (145 x 145 x 200, from the `tensorly` package), crops
   144 x 144 and simulates the x4 pair exactly as the presets' recipes did (Gaussian PSF,
   FWHM 4; Sentinel-2A B2/B3/B4/B8 MSI);
2. fuses the held-out test region (the rightmost 48 columns, never seen in training) with
   every shipped preset (`keras_hsifusion.list_presets()`) and with every classical method of
   `keras_hsifusion.baselines`;
3. prints PSNR/SAM/ERGAS/SSIM and the time of each, ranked by PSNR, and writes a figure
   (false colour, per-pixel SAM and RMSE error maps, reference vs fused spectra at a few
   pixels) and the fused cubes (`.npy`) to `--out` (default `runs/demo`);
4. simulates the held-out region once more with noise the presets never saw (LR-HSI SNR
   25 dB, MSI SNR 40 dB; `keras_hsifusion.evaluation.simulate_condition`) and adds one panel
   to the figure: the noisy LR-HSI and its fusion by `poly_detail_injection` and by the best
   preset, with their PSNR (the whole sweep: `khf bench robustness`).

`--train` instead runs the short training demonstration of earlier versions (a small HSSDCT
trained for `--steps` steps from scratch; it does not beat bicubic in that budget).

Without `KERAS_BACKEND` in the environment the demo runs on PyTorch (the fastest backend for
these models on CPU) when torch is installed.
"""

import argparse
import importlib.util
import os
import sys
import time

TRAIN_CONFIG = {
    "name": "demo_hssdct_indianpines_s2_x4",
    "seed": 0,
    "data": {"scale": 4, "sensor": "sentinel2a-10m", "patch_size": 32, "batch_size": 4},
    "model": {"class": "HSSDCT", "nf": 32, "gc": 16, "window_size": 2, "mlp_ratio": 2.0},
    "optimizer": {"class": "Adam", "learning_rate": 1e-3},
    "schedule": {"class": "cosine", "alpha": 0.1},
    "loss": "HSSDCTJointLoss",
}
# Pixels (row, column) of the held-out region whose spectra the figure shows.
SPECTRA_AT = ((20, 10), (70, 30), (120, 40))
# The noisy pair of the figure's last panel: SNR (dB) of the LR-HSI and of the HR-MSI.
NOISY_SNR_DB = (25.0, 40.0)
NOISY_CLASSICAL = "poly_detail_injection"


def _parse(argv):
    parser = argparse.ArgumentParser(
        prog="python -m keras_hsifusion.demo",
        description="Shipped presets and classical methods on held-out Indian Pines x4.",
    )
    parser.add_argument("--out", default=os.path.join("runs", "demo"), help="output folder")
    parser.add_argument(
        "--train", action="store_true", help="run the short training demonstration instead"
    )
    parser.add_argument("--steps", type=int, default=24, help="--train: training steps")
    parser.add_argument("--epochs", type=int, default=2, help="--train: evaluations")
    parser.add_argument("--seed", type=int, default=0, help="--train: seed")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.epochs < 1 or args.steps < args.epochs:
        parser.error(
            f"need steps >= epochs >= 1. Received: steps={args.steps}, epochs={args.epochs}"
        )
    return args


def _reexec_on_torch():
    # keras picks its backend when first imported, and `python -m keras_hsifusion.demo`
    # imports the package (hence keras) before this module runs: start again with the
    # variable set.
    if "KERAS_BACKEND" in os.environ or importlib.util.find_spec("torch") is None:
        return
    env = dict(os.environ, KERAS_BACKEND="torch")
    os.execve(sys.executable, [sys.executable, "-m", "keras_hsifusion.demo", *sys.argv[1:]], env)


def sam_map(ref, est):
    """Per-pixel spectral angle in degrees, `(H, W)`."""
    import numpy as np

    dot = np.sum(ref * est, axis=-1, dtype=np.float64)
    norms = np.linalg.norm(ref, axis=-1) * np.linalg.norm(est, axis=-1)
    return np.degrees(np.arccos(np.clip(dot / np.maximum(norms, 1e-12), -1.0, 1.0)))


def rmse_map(ref, est):
    """Per-pixel RMSE over bands, `(H, W)`."""
    import numpy as np

    return np.sqrt(np.mean(np.square(ref.astype(np.float64) - est), axis=-1))


def _false_colour(cube, wavelengths, ref):
    import numpy as np

    # Colour-infrared: NIR, red, green as R, G, B (vegetation shows red); stretched on `ref`.
    bands = [int(np.argmin(np.abs(wavelengths - nm))) for nm in (860.0, 650.0, 550.0)]
    lo, hi = (np.percentile(ref[..., bands], q, axis=(0, 1)) for q in (1, 99))
    return ((cube[..., bands] - lo) / (hi - lo + 1e-12)).clip(0, 1)


def write_figure(path, target, estimates, rows, wavelengths, noisy=None):
    """False colour, SAM and RMSE error maps, spectra; returns the path or None.

    `noisy` (optional, from `run_noisy`): `{"title", "lr_hsi", "estimates": {name: (cube,
    psnr)}}`, drawn as one more panel row (the noisy LR-HSI, then each fusion of it).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping the figure (pip install matplotlib).")
        return None
    import numpy as np

    names = list(estimates)
    n = max(len(names), len(noisy["estimates"]) + 1 if noisy else 0) + 1
    heights = [1, 1, 1] + ([1] if noisy else []) + [0.9]
    fig = plt.figure(figsize=(max(2.1 * n, 8.0), 12.5 + (3.2 if noisy else 0.0)))
    grid = fig.add_gridspec(len(heights), n, height_ratios=heights)
    sams = {k: sam_map(target, v) for k, v in estimates.items()}
    rmses = {k: rmse_map(target, v) for k, v in estimates.items()}
    sam_max = max(float(np.percentile(m, 99)) for m in sams.values())
    rmse_max = max(float(np.percentile(m, 99)) for m in rmses.values())
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(_false_colour(target, wavelengths, target))
    ax.set_title("reference\n(held-out)", fontsize=8)
    for r, c in SPECTRA_AT:
        ax.plot(c, r, "c+", ms=8)
    sam_axes, rmse_axes = [], []
    for i, name in enumerate(names, start=1):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(_false_colour(estimates[name], wavelengths, target))
        ax.set_title(f"{name}\n{rows[name]['psnr']:.2f} dB", fontsize=8)
        sam_axes.append(fig.add_subplot(grid[1, i]))
        im_sam = sam_axes[-1].imshow(sams[name], cmap="magma", vmin=0, vmax=sam_max)
        rmse_axes.append(fig.add_subplot(grid[2, i]))
        im_rmse = rmse_axes[-1].imshow(rmses[name], cmap="viridis", vmin=0, vmax=rmse_max)
    fig.add_subplot(grid[1, 0]).text(0.5, 0.5, "SAM (deg)\nper pixel", ha="center")
    fig.add_subplot(grid[2, 0]).text(0.5, 0.5, "RMSE\nper pixel", ha="center")
    if noisy:
        _noisy_panel(fig, grid[3, :], noisy, target, wavelengths, n)
    for a in fig.axes:
        a.axis("off")
    fig.colorbar(im_sam, ax=sam_axes, fraction=0.02)
    fig.colorbar(im_rmse, ax=rmse_axes, fraction=0.02)
    spectra = grid[-1, :].subgridspec(1, len(SPECTRA_AT), wspace=0.3)
    for k, (r, c) in enumerate(SPECTRA_AT):
        ax = fig.add_subplot(spectra[0, k])
        ax.plot(wavelengths, target[r, c], "k", lw=2, label="reference")
        for name in names:
            ax.plot(wavelengths, estimates[name][r, c], lw=0.8, label=name)
        ax.set_title(f"pixel ({r}, {c})", fontsize=8)
        ax.set_xlabel("wavelength (nm)", fontsize=8)
        ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)
    fig.suptitle(
        "Indian Pines x4, held-out 144x48 region; CIR false colour (860/650/550 nm)", fontsize=10
    )
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _noisy_panel(fig, cell, noisy, target, wavelengths, n):
    # one row: a label, the noisy LR-HSI (nearest-neighbour to the HR grid), its fusions
    import numpy as np

    row = cell.subgridspec(1, n)
    fig.add_subplot(row[0, 0]).text(0.5, 0.5, noisy["title"], ha="center", va="center")
    lr = noisy["lr_hsi"]
    scale = target.shape[0] // lr.shape[0]
    lr = np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)
    ax = fig.add_subplot(row[0, 1])
    ax.imshow(_false_colour(lr, wavelengths, target))
    ax.set_title("noisy LR-HSI\n(input)", fontsize=8)
    for i, (name, (est, psnr)) in enumerate(noisy["estimates"].items(), start=2):
        ax = fig.add_subplot(row[0, i])
        ax.imshow(_false_colour(est, wavelengths, target))
        ax.set_title(f"{name}\n{psnr:.2f} dB (noisy pair)", fontsize=8)


def run_noisy(data_config, scale, models, rows):
    """The held-out region under noise (`NOISY_SNR_DB`) fused by `NOISY_CLASSICAL` and by
    the preset of `models` with the best clean PSNR in `rows`; returns the figure's `noisy`
    argument and prints the PSNR of each."""
    import keras
    import numpy as np

    from keras_hsifusion import baselines, training
    from keras_hsifusion.evaluation import make_condition, simulate_condition

    snr_lr, snr_msi = NOISY_SNR_DB
    condition = make_condition(snr_lr_db=snr_lr, snr_msi_db=snr_msi, scale=scale)
    scene = simulate_condition(condition, data_config)
    inputs, target = scene["inputs"], scene["target"]
    fused = {
        NOISY_CLASSICAL: baselines.get_method(NOISY_CLASSICAL)(
            inputs["lr_hsi"][0], inputs["hr_msi"][0], scale
        )
    }
    if models:
        best = max(models, key=lambda name: rows[name]["psnr"])
        fused[best] = keras.ops.convert_to_numpy(models[best].predict_on_batch(inputs))[0]
    estimates = {}
    for name, est in fused.items():
        est = np.clip(est, 0.0, 1.0)
        psnr = training.region_metrics(target, est[None], scale)["psnr"]
        estimates[name] = (est, psnr)
        print(f"  noisy pair (LR-HSI {snr_lr:g} dB, MSI {snr_msi:g} dB): {name} {psnr:.2f} dB")
    title = f"noisy pair\nLR-HSI {snr_lr:g} dB\nMSI {snr_msi:g} dB\n(presets never\nsaw noise)"
    return {"title": title, "lr_hsi": inputs["lr_hsi"][0], "estimates": estimates}


def _methods():
    """(name, fn(lr_hsi, hr_msi, scale) -> (H, W, C)) for every classical method."""
    from keras_hsifusion import baselines

    return [(name, baselines.get_method(name)) for name in baselines.METHODS]


def run_presets(out):
    import keras
    import numpy as np

    import keras_hsifusion as khf
    from keras_hsifusion import training

    cards = khf.list_presets()
    print(f"keras_hsifusion demo - Keras {keras.__version__}, backend {keras.backend.backend()}")
    if not cards:
        print("No presets are shipped in this installation: showing the classical methods.")
        config = training.validate_config({"model": {"class": "HSSDCT"}})
    else:
        config = next(iter(cards.values()))["recipe_config"]
    data = training.build_data(config)
    scale = data["scale"]
    inputs, target = data["test_inputs"], data["test_target"]
    print(
        "Indian Pines (AVIRIS, 200 bands) crop 144x144, simulated x4: Gaussian PSF FWHM 4, "
        "Sentinel-2A B2/B3/B4/B8 MSI. Held-out test region: the rightmost 48 columns "
        f"({target.shape[1]}x{target.shape[2]}x{target.shape[3]}), never seen in training."
    )
    estimates, rows, seconds, models = {}, {}, {}, {}
    for name in cards:
        model = models[name] = khf.from_preset(name)
        model.predict_on_batch(inputs)  # first call builds/compiles; time the second
        t = time.time()
        est = keras.ops.convert_to_numpy(model.predict_on_batch(inputs))
        seconds[name] = time.time() - t
        estimates[name] = np.clip(est[0], 0.0, 1.0)
    for name, fn in _methods():
        t = time.time()
        est = fn(inputs["lr_hsi"][0], inputs["hr_msi"][0], scale)
        seconds[name] = time.time() - t
        estimates[name] = np.clip(est, 0.0, 1.0)
    for name, est in estimates.items():
        rows[name] = training.region_metrics(target, est[None], scale, ssim=True)

    ranked = sorted(rows, key=lambda k: -rows[k]["psnr"])
    print()
    print(f"  {'method':<38}{'PSNR dB ^':>10}{'SAM deg v':>10}{'ERGAS v':>9}{'SSIM ^':>8}{'s':>7}")
    for name in ranked:
        v = rows[name]
        kind = "preset" if name in cards else "classical"
        print(
            f"  {name + ' (' + kind + ')':<38}{v['psnr']:>10.2f}{v['sam']:>10.3f}"
            f"{v['ergas']:>9.3f}{v['ssim']:>8.4f}{seconds[name]:>7.2f}"
        )
    print("  (time: one fusion of the region on this machine, after a first warm-up call)")
    os.makedirs(out, exist_ok=True)
    for name, est in estimates.items():
        np.save(os.path.join(out, f"fused_{name}.npy"), est.astype(np.float32))
    print(f"Wrote the fused held-out cubes (float32, [0, 1]) to {out}/fused_<method>.npy")
    noisy = run_noisy(config["data"], scale, models, rows)
    png = write_figure(
        os.path.join(out, "demo.png"),
        target[0],
        estimates,
        rows,
        np.asarray(data["wavelengths"]),
        noisy=noisy,
    )
    if png:
        print(f"Wrote the figure (false colour, SAM/RMSE error maps, spectra) to {png}")
    return rows


def run_training(args):
    import keras

    from keras_hsifusion import training

    config = training.validate_config({**TRAIN_CONFIG, "seed": args.seed, "epochs": args.epochs})
    steps_per_epoch = -(-args.steps // args.epochs)
    config["data"]["patches_per_epoch"] = steps_per_epoch * config["data"]["batch_size"]
    keras.utils.set_random_seed(config["seed"])
    data = training.build_data(config)
    model = training.build_model(
        config["model"], data["hsi_bands"], data["msi_bands"], data["scale"]
    )
    model.compile(
        optimizer=training.build_optimizer(
            config["optimizer"], config["schedule"], steps_per_epoch, args.epochs
        ),
        loss=training.build_loss(config["loss"]),
        jit_compile=training.resolve_jit_compile(),
        run_eagerly=training.resolve_run_eagerly(steps=steps_per_epoch * args.epochs),
    )
    print(
        f"Training a small HSSDCT from scratch ({model.count_params():,} weights) for "
        f"{steps_per_epoch * args.epochs} steps of 4 patches of 32x32 (a short demonstration: "
        "it does not beat bicubic in this budget; the presets are the trained models)."
    )
    held_out = training.HeldOutMetrics(data["val_inputs"], data["val_target"], data["scale"])
    model.fit(
        data["train"], epochs=args.epochs, steps_per_epoch=steps_per_epoch, callbacks=[held_out]
    )
    v = held_out.history[-1]
    print(
        f"Validation strip after training: PSNR {v['psnr']:.2f} dB, SAM {v['sam']:.2f} deg, "
        f"ERGAS {v['ergas']:.2f}"
    )
    return v


def main(argv=None):
    args = _parse(sys.argv[1:] if argv is None else argv)
    if argv is None:
        _reexec_on_torch()
    start = time.time()
    if args.train:
        run_training(args)
    else:
        run_presets(args.out)
    print(f"Total time {time.time() - start:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
