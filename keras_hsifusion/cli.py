"""`khf`: the command line of keras_hsifusion.

    khf fuse LR_HSI HR_MSI -m METHOD -o OUT [--tile N] [--overlap N] [--batch-size N]
             [--preview out.png] [--reference REF] [--overwrite]
    khf evaluate EST [REF] [--lr-hsi LR --hr-msi MSI] [--scale N] [--figure out.png]
    khf presets [--json]
    khf train RECIPE [--resume] [--epochs N] [--out DIR]
    khf adapt LR_HSI HR_MSI -m MODEL_OR_PRESET -o OUT_DIR [--steps N] [--resume]
    khf bench [runner options: khf bench --help]
    khf bench robustness [--methods ...] [--presets ...] [--grid default|quick] [--out PREFIX]
    khf demo [--out DIR] [--train]
    khf --version

Every command takes `--backend {tensorflow,torch,jax}` (sets `KERAS_BACKEND` before Keras is
imported), `--quiet` (no progress, messages or backend log lines) and `--debug` (show the
traceback of an error). Exit code 0 on success; on an error, one line `khf CMD: error: ...`
on stderr and exit code 1 (2 for a bad command line); Ctrl-C at any moment: one line
`khf CMD: interrupted` and exit code 130. Outputs are never overwritten without
`--overwrite` and are written to a temporary file that is renamed when complete.

This module parses, calls one library function and prints: `fuse` is
`keras_hsifusion.fuse_files`, `evaluate` is `keras_hsifusion.evaluation.evaluate_files`,
`train` is `training.run_experiment` (on a shipped recipe, `keras_hsifusion.recipes`, or a
file), `adapt` is `keras_hsifusion.adapt`, `bench` is `keras_hsifusion.profiling.runner`,
`demo` is `keras_hsifusion.demo.run`; all of them work from an installed wheel. Keras (and
the backend) are imported only once the command line is parsed and only by commands that use
them: `khf --help`, `khf COMMAND --help` and `khf presets` import neither (the package is
imported lazily by the console script, see `keras_hsifusion/__init__.py`). See docs/cli.md.

One cohesive module (the parser, whose help lists every choice, and one short function per
command, which share the file, error and output conventions above), hence over 450 lines.
"""

import argparse
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import warnings

from keras_hsifusion.utils.runtime import tune_malloc
from keras_hsifusion.version import __version__

__all__ = ["build_parser", "main"]

BACKENDS = ("tensorflow", "torch", "jax")
_REEXEC_FLAG = "KHF_CLI_REEXEC"
# The choices `--help` lists, written out so that help needs no Keras import
# (tests/test_cli_docs.py checks them against `baselines.METHODS`, `data.list_sensors()`
# and the zoo registry).
CLASSICAL_METHODS = (
    "bicubic",
    "detail_injection",
    "poly_detail_injection",
    "sfim",
    "gsa",
    "glp",
    "cnmf",
    "hysure",
    "fuse_wei",
    "hysime_detail_injection",
)
SENSORS = (
    "canon5dmk2-rgb",
    "cie1931-xyz",
    "landsat8-oli",
    "nikon5100-rgb",
    "sentinel2a",
    "sentinel2a-10m",
)
MODEL_CLASSES = ("HSSDCT", "MSSTNet")
PACKAGE = os.path.dirname(os.path.abspath(__file__))


class UserError(Exception):
    """An error in what the user asked for: reported as one line, exit code 1."""


# --------------------------------------------------------------------------- set-up


def shipped_cards():
    """`{name: card}` of the presets shipped in this package, read from their `preset.json`
    files without importing Keras (`khf.list_presets()` goes through the model registry,
    which needs the model classes; tests/test_cli_docs.py checks that both agree)."""
    root = os.path.join(PACKAGE, "applications")
    cards = {}
    for model in sorted(os.listdir(root)):
        folder = os.path.join(root, model, "presets")
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name, "preset.json")
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    cards[name] = json.load(f)
    return cards


def _preset_names():
    root = os.path.join(PACKAGE, "applications")
    names = []
    for model in sorted(os.listdir(root)):
        folder = os.path.join(root, model, "presets")
        if os.path.isdir(folder):
            names += sorted(
                n
                for n in os.listdir(folder)
                if os.path.isfile(os.path.join(folder, n, "preset.json"))
            )
    return names


