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


def add_arguments(parser):
    """Adds the demo's options to `parser` (this module's and `khf demo`'s)."""
    parser.add_argument("--out", default=os.path.join("runs", "demo"), help="output folder")
    parser.add_argument(
        "--train", action="store_true", help="run the short training demonstration instead"
    )
    parser.add_argument("--steps", type=int, default=24, help="--train: training steps")
    parser.add_argument("--epochs", type=int, default=2, help="--train: evaluations")
    parser.add_argument("--seed", type=int, default=0, help="--train: seed")
    return parser


def check_arguments(args):
    """Raises a `ValueError` naming `steps` and `epochs` unless steps >= epochs >= 1."""
    if args.steps < 1 or args.epochs < 1 or args.steps < args.epochs:
        raise ValueError(
            f"need steps >= epochs >= 1. Received: steps={args.steps}, epochs={args.epochs}"
        )


def _parse(argv):
    parser = add_arguments(
        argparse.ArgumentParser(
            prog="python -m keras_hsifusion.demo",
            description="Shipped presets and classical methods on held-out Indian Pines x4.",
        )
    )
    args = parser.parse_args(argv)
    try:
        check_arguments(args)
    except ValueError as e:
        parser.error(str(e))
    return args


def _reexec_on_torch():
    # keras picks its backend when first imported, and `python -m keras_hsifusion.demo`
    # imports the package (hence keras) before this module runs: start again with the
    # variable set.
    if "KERAS_BACKEND" in os.environ or importlib.util.find_spec("torch") is None:
        return
    env = dict(os.environ, KERAS_BACKEND="torch")
    os.execve(sys.executable, [sys.executable, "-m", "keras_hsifusion.demo", *sys.argv[1:]], env)


def write_figure(path, target, estimates, rows, wavelengths, noisy=None):
    """The demo's figure (`keras_hsifusion.evaluation.figures.comparison_figure`): false
    colour, SAM and RMSE error maps, spectra at `SPECTRA_AT`; returns the path, or None
    without matplotlib.

    `noisy` (optional, from `run_noisy`): `{"title", "lr_hsi", "estimates": {name: (cube,
    psnr)}}`, drawn as one more panel row (the noisy LR-HSI, then each fusion of it).
    """
    from keras_hsifusion.evaluation.figures import comparison_figure

    try:
        return comparison_figure(
            path,
            target,
            estimates,
            {name: rows[name]["psnr"] for name in estimates},
            wavelengths,
            SPECTRA_AT,
            noisy=noisy,
            title="Indian Pines x4, held-out 144x48 region",
        )
    except ValueError as e:  # no matplotlib
        print(f"{e}: skipping the figure.")
        return None


def run_noisy(data_config, scale, models, rows):
    """The held-out region under noise (`NOISY_SNR_DB`) fused by `NOISY_CLASSICAL` and by
    the preset of `models` with the best clean PSNR in `rows`; returns the figure's `noisy`
    argument and prints the PSNR of each."""
    import keras
    import numpy as np

    from keras_hsifusion import baselines
    from keras_hsifusion.evaluation import make_condition, protocol, simulate_condition

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
        psnr = protocol.region_metrics(target, est[None], scale)["psnr"]
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
    from keras_hsifusion.evaluation import protocol

    cards = khf.list_presets()
    print(f"keras_hsifusion demo - Keras {keras.__version__}, backend {keras.backend.backend()}")
    if not cards:
        print("No presets are shipped in this installation: showing the classical methods.")
        config = training.validate_config({"model": {"class": "HSSDCT"}})
    else:
        config = next(iter(cards.values()))["recipe_config"]
    data = protocol.build_data(config)
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
        rows[name] = protocol.region_metrics(target, est[None], scale, ssim=True)

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
    from keras_hsifusion.evaluation import protocol
    from keras_hsifusion.utils import runtime

    config = training.validate_config({**TRAIN_CONFIG, "seed": args.seed, "epochs": args.epochs})
    steps_per_epoch = -(-args.steps // args.epochs)
    config["data"]["patches_per_epoch"] = steps_per_epoch * config["data"]["batch_size"]
    keras.utils.set_random_seed(config["seed"])
    data = protocol.build_data(config)
    model = training.build_model(
        config["model"], data["hsi_bands"], data["msi_bands"], data["scale"]
    )
    model.compile(
        optimizer=training.build_optimizer(
            config["optimizer"], config["schedule"], steps_per_epoch, args.epochs
        ),
        loss=training.build_loss(config["loss"]),
        jit_compile=runtime.resolve_jit_compile(),
        run_eagerly=runtime.resolve_run_eagerly(steps=steps_per_epoch * args.epochs),
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


def run(args):
    """Runs the demo with parsed arguments (`add_arguments`); `khf demo` calls it."""
    check_arguments(args)
    start = time.time()
    if args.train:
        run_training(args)
    else:
        run_presets(args.out)
    print(f"Total time {time.time() - start:.0f} s.")
    return 0


def main(argv=None):
    args = _parse(sys.argv[1:] if argv is None else argv)
    if argv is None:
        _reexec_on_torch()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
