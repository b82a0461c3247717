"""Classical fusion methods on the held-out region of Indian Pines x4 (Sentinel-2A 10 m MSI).

    python benchmarks/baselines.py --out benchmarks/results/baselines_indianpines_s2_x4
    python benchmarks/baselines.py --methods gsa cnmf --known-srf --out /tmp/known

Every method of `keras_hsifusion.baselines.METHODS` (or `--methods`) runs on the held-out
test region of the default protocol (`keras_hsifusion.evaluation.protocol.build_data` with
`DEFAULT_DATA`: 144x144 crop, all 200 bands, Gaussian PSF FWHM = 4, decimation by 4,
Sentinel-2A B2/B3/B4/B8; the rightmost 48 columns), sees only that region's LR-HSI and HR-MSI,
and is scored as the training runner scores presets (output clipped to [0, 1]; PSNR, SAM,
ERGAS, SSIM of `keras_hsifusion.metrics`). By default the methods get neither the SRF nor the
PSF (they estimate what they need, as the deep presets must); `--known-srf` passes the true
SRF and PSF FWHM. Each method is also timed on the whole 144x144x200 pair (issue 12: at most
30 s on a 2-core CPU). Writes `OUT.json` and `OUT.md`.
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from keras_hsifusion import baselines
from keras_hsifusion import data as khf_data
from keras_hsifusion.evaluation.protocol import DEFAULT_DATA, build_data, region_metrics


def _full_scene():
    d = DEFAULT_DATA
    cube, wavelengths = khf_data.indian_pines()
    cube = np.ascontiguousarray(cube[: d["crop"], : d["crop"]])
    srf = khf_data.spectral_response(d["sensor"], wavelengths)
    lr, msi = khf_data.degrade(cube, d["scale"], srf, psf_fwhm=d["psf_fwhm"])
    return lr, msi, srf


def _timed(method, lr, hr, scale, sensor):
    start = time.perf_counter()
    out = method(lr, hr, scale, **sensor)
    return out, time.perf_counter() - start


def run(methods, known_srf=False, full_timing=True, log=print):
    data = build_data({"data": dict(DEFAULT_DATA)})
    scale = data["scale"]
    lr, hr = data["test_inputs"]["lr_hsi"][0], data["test_inputs"]["hr_msi"][0]
    target = data["test_target"]  # (1, H, W, C), as region_metrics expects
    full_lr, full_hr, srf = _full_scene()
    psf_fwhm = DEFAULT_DATA["psf_fwhm"] or float(scale)
    sensor = {"srf": srf, "psf_fwhm": psf_fwhm} if known_srf else {}
    rows = []
    for name in methods:
        method = baselines.get_method(name)
        est, seconds = _timed(method, lr, hr, scale, sensor)
        row = {"method": name, **region_metrics(target, est[None].clip(0.0, 1.0), scale, ssim=True)}
        row["region_s"] = seconds
        if full_timing:
            _, row["full_scene_s"] = _timed(method, full_lr, full_hr, scale, sensor)
        log(
            f"{name:24s} PSNR {row['psnr']:7.3f}  SAM {row['sam']:6.3f}  ERGAS "
            f"{row['ergas']:6.3f}  SSIM {row['ssim']:.4f}  region {seconds:6.2f} s"
            + (f"  full {row['full_scene_s']:6.2f} s" if full_timing else "")
        )
        rows.append(row)
    return sorted(rows, key=lambda r: -r["psnr"])


def to_markdown(rows, command, meta):
    lines = [
        f"Command: `{command}`",
        "",
        f"Machine: {meta['machine']}, {meta['cpus']} logical CPUs; SRF/PSF given to the "
        f"methods: {'yes (true SRF, FWHM 4)' if meta['known_srf'] else 'no (estimated)'}",
        "",
        "| method | PSNR dB | SAM deg | ERGAS | SSIM | s on the region | s on 144x144x200 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        full = f"{r['full_scene_s']:.2f}" if "full_scene_s" in r else "-"
        lines.append(
            f"| {r['method']} | {r['psnr']:.2f} | {r['sam']:.3f} | {r['ergas']:.3f} | "
            f"{r['ssim']:.4f} | {r['region_s']:.2f} | {full} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=None, help="default: all of METHODS")
    parser.add_argument("--known-srf", action="store_true", help="pass the true SRF and PSF")
    parser.add_argument("--no-full-timing", action="store_true")
    parser.add_argument("--out", required=True, help="output prefix (writes .json and .md)")
    args = parser.parse_args(argv)
    methods = args.methods or list(baselines.METHODS)
    for name in methods:
        baselines.get_method(name)  # unknown names fail before any work
    rows = run(methods, args.known_srf, not args.no_full_timing)
    meta = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "known_srf": args.known_srf,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
    }
    given = argv if argv is not None else sys.argv[1:]
    command = "python benchmarks/baselines.py " + " ".join(given)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump({"command": command, "meta": meta, "rows": rows}, f, indent=1)
    with open(args.out + ".md", "w") as f:
        f.write(to_markdown(rows, command, meta))
    print(to_markdown(rows, command, meta))


if __name__ == "__main__":
    main()