@contextlib.contextmanager
def _stderr_silenced(active):
    """Sends file descriptor 2 to /dev/null (the C++ log lines of a backend's import, which
    no environment variable turns off) while `active`."""
    if not active:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _start_keras(backend, argv, in_process, quiet):
    """Imports Keras on `backend` (None: KERAS_BACKEND or Keras' default); returns an exit
    code if the command had to run in another process."""
    if not in_process:
        if backend:  # before Keras is imported: it reads the variable once
            os.environ["KERAS_BACKEND"] = backend
        if quiet:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _stderr_silenced(quiet and not in_process):
        import keras

    current = keras.backend.backend()
    if not backend or current == backend:
        return None
    # Keras was imported before (`main([...])` from Python): a fresh process
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


class _Log:
    def __init__(self, quiet):
        self.quiet = quiet

    def __call__(self, message):
        if not self.quiet:
            print(message, flush=True)


def _warning_printer(command, quiet):
    """`warnings.showwarning` for the command line: one line `khf CMD: warning: ...` on
    stderr; under `--quiet` only the package's own warnings (not a backend's)."""

    def show(message, category, filename, lineno, file=None, line=None):
        if quiet and not os.path.abspath(filename).startswith(PACKAGE):
            return
        text = " ".join(str(message).split())
        print(f"khf {command}: warning: {text}", file=sys.stderr, flush=True)

    return show


def _check_outputs(paths, overwrite):
    for path in list(paths):
        if path and path.lower().endswith(".hdr"):  # an ENVI output is two files
            paths.append(os.path.splitext(path)[0] + ".img")
    for path in paths:
        if path and os.path.exists(path) and not overwrite:
            raise UserError(f"{path} exists; pass --overwrite to replace it")


# --------------------------------------------------------------------------- commands


def _print_metrics(values, log):
    units = {"psnr": "dB", "sam": "deg"}
    for key, value in values.items():
        log(f"  {key:<9}{value:12.6f} {units.get(key, '')}".rstrip())


def cmd_fuse(args, log):
    import keras_hsifusion as khf

    _check_outputs([args.output, args.preview], args.overwrite)
    result = khf.fuse_files(
        args.lr_hsi,
        args.hr_msi,
        args.output,
        args.method,
        scale=args.scale,
        tile=args.tile,
        overlap=args.overlap,
        batch_size=args.batch_size,
        sensor=args.sensor,
        psf_fwhm=args.psf_fwhm,
        hsi_key=args.hsi_key,
        msi_key=args.msi_key,
        mat_version=args.mat_version,
        preview=args.preview,
        reference=args.reference,
        overwrite=args.overwrite,
        progress=not args.quiet,
        log=log,
    )
    h, w, c = result["shape"]
    log(f"wrote {result['output']} ({h}x{w}x{c}) in {result['seconds']:.1f} s")
    if result["preview"]:
        log(f"wrote {result['preview']} ({result['preview_bands']})")
    if result["metrics"] is not None:
        log(f"{result['output']} against {args.reference}:")
        _print_metrics(result["metrics"], log)
    return 0


def cmd_evaluate(args, log):
    from keras_hsifusion.evaluation import evaluate_files

    _check_outputs([args.figure, args.json], args.overwrite)
    result = evaluate_files(
        args.estimate,
        args.reference,
        lr_hsi=args.lr_hsi,
        hr_msi=args.hr_msi,
        scale=args.scale,
        block_size=args.block_size,
        key=args.key,
        figure=args.figure,
        json_path=args.json,
        overwrite=args.overwrite,
        progress=not args.quiet,
        log=log,
    )
    if args.reference:
        log(f"{args.estimate} against {args.reference} ({result['valid_pixels']} valid pixels):")
    for note in result["notes"]:
        log(f"  ({note})")
    _print_metrics(result["metrics"], log)
    for path in (args.figure, args.json):
        if path:
            log(f"wrote {path}")
    return 0


def cmd_presets(args, log):
    cards = shipped_cards()
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


def _verbose(args):
    verbose = 0 if args.quiet else args.verbose
    return verbose if verbose == "auto" else int(verbose)


