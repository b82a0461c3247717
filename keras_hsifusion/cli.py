"""`khf`: the command line of keras_hsifusion.

    khf fuse LR_HSI HR_MSI -m METHOD -o OUT [--tile N] [--overlap N] [--batch-size N]
             [--backend B] [--overwrite] [--preview out.png] [--quiet]
    khf evaluate EST [REF] [--lr-hsi LR --hr-msi MSI] [--scale N] [--figure out.png]
    khf presets [--json]
    khf train CONFIG [--resume] [--epochs N] [--out DIR]
    khf adapt LR_HSI HR_MSI -m MODEL_OR_PRESET -o OUT_DIR [--steps N] [--resume]
    khf bench [benchmarks/run.py options]
    khf bench robustness [--methods ...] [--presets ...] [--grid default|quick] [--out PREFIX]
    khf demo [--out DIR] [--train]

Every command takes `--backend {tensorflow,torch,jax}` (sets `KERAS_BACKEND`: as importing
the package imports Keras, another backend than the running one means running the command
again in a fresh process),
`--quiet` (no progress bars or messages) and `--debug` (show the traceback of an error).
Exit code 0 on success; on an error, one line `khf: error: ...` on stderr and exit code 1
(2 for a bad command line). Outputs are never overwritten without `--overwrite` and are
written to a temporary file that is renamed when complete.

At start the command line raises glibc's malloc thresholds (`M_MMAP_THRESHOLD` to 32 MiB,
`M_TRIM_THRESHOLD` to 256 MiB), so that the tile-sized buffers of a long fusion are reused
instead of being mapped and unmapped for every tile; set `KHF_MALLOC_TUNING=0` to keep the
defaults. See docs/cli.md.

One cohesive module (the parser and one function per command, which share the file, error
and output conventions above), hence over 450 lines.
"""

import argparse
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np

from keras_hsifusion.utils.allocator import tune_malloc

__all__ = ["build_parser", "main"]

BACKENDS = ("tensorflow", "torch", "jax")
_REEXEC_FLAG = "KHF_CLI_REEXEC"


class UserError(Exception):
    """An error in what the user asked for: reported as one line, exit code 1."""


# --------------------------------------------------------------------------- set-up


def _switch_backend(backend, argv, in_process):
    """Makes Keras use `backend`; returns an exit code if the command ran elsewhere."""
    # Importing this package imported Keras, which fixed its backend: a different one needs
    # a new process with KERAS_BACKEND set.
    import keras

    current = keras.backend.backend()
    if current == backend:
        return None
    if os.environ.get(_REEXEC_FLAG) == backend:
        raise UserError(
            f"could not switch Keras to backend {backend!r} (it runs on {current!r}); "
            f"set KERAS_BACKEND={backend} in the environment"
        )
    env = dict(os.environ, KERAS_BACKEND=backend, **{_REEXEC_FLAG: backend})
    cmd = [sys.executable, "-m", "keras_hsifusion", *argv]
    if not in_process:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, cmd, env)
    return subprocess.call(cmd, env=env)


def _check_outputs(paths, overwrite):
    for path in list(paths):
        if path and path.lower().endswith(".hdr"):  # an ENVI output is two files
            paths.append(os.path.splitext(path)[0] + ".img")
    for path in paths:
        if not path:
            continue
        if os.path.exists(path) and not overwrite:
            raise UserError(f"{path} exists; pass --overwrite to replace it")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise UserError(f"the folder of the output {path} does not exist")


class _Log:
    def __init__(self, quiet):
        self.quiet = quiet

    def __call__(self, message):
        if not self.quiet:
            print(message, flush=True)


