"""Exports a finished training run as a shipped preset (model + card).

    python -m training.export_preset RUN_DIR RECIPE --commit SHA [--out PRESET_DIR]

RUN_DIR is the run folder of `python -m training.run RECIPE` (its `best.keras`, selected on
the validation strip, is the preset); RECIPE the config it ran. The held-out test region is
evaluated here (the same numbers as the run's `results.json`, recomputed on this backend)
next to the parameter-free baselines, and everything a user needs goes into the card
`preset.json` (see keras_hsifusion/presets.py). The preset folder defaults to
`keras_hsifusion/applications/<model>/presets/<config name>/`.
"""

import argparse
import csv
import json
import os
import platform
import sys


def _machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{os.cpu_count()}-core {cpu}, {platform.system()} {platform.release()}"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.export_preset", description=__doc__)
    parser.add_argument("run_dir")
    parser.add_argument("recipe", help="the training config the run used")
    parser.add_argument("--commit", required=True, help="commit the run was trained from")
    parser.add_argument("--out", default=None, help="preset folder")
    args = parser.parse_args(argv)

    import keras

    import keras_hsifusion as khf
    from keras_hsifusion import training
    from keras_hsifusion.applications.registry import get_model_spec
    from keras_hsifusion.evaluation import protocol

    config = training.load_config(args.recipe)
    with open(os.path.join(args.run_dir, "config.json"), encoding="utf-8") as f:
        if json.load(f) != json.loads(json.dumps(config)):
            raise SystemExit(f"{args.run_dir}/config.json is not the config of {args.recipe}")
    results_path = os.path.join(args.run_dir, "results.json")
    if os.path.isfile(results_path):
        with open(results_path, encoding="utf-8") as f:
            results = json.load(f)
        stopped = False
    else:  # a run stopped before its last epoch: its state.json and file times tell
        state = training.read_state(args.run_dir)
        first = os.path.getmtime(os.path.join(args.run_dir, "config.json"))
        last = os.path.getmtime(os.path.join(args.run_dir, "state.json"))
        results = {
            "epochs": state["epoch"],
            "best_epoch": state["best_epoch"],
            "val": state.get("best_logs"),
            "wall_time_s": last - first,
            "backend": keras.backend.backend(),  # export under the backend the run used
            "keras": keras.__version__,
        }
        stopped = True
    with open(os.path.join(args.run_dir, "log.csv"), encoding="utf-8") as f:
        epochs_logged = sum(1 for _ in csv.DictReader(f))
    spec = get_model_spec(config["model"]["class"])
    out = args.out or os.path.join(spec.presets_dir, config["name"])

    model = keras.models.load_model(os.path.join(args.run_dir, "best.keras"), compile=False)
    data = protocol.build_data(config)
    scale = data["scale"]
    test, _ = protocol.evaluate_region(
        model, data["test_inputs"], data["test_target"], scale, config["clip"], ssim=True
    )
    baselines = protocol.baseline_metrics(data["test_inputs"], data["test_target"], scale)
    lr_shape = data["test_inputs"]["lr_hsi"].shape
    hr_shape = data["test_inputs"]["hr_msi"].shape
    flops = khf.profiling.count_flops(model, {"lr_hsi": lr_shape, "hr_msi": hr_shape})
    _, _, band_names = khf.data.sensor_table(config["data"]["sensor"])
    rows, cols = data["regions"]["test"]
    steps_per_epoch = config["steps_per_epoch"] or len(data["train"])

    card = {
        "name": config["name"],
        "description": (
            f"{config['model']['class']} trained on the training region of AVIRIS Indian Pines "
            f"x{scale} with the Sentinel-2A 10 m MSI (bands {', '.join(band_names)})"
            + (
                f"; refines the parameter-free `{config['model'].get('global_skip')}` estimate "
                "(global_skip)"
                if config["model"].get("global_skip")
                else ""
            )
        ),
        "global_skip": config["model"].get("global_skip"),
        "hsi_wavelengths_nm": [round(float(w), 3) for w in data["wavelengths"]],
        "msi_sensor": config["data"]["sensor"],
        "msi_band_names": band_names,
        "normalisation": {
            "input": (
                "divide the LR-HSI and the HR-MSI by one constant so that the HSI lies in "
                "[0, 1] (training: the Indian Pines corrected cube, uint16 digital numbers, "
                "divided by its maximum, 9604); the HR-MSI must be in the units of the HSI "
                "projected through the sensor's spectral response normalised to sum 1 per band"
            ),
            "output": "multiply the fused HR-HSI by the same constant",
        },
        "data": {
            "scene": "Indian Pines (AVIRIS, 12 June 1992), corrected cube, 200 bands",
            "licence": "CC BY 3.0, Purdue University Research Repository, doi:10.4231/R7RX991C",
            "protocol": config["data"],
            "test_region_hr": [[rows.start, rows.stop], [cols.start, cols.stop]],
        },
        "recipe": os.path.relpath(args.recipe),
        "recipe_config": config,
        "seed": config["seed"],
        "epochs": results["epochs"],
        "schedule_epochs": config["epochs"],
        "stopped_early": stopped,
        "epochs_logged": epochs_logged,
        "best_epoch": results["best_epoch"],
        "steps": results["epochs"] * steps_per_epoch,
        "wall_time_s": round(results["wall_time_s"], 1),
        "machine": _machine(),
        "backend": results["backend"],
        "keras": results["keras"],
        "commit": args.commit,
        "flops": {"total": int(flops.total), "lr_hsi": list(lr_shape), "hr_msi": list(hr_shape)},
        "metrics": {
            "region": "held-out test region (rightmost 48 columns), evaluated once",
            "model": test,
            "validation_best": results.get("val"),
            **baselines,
        },
    }
    card = model.save_to_preset(out, **card)
    size = os.path.getsize(os.path.join(out, "model.keras")) / 2**20
    print(json.dumps({k: card[k] for k in ("name", "params", "sha256")}, indent=1))
    print(f"test: {test}\nwrote {out} ({size:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