def cmd_train(args, log):
    from keras_hsifusion import recipes, training
    from keras_hsifusion.utils.lock import RunLockedError

    config = training.load_config(recipes.resolve(args.config))
    if args.distribution:
        value = None if args.distribution == "none" else args.distribution
        config = training.validate_config({**config, "distribution": value})
    out = args.out or os.path.join("runs", config["name"])
    if os.path.exists(os.path.join(out, "last.keras")) and not (args.resume or args.overwrite):
        raise UserError(
            f"{out} already holds a run; pass --resume to continue it or --overwrite to start again"
        )
    try:
        results = training.run_experiment(
            config,
            out,
            epochs=args.epochs,
            resume=args.resume,
            verbose=_verbose(args),
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
    import keras_hsifusion as khf

    try:
        model = khf.adapt(
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
            verbose=_verbose(args),
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
    from keras_hsifusion.profiling import runner

    runner.main(extra, prog="khf bench")
    return 0


def cmd_demo(args, log):
    from keras_hsifusion import demo

    return demo.run(args)


# --------------------------------------------------------------------------- parser


def _method_help():
    return (
        f"a preset name ({', '.join(_preset_names())}; khf presets), a preset folder, a .keras "
        f"file, or a classical method: {', '.join(CLASSICAL_METHODS)}"
    )


def _add_pair_arguments(p):
    """The input pair of `khf fuse` and `khf adapt`."""
    p.add_argument("lr_hsi", metavar="LR_HSI", help="low-resolution hyperspectral image file")
    p.add_argument("hr_msi", metavar="HR_MSI", help="high-resolution multispectral image file")


def build_parser():
    """The `khf` argument parser (fuse, evaluate, presets, train, adapt, bench, demo)."""
    from keras_hsifusion.demo import add_arguments as add_demo_arguments
    from keras_hsifusion.recipes import list_recipes

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--backend", choices=BACKENDS, help="Keras backend (default: KERAS_BACKEND or Keras')"
    )
    common.add_argument(
        "--quiet", "-q", action="store_true", help="no progress, messages or backend logs"
    )
    common.add_argument("--debug", action="store_true", help="show tracebacks of errors")

    parser = argparse.ArgumentParser(
        prog="khf",
        description="keras_hsifusion: hyperspectral/multispectral image fusion.",
        epilog="See `khf COMMAND --help` and docs/cli.md.",
    )
    parser.add_argument("--version", action="version", version=f"keras_hsifusion {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "fuse",
        parents=[common],
        help="fuse an LR-HSI with an HR-MSI (files in, file out)",
        description="Fuses an LR-HSI with an HR-MSI into a file on the HR-MSI grid with the "
        "LR-HSI's wavelengths (GeoTIFF, ENVI .hdr, HDF5, .mat, .npz, .npy); "
        "keras_hsifusion.fuse_files.",
    )
    _add_pair_arguments(p)
    p.add_argument("-m", "--method", required=True, help=_method_help())
    p.add_argument("-o", "--output", required=True, help="output file (format from extension)")
    p.add_argument("--tile", type=int, default=None, help="HR tile size (default: per model)")
    p.add_argument("--overlap", type=int, default=None, help="HR tile overlap in pixels")
    p.add_argument("--batch-size", type=int, default=1, help="tiles per model call")
    p.add_argument("--scale", type=int, default=None, help="expected resolution ratio")
    p.add_argument(
        "--sensor",
        choices=SENSORS,
        help="MSI sensor whose spectral response a classical method uses: " + ", ".join(SENSORS),
    )
    p.add_argument("--psf-fwhm", type=float, default=None, help="PSF FWHM in HR pixels")
    p.add_argument("--hsi-key", help="array name in an .h5/.mat/.npz LR-HSI")
    p.add_argument("--msi-key", help="array name in an .h5/.mat/.npz HR-MSI")
    p.add_argument("--mat-version", choices=("5", "7.3"), default="5", help=".mat output")
    p.add_argument("--preview", metavar="PNG", help="also write a false-colour PNG")
    p.add_argument("--reference", metavar="REF", help="also score the output against REF")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")

    p = sub.add_parser(
        "evaluate",
        parents=[common],
        help="metrics of a fused image",
        description="Reduced-resolution metrics against a reference (PSNR, SAM, ERGAS, RMSE, "
        "SSIM) or, without one, the full-resolution D_lambda, D_s and QNR of Alparone et al. "
        "(2008) from the fusion's inputs; keras_hsifusion.evaluation.evaluate_files.",
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

    p = sub.add_parser(
        "presets",
        parents=[common],
        help="list the shipped presets",
        description="The shipped presets: " + ", ".join(_preset_names()),
    )
    p.add_argument("--json", action="store_true", help="print the full cards as JSON")

    p = sub.add_parser(
        "train",
        parents=[common],
        help="train a shipped recipe (by name) or a recipe file",
        description="Runs one training experiment (keras_hsifusion.training.run_experiment).",
    )
    p.add_argument(
        "config",
        metavar="RECIPE",
        help=f"a shipped recipe ({', '.join(list_recipes())}; keras_hsifusion.recipes) or a "
        "recipe file (.py defining CONFIG, or .json)",
    )
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
    _add_pair_arguments(p)
    p.add_argument(
        "-m",
        "--model",
        required=True,
        help=f"a preset name ({', '.join(_preset_names())}) or folder, a .keras file "
        f"(fine-tuning), or a zoo model class ({', '.join(MODEL_CLASSES)}; from scratch)",
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
    p.add_argument(
        "--srf",
        default="estimate",
        choices=("estimate", *SENSORS),
        help="'estimate' or an MSI sensor: " + ", ".join(SENSORS),
    )
    p.add_argument("--psf-fwhm", default=None, help="PSF FWHM in HR pixels, or 'estimate'")
    p.add_argument("--val-fraction", type=float, default=0.25, help="validation strip share")
    p.add_argument(
        "--selection",
        choices=["validation", "full_resolution"],
        default="validation",
        help="which checkpoint is kept",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the patches and weights")
    p.add_argument("--hsi-key", help="array name in an .h5/.mat/.npz LR-HSI")
    p.add_argument("--msi-key", help="array name in an .h5/.mat/.npz HR-MSI")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--overwrite", action="store_true", help="start again in a used folder")
    p.add_argument("--verbose", default="auto", help="fit verbosity: auto, 0, 1 or 2")

    p = sub.add_parser(
        "bench",
        parents=[common],
        add_help=False,
        usage="khf bench [--backend B] [--quiet] [--debug] [robustness] [RUNNER OPTIONS]",
        help="throughput/memory benchmarks (keras_hsifusion.profiling.runner; `khf bench "
        "--help`); `khf bench robustness`: methods under a grid of PSF widths and noise levels",
        description="Runs the benchmark runner (keras_hsifusion.profiling.runner) with the "
        "remaining options (listed below), or `khf bench robustness` (its options: `khf bench "
        "robustness --help`).",
    )
    p.set_defaults(print_bench_help=p.print_help)
    p = sub.add_parser(
        "demo",
        parents=[common],
        help="the shipped presets on held-out Indian Pines (`khf demo --help`)",
        description="Shipped presets and classical methods on held-out Indian Pines x4 "
        "(keras_hsifusion.demo; PyTorch when installed and no backend is chosen).",
    )
    add_demo_arguments(p)
    return parser


# --------------------------------------------------------------------------- main


def main(argv=None):
    """Runs `khf`; returns the exit code (`sys.exit(main())` in the console script)."""
    in_process = argv is not None
    argv = list(sys.argv[1:] if argv is None else argv)
    command = "?"
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        command = args.command
        if command == "bench" and ({"-h", "--help"} & set(extra)) and extra[:1] != ["robustness"]:
            args.print_bench_help()  # then the runner's own options
            print()
        elif extra and command != "bench":
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if command == "demo":
            from keras_hsifusion.demo import check_arguments

            try:
                check_arguments(args)
            except ValueError as e:
                parser.error(str(e))
        return _run(args, extra, argv, in_process)
    except KeyboardInterrupt:
        print(f"khf {command}: interrupted", file=sys.stderr, flush=True)
        return 130


def _run(args, extra, argv, in_process):
    log = _Log(args.quiet)
    if not in_process:
        tune_malloc()
    with warnings.catch_warnings():
        warnings.showwarning = _warning_printer(args.command, args.quiet)
        try:
            if args.command == "presets":  # the cards only: no Keras
                return cmd_presets(args, log)
            backend = args.backend
            if (
                backend is None
                and args.command == "demo"
                and "KERAS_BACKEND" not in os.environ
                and importlib.util.find_spec("torch") is not None
            ):
                backend = "torch"  # the demo's own default (see keras_hsifusion.demo)
            code = _start_keras(backend, argv, in_process, args.quiet)
            if code is not None:
                return code
            import keras_hsifusion

            # The first function looked up loads the whole package, registering every custom
            # object, as a plain `import keras_hsifusion` does (keras_hsifusion/__init__.py).
            keras_hsifusion.fuse  # noqa: B018
            if not in_process:  # a process of ours: keep JAX's compiled programs on disk
                from keras_hsifusion.utils.runtime import enable_compilation_cache

                enable_compilation_cache()
            commands = {
                "fuse": cmd_fuse,
                "evaluate": cmd_evaluate,
                "train": cmd_train,
                "adapt": cmd_adapt,
                "demo": cmd_demo,
            }
            if args.command in commands:
                return commands[args.command](args, log)
            if args.quiet:
                with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
                    return cmd_bench(args, extra, log)
            return cmd_bench(args, extra, log)
        except SystemExit as e:  # argparse of a wrapped runner
            return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except Exception as e:
            if args.debug:
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