def _repo_root():
    """The source checkout holding this package (None for an installed wheel)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return root if os.path.isdir(os.path.join(root, "benchmarks")) else None


# --------------------------------------------------------------------------- fuse


class _MaskedOut:
    """Forwards `out[r0:r1, c0:c1, :] = block` with nodata pixels set to `nodata`."""

    def __init__(self, target, valid, nodata):
        self.target, self.valid, self.nodata = target, valid, nodata
        self.shape, self.dtype, self.ndim = target.shape, target.dtype, 3

    def __setitem__(self, key, block):
        from keras_hsifusion.data.raster import _split_key

        (r0, r1), (c0, c1), (b0, b1) = _split_key(key, self.shape)
        block = np.array(np.broadcast_to(block, (r1 - r0, c1 - c0, b1 - b0)), np.float32)
        block[~self.valid[r0:r1, c0:c1]] = self.nodata
        self.target[key] = block

    def __getitem__(self, key):
        return self.target[key]


def _neutral_fill(array, valid):
    """A copy of `array` with invalid pixels set to the band means of the valid ones."""
    if valid.all():
        return array
    out = np.array(array, np.float32)
    good = out[valid]
    means = good.mean(axis=0) if good.size else np.zeros(out.shape[-1], np.float32)
    out[~valid] = means
    return out


def _hr_grid(hsi, msi, scale):
    """CRS and transform of the output: the HR-MSI grid (or the LR-HSI grid / scale)."""
    if msi.transform is not None:
        return msi.crs or hsi.crs, msi.transform
    if hsi.transform is not None:
        a, b, c, d, e, f = hsi.transform
        return hsi.crs, (a / scale, b / scale, c, d / scale, e / scale, f)
    return msi.crs or hsi.crs, None


def _method(name):
    if name.endswith(".keras"):
        if not os.path.isfile(name):
            raise UserError(f"no such model file: {name}")
        from keras_hsifusion.utils.files import load_keras_file

        return load_keras_file(name, compile=False)
    return name


def _preview(path, source, wavelengths, bands, log):
    """A false-colour PNG of three bands of `source` (read from disk, not the whole cube)."""
    from keras_hsifusion.data import raster

    bands, name = raster.false_colour_bands(wavelengths, bands)
    picked = raster.read_raster(source, bands=bands)
    rgb, valid = picked.array, picked.valid_mask()
    step = max(1, -(-max(rgb.shape[:2]) // 4096))
    raster.write_png(path, raster.false_colour(rgb[::step, ::step], valid[::step, ::step]))
    log(f"wrote {path} ({name})")


def cmd_fuse(args, log):
    from keras_hsifusion.data import raster

    _check_outputs([args.output, args.preview], args.overwrite)
    if args.tile is not None and args.tile < 1:
        raise UserError(f"--tile must be >= 1. Received: {args.tile}")
    if args.overlap is not None and args.overlap < 0:
        raise UserError(f"--overlap must be >= 0. Received: {args.overlap}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1. Received: {args.batch_size}")
    t0 = time.time()
    hsi = raster.read_raster(args.lr_hsi, key=args.hsi_key)
    msi = raster.read_raster(args.hr_msi, key=args.msi_key)
    scale = raster.check_footprints(hsi, msi, scale=args.scale)
    log(f"LR-HSI {hsi.describe()}")
    log(f"HR-MSI {msi.describe()}; scale {scale}")
    lr_valid, hr_valid = hsi.valid_mask(), msi.valid_mask()
    valid = hr_valid & np.repeat(np.repeat(lr_valid, scale, axis=0), scale, axis=1)
    nodata = hsi.nodata if hsi.nodata is not None else msi.nodata
    if nodata is None and not valid.all():
        nodata = float("nan")
    if not valid.all():
        log(f"{int((~valid).sum())} HR pixels are nodata in an input; they stay nodata ({nodata})")
    lr, hr = _neutral_fill(hsi.array, lr_valid), _neutral_fill(msi.array, hr_valid)
    srf = None
    if args.sensor:
        from keras_hsifusion.data import spectral_response

        if hsi.wavelengths is None:
            raise UserError(f"--sensor needs the wavelengths of the LR-HSI {args.lr_hsi}")
        srf = spectral_response(args.sensor, hsi.wavelengths)
    crs, transform = _hr_grid(hsi, msi, scale)
    shape = (msi.shape[0], msi.shape[1], hsi.shape[-1])
    if os.path.splitext(args.output)[1].lower() == ".npy" and (
        transform is not None or hsi.wavelengths is not None
    ):
        log(f"note: {args.output}: .npy files keep no georeferencing or wavelengths")
    method = _method(args.method)
    from keras_hsifusion import baselines

    classical = isinstance(method, str) and method in baselines.METHODS
    if (srf is not None or args.psf_fwhm is not None) and not classical:
        raise UserError(
            f"--sensor and --psf-fwhm apply to classical methods only; {args.method} is a "
            "model, which learned its sensor from its training data"
        )
    if isinstance(method, str) and not classical:  # a preset learned its bands
        from keras_hsifusion import presets

        card = None
        with contextlib.suppress(ValueError, FileNotFoundError):  # not a preset: `fuse` says
            card = presets.load_card(method)
        presets.check_wavelengths(card, hsi.wavelengths, name="LR-HSI")
    import keras

    from keras_hsifusion.inference import fuse

    log(f"method {args.method}, Keras backend {keras.backend.backend()}")

    with raster.open_writer(
        args.output,
        shape,
        crs=crs,
        transform=transform,
        nodata=nodata,
        wavelengths=hsi.wavelengths,
        band_names=hsi.band_names,
        mat_version=args.mat_version,
    ) as writer:
        out = writer if valid.all() else _MaskedOut(writer, valid, nodata)
        fuse(
            lr,
            hr,
            method,
            scale=scale,
            tile=args.tile,
            overlap=args.overlap,
            batch_size=args.batch_size,
            progress=not args.quiet,
            out=out,
            srf=srf,
            psf_fwhm=args.psf_fwhm,
        )
    log(f"wrote {args.output} ({shape[0]}x{shape[1]}x{shape[2]}) in {time.time() - t0:.1f} s")
    if args.preview:
        _preview(args.preview, args.output, hsi.wavelengths, shape[-1], log)
    return 0


# --------------------------------------------------------------------------- evaluate


def _same_grid(a, b, what):
    from keras_hsifusion.data.raster import same_crs

    if a.shape[:2] != b.shape[:2]:
        raise UserError(f"{what}: sizes differ: {a.describe()} vs {b.describe()}")
    if a.transform is not None and b.transform is not None:
        tol = 0.01 * min(a.pixel_size)
        if any(abs(x - y) > tol for x, y in zip(a.transform, b.transform)) or (
            a.crs and b.crs and not same_crs(a.crs, b.crs)
        ):
            raise UserError(f"{what}: grids differ: {a.describe()} vs {b.describe()}")


def _reference_metrics(ref, est, valid, scale):
    from keras_hsifusion import metrics

    values = {}
    if valid.all():
        r, e = ref.astype(np.float64), est.astype(np.float64)
        values["ssim"] = metrics.ssim(r, e)
    else:  # pixel-wise metrics on the valid pixels only
        r = ref[valid][None].astype(np.float64)
        e = est[valid][None].astype(np.float64)
    values.update(psnr=metrics.psnr(r, e), sam=metrics.sam(r, e), rmse=metrics.rmse(r, e))
    if scale:
        values["ergas"] = metrics.ergas(r, e, scale)
    return values


def _spectra_pixels(score, valid, count=3):
    order = np.flatnonzero(valid.reshape(-1))
    order = order[np.argsort(score.reshape(-1)[order], kind="stable")]
    picks = [order[int(q * (len(order) - 1))] for q in (0.5, 0.9, 0.99)[:count]]
    return [divmod(int(i), score.shape[1]) for i in picks]


def _figure(path, panels, maps, spectra, wavelengths, title):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise UserError("--figure needs matplotlib: pip install matplotlib") from e
    from keras_hsifusion.utils.files import atomic_path

    n = max(len(panels), len(maps), len(spectra))
    fig, axes = plt.subplots(3, n, figsize=(3.2 * n, 9.0), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (name, rgb, marks) in enumerate(panels):
        axes[0, i].imshow(rgb)
        axes[0, i].set_title(name, fontsize=8)
        for r, c in marks:
            axes[0, i].plot(c, r, "c+", ms=8)
    for i, (name, image, cmap) in enumerate(maps):
        im = axes[1, i].imshow(image, cmap=cmap)
        axes[1, i].set_title(name, fontsize=8)
        fig.colorbar(im, ax=axes[1, i], fraction=0.046)
    x = np.arange(len(spectra[0][1][0][1])) if wavelengths is None else wavelengths
    for i, (name, curves) in enumerate(spectra):
        ax = axes[2, i]
        ax.axis("on")
        for label, values, style in curves:
            ax.plot(x, values, style, lw=1.2, label=label)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("wavelength (nm)" if wavelengths is not None else "band", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
        os.chmod(tmp, 0o644)
    plt.close(fig)


def _figure_with_reference(path, ref, est, valid, wavelengths, names):
    from keras_hsifusion.data import raster
    from keras_hsifusion.demo import rmse_map, sam_map

    rmse, sam = rmse_map(ref, est), sam_map(ref, est)
    rmse[~valid], sam[~valid] = np.nan, np.nan
    pixels = _spectra_pixels(np.nan_to_num(rmse), valid)
    bands, combo = raster.false_colour_bands(wavelengths, ref.shape[-1])
    panels = [
        (f"reference ({combo})", raster.false_colour(ref[..., bands], valid), pixels),
        ("estimate", raster.false_colour(est[..., bands], valid, ref[..., bands]), pixels),
    ]
    maps = [("SAM per pixel (deg)", sam, "magma"), ("RMSE per pixel", rmse, "viridis")]
    spectra = [
        (
            f"pixel {p} ({q} RMSE quantile)",
            [("reference", ref[p], "k-"), ("estimate", est[p], "r-")],
        )
        for p, q in zip(pixels, ("50%", "90%", "99%"))
    ]
    _figure(path, panels, maps, spectra, wavelengths, f"{names[0]} vs {names[1]}")


def _figure_no_reference(path, est, lr, degraded, wavelengths, name):
    from keras_hsifusion.data import raster
    from keras_hsifusion.demo import rmse_map, sam_map

    rmse, sam = rmse_map(lr, degraded), sam_map(lr, degraded)
    valid = np.ones(lr.shape[:2], bool)
    pixels = _spectra_pixels(rmse, valid)
    bands, combo = raster.false_colour_bands(wavelengths, est.shape[-1])
    panels = [
        (f"LR-HSI ({combo})", raster.false_colour(lr[..., bands]), pixels),
        ("fused", raster.false_colour(est[..., bands], reference=lr[..., bands]), []),
    ]
    maps = [
        ("SAM(LR-HSI, degraded fused) (deg)", sam, "magma"),
        ("RMSE(LR-HSI, degraded fused)", rmse, "viridis"),
    ]
    spectra = [
        (
            f"LR pixel {p}",
            [("LR-HSI", lr[p], "k-"), ("fused, degraded", degraded[p], "r-")],
        )
        for p in pixels
    ]
    _figure(
        path,
        panels,
        maps,
        spectra,
        wavelengths,
        f"{name}: consistency with the LR-HSI (no reference)",
    )


def _print_metrics(values, log, units):
    for key, value in values.items():
        log(f"  {key:<9}{value:12.6f} {units.get(key, '')}".rstrip())


def cmd_evaluate(args, log):
    from keras_hsifusion.data import raster

    _check_outputs([args.figure, args.json], args.overwrite)
    est = raster.read_raster(args.estimate, key=args.key)
    result = {"estimate": args.estimate}
    units = {"psnr": "dB", "sam": "deg"}
    if args.reference:
        ref = raster.read_raster(args.reference, key=args.key)
        if ref.shape != est.shape:
            raise UserError(f"shapes differ: {est.describe()} vs {ref.describe()}")
        _same_grid(est, ref, "estimate and reference")
        scale = args.scale
        if scale is None and args.lr_hsi:
            scale = raster.check_footprints(raster.read_raster(args.lr_hsi), ref)
        valid = est.valid_mask() & ref.valid_mask()
        if not valid.any():
            raise UserError("no pixel is valid in both the estimate and the reference")
        values = _reference_metrics(ref.array, est.array, valid, scale)
        result.update(reference=args.reference, scale=scale, valid_pixels=int(valid.sum()))
        log(f"{args.estimate} against {args.reference} ({int(valid.sum())} valid pixels):")
        if "ergas" not in values:
            log("  (no ERGAS: pass --scale or --lr-hsi to give the resolution ratio)")
        if "ssim" not in values:
            log("  (no SSIM: it needs a full image and some pixels are nodata)")
        if args.figure:
            _figure_with_reference(
                args.figure,
                ref.array,
                est.array,
                valid,
                ref.wavelengths if ref.wavelengths is not None else est.wavelengths,
                (args.estimate, args.reference),
            )
    else:
        if not (args.lr_hsi and args.hr_msi):
            raise UserError(
                "without a reference, pass --lr-hsi and --hr-msi for the full-resolution "
                "indices D_lambda, D_s and QNR"
            )
        from keras_hsifusion import metrics
        from keras_hsifusion.data import spatial_degrade

        hsi, msi = raster.read_raster(args.lr_hsi), raster.read_raster(args.hr_msi)
        scale = raster.check_footprints(hsi, msi, scale=args.scale)
        _same_grid(est, msi, "estimate and HR-MSI")
        if est.shape[-1] != hsi.shape[-1]:
            raise UserError(f"band counts differ: {est.describe()} vs {hsi.describe()}")
        valid = est.valid_mask() & msi.valid_mask()
        lr_valid = hsi.valid_mask()
        f = _neutral_fill(est.array, valid).astype(np.float64)
        lr = _neutral_fill(hsi.array, lr_valid).astype(np.float64)
        m = _neutral_fill(msi.array, valid).astype(np.float64)
        block = args.block_size
        pairs = f.shape[-1] * (f.shape[-1] - 1) // 2
        log(
            f"{args.estimate}, no reference (Alparone et al. 2008 QNR; windows {block} px at "
            f"high resolution, {max(block // scale, 2)} at low):"
        )
        log(f"  computing D_lambda ({pairs} band pairs) and D_s ...")
        dl = metrics.d_lambda(f, lr, block_size=block, scale=scale)
        ds = metrics.d_s(f, lr, m, block_size=block, scale=scale)
        values = {"d_lambda": dl, "d_s": ds, "qnr": (1.0 - dl) * (1.0 - ds)}
        result.update(lr_hsi=args.lr_hsi, hr_msi=args.hr_msi, scale=scale, block_size=block)
        if not valid.all() or not lr_valid.all():
            log("  (nodata pixels were filled with band means before computing the indices)")
        if args.figure:
            degraded = spatial_degrade(f, scale)
            _figure_no_reference(
                args.figure,
                f,
                lr,
                degraded,
                hsi.wavelengths if hsi.wavelengths is not None else est.wavelengths,
                args.estimate,
            )
    result["metrics"] = values
    _print_metrics(values, log, units)
    if args.figure:
        log(f"wrote {args.figure}")
    if args.json:
        from keras_hsifusion.utils.files import atomic_write_json

        atomic_write_json(args.json, result)
        os.chmod(args.json, 0o644)
        log(f"wrote {args.json}")
    return 0


# --------------------------------------------------------------------------- the rest


def cmd_presets(args, log):
    import keras_hsifusion as khf

    cards = khf.list_presets()
    if args.json:
        print(json.dumps(cards, indent=1))
        return 0
    header = f"{'name':<30}{'class':<9}{'params':>11}{'scale':>6}{'bands':>10}  {'MSI':<28}"
    print(header + f"{'PSNR dB':>8}")
    for name, card in cards.items():
        msi = f"{card.get('msi_sensor', '?')} {','.join(card.get('msi_band_names', []))}"
        psnr = card.get("metrics", {}).get("model", {}).get("psnr")
        bands = f"{card.get('hsi_bands', '?')}+{card.get('msi_bands', '?')}"
        print(
            f"{name:<30}{card['class']:<9}{card.get('params', 0):>11,}{card.get('scale', '?'):>6}"
            f"{bands:>10}  {msi:<28}" + (f"{psnr:>8.2f}" if psnr is not None else f"{'-':>8}")
        )
    return 0


def _resolve_config(config):
    if os.path.isfile(config):
        return config
    root = _repo_root()
    for candidate in (
        os.path.join(root or "", "training", "configs", config + ".py"),
        os.path.join(root or "", "training", "configs", config),
    ):
        if root and os.path.isfile(candidate):
            return candidate
    raise UserError(f"no such config file: {config}")


def cmd_train(args, log):
    from keras_hsifusion import training

    config = training.load_config(_resolve_config(args.config))
    if args.distribution:
        value = None if args.distribution == "none" else args.distribution
        config = training.validate_config({**config, "distribution": value})
    out = args.out or os.path.join("runs", config["name"])
    if os.path.exists(os.path.join(out, "last.keras")) and not (args.resume or args.overwrite):
        raise UserError(
            f"{out} already holds a run; pass --resume to continue it or --overwrite to start again"
        )
    verbose = 0 if args.quiet else args.verbose
    verbose = verbose if verbose == "auto" else int(verbose)
    from keras_hsifusion.utils.lock import RunLockedError

    try:
        results = training.run_experiment(
            config,
            out,
            epochs=args.epochs,
            resume=args.resume,
            verbose=verbose,
            log=log if args.quiet else print,
        )
    except RunLockedError as e:  # another run holds the folder
        raise UserError(str(e)) from e
    if results is not None:  # None on the ranks > 0 of a torch.distributed run
        print(json.dumps(results, indent=1))
    return 0


def cmd_adapt(args, log):
    from keras_hsifusion.utils.lock import RunLockedError

    model_kwargs = None
    if args.model_args:
        try:
            model_kwargs = json.loads(args.model_args)
        except json.JSONDecodeError as e:
            raise UserError(
                f"--model-args is not JSON ({e}). Received: {args.model_args}"
            ) from None
        if not isinstance(model_kwargs, dict):
            raise UserError(f"--model-args must be a JSON object. Received: {args.model_args}")
    psf = args.psf_fwhm
    if psf not in (None, "estimate"):
        try:
            psf = float(psf)
        except ValueError:
            raise UserError(f"--psf-fwhm must be a number or 'estimate'. Received: {psf}") from None
    verbose = 0 if args.quiet else args.verbose
    verbose = verbose if verbose == "auto" else int(verbose)
    try:
        from keras_hsifusion.adaptation import adapt

        model = adapt(
            args.lr_hsi,
            args.hr_msi,
            args.model,
            args.output,
            scale=args.scale,
            model_kwargs=model_kwargs,
            steps=args.steps,
            full_resolution_steps=args.full_resolution_steps,
            steps_per_epoch=args.steps_per_epoch,
            patch_size=args.patch_size,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            srf=args.srf,
            psf_fwhm=psf,
            val_fraction=args.val_fraction,
            selection=args.selection,
            seed=args.seed,
            resume=args.resume,
            overwrite=args.overwrite,
            verbose=verbose,
            log=log,
            hsi_key=args.hsi_key,
            msi_key=args.msi_key,
        )
    except RunLockedError as e:  # another run holds the folder
        raise UserError(str(e)) from e
    metrics = model.preset_card["metrics"]
    val, full = metrics["reduced_resolution_validation"], metrics["full_resolution"]
    log(f"{args.output}: reduced-resolution validation strip (model and classical methods):")
    for name, values in val.items():
        log(
            f"  {name:<22} PSNR {values['psnr']:7.3f} dB  SAM {values['sam']:6.3f} deg  "
            f"ERGAS {values['ergas']:6.3f}"
        )
    log(
        f"  whole pair, no reference: QNR {full['qnr']:.4f} (D_lambda {full['d_lambda']:.4f}, "
        f"D_s {full['d_s']:.4f})"
    )
    log(f"fuse the pair with: khf fuse {args.lr_hsi} {args.hr_msi} -m {args.output} -o OUT")
    return 0


def cmd_bench(args, extra, log):
    if extra[:1] == ["robustness"]:  # a library command: works from an installed wheel too
        from keras_hsifusion.evaluation import robustness

        return robustness.main(extra[1:], prog="khf bench robustness")
    root = _repo_root()
    runner = os.path.join(root or "", "benchmarks", "run.py")
    if not root or not os.path.isfile(runner):
        raise UserError(
            "khf bench runs benchmarks/run.py of a source checkout, which is not next to this "
            f"installation ({os.path.dirname(os.path.abspath(__file__))})"
        )
    spec = importlib.util.spec_from_file_location("khf_benchmarks_run", runner)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(extra)
    return 0


def cmd_demo(args, extra, log):
    from keras_hsifusion import demo

    return demo.main(extra)


# --------------------------------------------------------------------------- parser


def build_parser():
    """The `khf` argument parser (fuse, evaluate, presets, train, adapt, bench, demo)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--backend", choices=BACKENDS, help="Keras backend (default: KERAS_BACKEND or Keras')"
    )
    common.add_argument("--quiet", "-q", action="store_true", help="no progress or messages")
    common.add_argument("--debug", action="store_true", help="show tracebacks of errors")

    parser = argparse.ArgumentParser(
        prog="khf",
        description="keras_hsifusion: hyperspectral/multispectral image fusion.",
        epilog="See `khf COMMAND --help` and docs/cli.md.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "fuse",
        parents=[common],
        help="fuse an LR-HSI with an HR-MSI (files in, file out)",
        description="Fuses an LR-HSI with an HR-MSI into a file on the HR-MSI grid with the "
        "LR-HSI's wavelengths (GeoTIFF, ENVI .hdr, HDF5, .mat, .npz, .npy).",
    )
    p.add_argument("lr_hsi", metavar="LR_HSI", help="low-resolution hyperspectral image file")
    p.add_argument("hr_msi", metavar="HR_MSI", help="high-resolution multispectral image file")
    p.add_argument(
        "-m",
        "--method",
        required=True,
        help="preset name (khf presets), preset folder, .keras file or classical method "
        "(bicubic, detail_injection, poly_detail_injection)",
    )
    p.add_argument("-o", "--output", required=True, help="output file (format from extension)")
    p.add_argument("--tile", type=int, default=None, help="HR tile size (default: per model)")
    p.add_argument("--overlap", type=int, default=None, help="HR tile overlap in pixels")
    p.add_argument("--batch-size", type=int, default=1, help="tiles per model call")
    p.add_argument("--scale", type=int, default=None, help="expected resolution ratio")
    p.add_argument("--sensor", help="MSI sensor for methods that use a spectral response")
    p.add_argument("--psf-fwhm", type=float, default=None, help="PSF FWHM in HR pixels")
    p.add_argument("--hsi-key", help="array name in an .h5/.mat/.npz LR-HSI")
    p.add_argument("--msi-key", help="array name in an .h5/.mat/.npz HR-MSI")
    p.add_argument("--mat-version", choices=("5", "7.3"), default="5", help=".mat output")
    p.add_argument("--preview", metavar="PNG", help="also write a false-colour PNG")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")

    p = sub.add_parser(
        "evaluate",
        parents=[common],
        help="metrics of a fused image",
        description="Reduced-resolution metrics against a reference (PSNR, SAM, ERGAS, RMSE, "
        "SSIM) or, without one, the full-resolution D_lambda, D_s and QNR of Alparone et al. "
        "(2008) from the fusion's inputs.",
    )
    p.add_argument("estimate", metavar="EST", help="fused image file")
    p.add_argument("reference", metavar="REF", nargs="?", help="reference image file")
    p.add_argument("--lr-hsi", help="the LR-HSI input (no-reference mode; scale for ERGAS)")
    p.add_argument("--hr-msi", help="the HR-MSI input (no-reference mode)")
    p.add_argument("--scale", type=int, default=None, help="resolution ratio (ERGAS)")
    p.add_argument("--block-size", type=int, default=32, help="QNR window (HR pixels)")
    p.add_argument("--key", help="array name in .h5/.mat/.npz files")
    p.add_argument("--figure", metavar="PNG", help="error maps and spectra (matplotlib)")
    p.add_argument("--json", metavar="PATH", help="also write the metrics as JSON")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")

    p = sub.add_parser("presets", parents=[common], help="list the shipped presets")
    p.add_argument("--json", action="store_true", help="print the full cards as JSON")

    p = sub.add_parser(
        "train",
        parents=[common],
        help="train a recipe (training/configs/*.py or JSON)",
        description="Runs one training experiment (keras_hsifusion.training.run_experiment).",
    )
    p.add_argument("config", metavar="CONFIG", help="recipe file (.py with CONFIG, or .json)")
    p.add_argument("--epochs", type=int, default=None, help="total epochs (override)")
    p.add_argument("--out", default=None, help="run folder (default runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from last.keras")
    p.add_argument("--overwrite", action="store_true", help="start again in a used folder")
    p.add_argument("--verbose", default="auto", help="fit verbosity: auto, 0, 1 or 2")
    p.add_argument(
        "--distribution",
        choices=["none", "data_parallel"],
        default=None,
        help="override the config's `distribution` (docs/distributed.md; under PyTorch "
        "launch with `torchrun --nproc-per-node N -m keras_hsifusion train ...`)",
    )

    p = sub.add_parser(
        "adapt",
        parents=[common],
        help="train a zoo model on one real pair, without a reference (-> a preset folder)",
        description="Trains a model on the pair alone (keras_hsifusion.adapt): reduced-"
        "resolution (Wald) self-supervision, then full-resolution consistency; writes a "
        "preset folder for `khf fuse -m OUT_DIR`.",
    )
    p.add_argument("lr_hsi", metavar="LR_HSI", help="low-resolution hyperspectral image file")
    p.add_argument("hr_msi", metavar="HR_MSI", help="high-resolution multispectral image file")
    p.add_argument(
        "-m",
        "--model",
        required=True,
        help="preset name or folder (fine-tuning) or zoo model class, e.g. HSSDCT (from scratch)",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="preset folder")
    p.add_argument("--model-args", help="JSON constructor arguments, e.g. '{\"nf\": 32}'")
    p.add_argument("--scale", type=int, default=None, help="expected resolution ratio")
    p.add_argument("--steps", type=int, default=500, help="reduced-resolution steps")
    p.add_argument(
        "--full-resolution-steps", type=int, default=100, help="consistency steps (0: none)"
    )
    p.add_argument("--steps-per-epoch", type=int, default=25, help="steps between validations")
    p.add_argument("--patch-size", type=int, default=32, help="patch side in LR-HSI pixels")
    p.add_argument("--batch-size", type=int, default=8, help="patches per step")
    p.add_argument("--learning-rate", type=float, default=5e-4, help="Adam, cosine decay")
    p.add_argument("--srf", default="estimate", help="'estimate' or an MSI sensor name")
    p.add_argument("--psf-fwhm", default=None, help="PSF FWHM in HR pixels, or 'estimate'")
    p.add_argument("--val-fraction", type=float, default=0.25, help="validation strip share")
    p.add_argument("--selection", choices=["validation", "full_resolution"], default="validation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hsi-key", help="array name in an .h5/.mat/.npz LR-HSI")
    p.add_argument("--msi-key", help="array name in an .h5/.mat/.npz HR-MSI")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--overwrite", action="store_true", help="start again in a used folder")
    p.add_argument("--verbose", default="auto", help="fit verbosity: auto, 0, 1 or 2")

    sub.add_parser(
        "bench",
        parents=[common],
        add_help=False,
        help="throughput/memory benchmarks (benchmarks/run.py; `khf bench --help`); "
        "`khf bench robustness`: methods under a grid of PSF widths and noise levels",
    )
    sub.add_parser(
        "demo",
        parents=[common],
        add_help=False,
        help="the shipped presets on held-out Indian Pines (`khf demo --help`)",
    )
    return parser


