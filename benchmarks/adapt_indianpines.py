"""`khf adapt` on a simulated Indian Pines pair, scored against the truth it never saw.

    python benchmarks/adapt_indianpines.py pair --sensor landsat8-oli --out runs/adapt_ip/clean
    python benchmarks/adapt_indianpines.py pair --sensor landsat8-oli --snr 30 40 \\
        --out runs/adapt_ip/noisy
    khf adapt runs/adapt_ip/clean/lr_hsi.tif runs/adapt_ip/clean/hr_msi.tif -m HSSDCT \\
        -o runs/adapt_ip/clean/hssdct
    khf fuse runs/adapt_ip/clean/lr_hsi.tif runs/adapt_ip/clean/hr_msi.tif \\
        -m runs/adapt_ip/clean/hssdct -o runs/adapt_ip/clean/fused_hssdct.tif
    python benchmarks/adapt_indianpines.py score runs/adapt_ip/clean \\
        --fused hssdct=runs/adapt_ip/clean/fused_hssdct.tif --out OUT

`pair` simulates the default protocol's 144x144 crop of Indian Pines (all 200 bands,
Gaussian PSF FWHM = scale, decimation by the scale) with the HR-MSI of `--sensor` and
optional white noise (`--snr LR_HSI_DB MSI_DB`), and writes `lr_hsi.tif`, `hr_msi.tif`
(georeferenced, with wavelengths) and `reference.tif` (the truth, for `score` only).
`score` runs every classical method of `keras_hsifusion.baselines.METHODS` (or `--methods`)
on the whole pair (they estimate the SRF and PSF themselves, as `adapt` does), and scores
them and the given fused files (or `.keras` checkpoints of `adapt`, fused here with the
LR-HSI maximum as divisor) on the held-out region of the protocol (the rightmost 48
columns) against the reference: PSNR, SAM, ERGAS, SSIM (outputs clipped to [0, 1] after
dividing by the LR-HSI maximum, as the training runner scores presets). `--qnr` adds the
whole pair's no-reference QNR of every row (about a minute each for 200 bands). Writes
`OUT.json` and `OUT.md`.
"""

import argparse
import json
import os
import platform
import time

import numpy as np

from keras_hsifusion import baselines, metrics
from keras_hsifusion import data as khf_data
from keras_hsifusion.data import raster
from keras_hsifusion.evaluation.protocol import region_metrics
from keras_hsifusion.inference import fuse
from keras_hsifusion.utils.files import load_keras_file

CRS = "EPSG:32616"
HR_PIXEL = 10.0
ORIGIN = (507000.0, 4484000.0)
TEST_COLUMNS = 48


def _transform(pixel):
    return (pixel, 0.0, ORIGIN[0], 0.0, -pixel, ORIGIN[1])


def make_pair(out, sensor, snr=None, scale=4, crop=144, seed=0):
    cube, wavelengths = khf_data.indian_pines()
    cube = np.ascontiguousarray(cube[:crop, :crop])
    srf = khf_data.spectral_response(sensor, wavelengths)
    lr, msi = khf_data.degrade(cube, scale, srf, noise_snr_db=snr, seed=seed)
    os.makedirs(out, exist_ok=True)
    _, _, names = khf_data.sensor_table(sensor)
    raster.write_raster(
        os.path.join(out, "lr_hsi.tif"),
        lr,
        crs=CRS,
        transform=_transform(HR_PIXEL * scale),
        wavelengths=wavelengths,
    )
    raster.write_raster(
        os.path.join(out, "hr_msi.tif"),
        msi,
        crs=CRS,
        transform=_transform(HR_PIXEL),
        band_names=list(names),
    )
    raster.write_raster(
        os.path.join(out, "reference.tif"),
        cube,
        crs=CRS,
        transform=_transform(HR_PIXEL),
        wavelengths=wavelengths,
    )
    info = {"sensor": sensor, "snr_db": snr, "scale": scale, "crop": crop, "seed": seed}
    with open(os.path.join(out, "pair.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(f"wrote {out}: LR-HSI {lr.shape}, HR-MSI {msi.shape} ({sensor}), SNR {snr}")


def score(folder, fused, methods, qnr, out):
    lr = raster.read_raster(os.path.join(folder, "lr_hsi.tif")).array
    msi = raster.read_raster(os.path.join(folder, "hr_msi.tif")).array
    ref = raster.read_raster(os.path.join(folder, "reference.tif")).array
    scale = ref.shape[0] // lr.shape[0]
    divisor = float(lr.max())
    region = np.s_[:, -TEST_COLUMNS:]
    target = (ref[region] / divisor)[None]
    estimates = {}
    for name in methods:
        start = time.perf_counter()
        est = baselines.get_method(name)(lr, msi, scale)
        estimates[name] = (est, time.perf_counter() - start)
        print(f"{name}: {estimates[name][1]:.1f} s", flush=True)
    for item in fused:
        name, path = item.split("=", 1)
        if path.endswith(".keras"):  # a checkpoint of `adapt`: fused in its units
            model = load_keras_file(path, compile=False)
            estimates[name] = (fuse(lr / divisor, msi / divisor, model) * divisor, None)
        else:
            estimates[name] = (raster.read_raster(path).array, None)
    rows = []
    for name, (est, seconds) in estimates.items():
        est = np.asarray(est, np.float64) / divisor
        row = {"method": name, **region_metrics(target, est[region][None].clip(0, 1), scale, True)}
        row["seconds"] = seconds
        if qnr:
            f, lo, m = est, lr / divisor, msi / divisor
            row["d_lambda"] = metrics.d_lambda(f, lo, scale=scale)
            row["d_s"] = metrics.d_s(f, lo, m, scale=scale)
            row["qnr"] = (1 - row["d_lambda"]) * (1 - row["d_s"])
        rows.append(row)
        print(json.dumps(row), flush=True)
    rows.sort(key=lambda r: -r["psnr"])
    with open(os.path.join(folder, "pair.json")) as f:
        pair = json.load(f)
    result = {
        "pair": pair,
        "region": f"rightmost {TEST_COLUMNS} columns of the {ref.shape[0]}x{ref.shape[1]} pair",
        "machine": f"{os.cpu_count()}-core {platform.machine()}",
        "rows": rows,
    }
    with open(out + ".json", "w") as f:
        json.dump(result, f, indent=1)
    head = "| method | PSNR dB | SAM deg | ERGAS | SSIM |" + (" QNR |" if qnr else "") + " s |"
    lines = [head, "|---|---:|---:|---:|---:|" + ("---:|" if qnr else "") + "---:|"]
    for r in rows:
        seconds = "" if r["seconds"] is None else f"{r['seconds']:.1f}"
        q = f" {r['qnr']:.4f} |" if qnr else ""
        lines.append(
            f"| {r['method']} | {r['psnr']:.2f} | {r['sam']:.3f} | {r['ergas']:.3f} | "
            f"{r['ssim']:.4f} |{q} {seconds} |"
        )
    with open(out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pair", help="simulate and write a georeferenced pair")
    p.add_argument("--sensor", default="landsat8-oli")
    p.add_argument("--snr", type=float, nargs=2, default=None, metavar=("LR_HSI", "HR_MSI"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p = sub.add_parser("score", help="score fused files and classical methods on the region")
    p.add_argument("folder")
    p.add_argument("--fused", nargs="*", default=[], metavar="NAME=PATH")
    p.add_argument("--methods", nargs="*", default=list(baselines.METHODS))
    p.add_argument("--qnr", action="store_true", help="also the whole pair's QNR")
    p.add_argument("--out", required=True, help="prefix of OUT.json and OUT.md")
    args = parser.parse_args(argv)
    if args.command == "pair":
        snr = tuple(args.snr) if args.snr else None
        make_pair(args.out, args.sensor, snr, seed=args.seed)
    else:
        score(args.folder, args.fused, args.methods, args.qnr, args.out)


if __name__ == "__main__":
    main()