def main(argv=None):
    """Runs `khf`; returns the exit code (`sys.exit(main())` in the console script)."""
    in_process = argv is not None
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("bench", "demo"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    log = _Log(getattr(args, "quiet", False))
    if not in_process:
        tune_malloc()
    try:
        backend = args.backend
        if (
            backend is None
            and args.command == "demo"
            and "KERAS_BACKEND" not in os.environ
            and importlib.util.find_spec("torch") is not None
        ):
            backend = "torch"  # the demo's own default (see keras_hsifusion.demo)
        if backend:
            code = _switch_backend(backend, argv, in_process)
            if code is not None:
                return code
        if not in_process:  # a process of ours: keep JAX's compiled programs on disk
            from keras_hsifusion.profiling.native import enable_compilation_cache

            enable_compilation_cache()
        commands = {
            "fuse": cmd_fuse,
            "evaluate": cmd_evaluate,
            "presets": cmd_presets,
            "train": cmd_train,
            "adapt": cmd_adapt,
        }
        if args.command in commands:
            return commands[args.command](args, log)
        if args.quiet:
            with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
                return (cmd_bench if args.command == "bench" else cmd_demo)(args, extra, log)
        return (cmd_bench if args.command == "bench" else cmd_demo)(args, extra, log)
    except KeyboardInterrupt:
        print(f"khf {args.command}: interrupted", file=sys.stderr)
        return 130
    except SystemExit as e:  # argparse of a wrapped runner
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Exception as e:
        if getattr(args, "debug", False):
            raise
        message = " ".join(str(e).split()) or type(e).__name__
        if not isinstance(
            e,
            (
                UserError,
                ValueError,
                FileNotFoundError,
                FileExistsError,
                ImportError,
                KeyError,
                TypeError,
            ),
        ):
            message = f"{type(e).__name__}: {message}"
        print(f"khf {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
