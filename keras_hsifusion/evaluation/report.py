"""The files of a robustness sweep: `<prefix>.json`, `<prefix>.md` (tables) and `<prefix>.png`.

`write_sweep(rows, prefix)` takes the rows of `keras_hsifusion.evaluation.run_sweep`. The
Markdown has one table per metric (PSNR, SAM): conditions as rows, methods as columns, the
best value of each row in bold (every method that ties it at the printed precision). The
figure (matplotlib, imported only here) has four panels: PSNR and SAM against the LR-HSI SNR
(white noise, MSI at 40 dB, training PSF; the noise-free pair at the right, "none"; the
band-dependent rows as dashed curves) and against the PSF FWHM (no noise); one colour per
method.
"""

import math
import os

import numpy as np

__all__ = ["markdown_tables", "write_sweep"]

# (key, header, decimals, higher is better)
METRICS = (
    ("psnr", "PSNR (dB, higher is better)", 2, True),
    ("sam", "SAM (deg, lower is better)", 3, False),
)
FIGURE_MSI_SNR = 40.0


def _ordered(values):
    return list(dict.fromkeys(values))


def _conditions(rows):
    out = {}
    for r in rows:
        out.setdefault(r["condition"], r)
    return out


def _snr(value):
    return "-" if value is None else f"{value:g}"


def _noise(r):
    if r["snr_lr_db"] is None and r["snr_msi_db"] is None:
        return "none"
    if r["profile"] == "white" or r["snr_lr_db"] is None:
        return "white"
    return f"{r['profile']} ({r['depth_db']:g} dB)"


def markdown_tables(rows):
    """One Markdown table per metric (PSNR, SAM): conditions x methods, best in bold."""
    methods = _ordered(r["method"] for r in rows)
    conds = _conditions(rows)
    value = {(r["method"], r["condition"]): r for r in rows}
    out = []
    for key, title, digits, higher in METRICS:
        out += [
            f"### {title}",
            "",
            "| condition | PSF FWHM | LR SNR dB | MSI SNR dB | LR noise | "
            + " | ".join(methods)
            + " |",
            "|---|---:|---:|---:|---|" + "---:|" * len(methods),
        ]
        for name, c in conds.items():
            shown = {m: round(value[m, name][key], digits) for m in methods if (m, name) in value}
            best = (max if higher else min)(shown.values())
            cells = []
            for m in methods:
                if m not in shown:
                    cells.append("-")
                    continue
                text = f"{shown[m]:.{digits}f}"
                cells.append(f"**{text}**" if shown[m] == best else text)
            out.append(
                f"| {name} | {c['psf_fwhm']:g} | {_snr(c['snr_lr_db'])} | "
                f"{_snr(c['snr_msi_db'])} | {_noise(c)} | " + " | ".join(cells) + " |"
            )
        out.append("")
    return "\n".join(out)


def _markdown(rows, command, meta, notes):
    methods = _ordered(r["method"] for r in rows)
    lines = ["# Robustness sweep: held-out region of Indian Pines x4 (Sentinel-2A 10 m MSI)", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    if meta:
        known = "yes (true SRF, the condition's PSF)" if meta.get("known_srf") else "no (blind)"
        lines += [
            f"Machine: {meta.get('machine', '?')}, {meta.get('cpus', '?')} logical CPUs; "
            f"Keras {meta.get('keras', '?')}, backend {meta.get('backend', '?')}; noise seed "
            f"{meta.get('seed', 0)}; SRF/PSF given to the classical methods: {known}; wall "
            f"time {meta.get('wall_s', '?')} s.",
            "",
        ]
    lines += [
        "Each condition simulates the whole 144x144 scene as the training protocol does "
        "(`keras_hsifusion.evaluation.protocol.build_data`) with another Gaussian PSF FWHM "
        "(HR pixels) "
        "and/or Gaussian noise at the given SNR (per band: noise power = mean square of the "
        "band / 10^(SNR/10)); `sensor` noise is band-dependent (per-band SNR offsets of "
        "`keras_hsifusion.data.band_snr_offsets`, mean 0, 10 dB peak to peak: noisier in the "
        "blue, near the water-vapour bands and in the far SWIR). Methods see the noisy pair "
        "of the held-out region (the rightmost 48 columns) and are scored against the clean "
        "reference; the nominal condition `psf4` is the training degradation.",
        "",
    ]
    if notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    lines.append(markdown_tables(rows))
    lines += ["### Seconds per fusion of the region (mean over the conditions)", ""]
    lines += ["| method | kind | s |", "|---|---|---:|"]
    for m in methods:
        mine = [r for r in rows if r["method"] == m]
        lines.append(f"| {m} | {mine[0]['kind']} | {np.mean([r['seconds'] for r in mine]):.2f} |")
    return "\n".join(lines) + "\n"


def _series(rows, method):
    """(x, rows) of the three kinds of curves of one method (see the module docstring)."""
    mine = [r for r in rows if r["method"] == method]
    clean = [r for r in mine if r["snr_lr_db"] is None and r["snr_msi_db"] is None]
    nominal = [r for r in clean if r["psf_fwhm"] == r["scale"]]
    at_msi = [
        r
        for r in mine
        if r["snr_lr_db"] is not None
        and r["snr_msi_db"] == FIGURE_MSI_SNR
        and r["psf_fwhm"] == r["scale"]
    ]
    white = sorted((r for r in at_msi if r["profile"] == "white"), key=lambda r: r["snr_lr_db"])
    banded = sorted((r for r in at_msi if r["profile"] != "white"), key=lambda r: r["snr_lr_db"])
    psf = sorted(clean, key=lambda r: r["psf_fwhm"])
    return white, banded, nominal, psf


def _figure(path, rows, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_hsifusion.utils.files import atomic_path

    methods = _ordered(r["method"] for r in rows)
    snrs = [r["snr_lr_db"] for r in rows if r["snr_lr_db"] is not None]
    none_x = (max(snrs) + 10.0) if snrs else 50.0
    tab20 = plt.get_cmap("tab20").colors
    colours = tab20[0::2] + tab20[1::2]  # the ten strong colours first
    markers = "osD^v<>ph*"
    fig, axes = plt.subplots(2, 2, figsize=(12.0, 8.5))
    for i, method in enumerate(methods):
        white, banded, nominal, psf = _series(rows, method)
        style = {"color": colours[i % len(colours)], "marker": markers[i % len(markers)]}
        for row, (key, _, _, _) in enumerate(METRICS):
            snr_ax, psf_ax = axes[row, 0], axes[row, 1]
            xs = [r["snr_lr_db"] for r in white] + [none_x] * len(nominal[:1])
            ys = [r[key] for r in white + nominal[:1]]
            if xs:
                snr_ax.plot(xs, ys, "-", lw=1.2, ms=4, label=method, **style)
            if banded:
                snr_ax.plot(
                    [r["snr_lr_db"] for r in banded],
                    [r[key] for r in banded],
                    "--",
                    lw=1.0,
                    ms=3,
                    **style,
                )
            if psf:
                psf_ax.plot(
                    [r["psf_fwhm"] for r in psf],
                    [r[key] for r in psf],
                    "-",
                    lw=1.2,
                    ms=4,
                    label=method,
                    **style,
                )
    for row, (_, label, _, _) in enumerate(METRICS):
        snr_ax, psf_ax = axes[row, 0], axes[row, 1]
        snr_ax.set_title(
            f"{label.split(' (')[0]} vs LR-HSI SNR (MSI {FIGURE_MSI_SNR:g} dB; solid white, "
            "dashed band-dependent)",
            fontsize=9,
        )
        ticks = sorted(set(int(s) if float(s).is_integer() else s for s in snrs)) if snrs else []
        snr_ax.set_xticks(ticks + [none_x], [f"{t:g}" for t in ticks] + ["none"])
        snr_ax.set_xlabel("LR-HSI SNR (dB)", fontsize=8)
        psf_ax.set_title(f"{label.split(' (')[0]} vs PSF FWHM (no noise)", fontsize=9)
        psf_ax.set_xlabel("Gaussian PSF FWHM (HR pixels; training: the scale)", fontsize=8)
        for ax in (snr_ax, psf_ax):
            ax.set_ylabel(label, fontsize=8)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
    handles, labels = axes[0, 1].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, max(1, len(labels))), fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04 + 0.025 * math.ceil(len(labels) / 6), 1, 0.97))
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
        os.chmod(tmp, 0o644)
    plt.close(fig)
    return path


def write_sweep(rows, out_prefix, command=None, meta=None, notes=(), figure=True):
    """Writes `<out_prefix>.json`, `.md` and (with matplotlib installed) `.png`.

    Args:
        rows: the rows of `run_sweep` (non-empty).
        out_prefix: path without extension; its folder is created if needed.
        command: the command line that made the rows (written in the .json and the .md).
        meta: a dict about the run (machine, backend, wall time, ...), written as given.
        notes: lines for the .md (e.g. a method left out and why).
        figure: write the .png (skipped with a message when matplotlib is missing).

    Returns:
        the list of paths written.
    """
    from keras_hsifusion.utils.files import atomic_path, atomic_write_json

    rows = list(rows)
    if not rows:
        raise ValueError(f"`rows` must not be empty. Received: rows={rows!r}")
    out_prefix = os.fspath(out_prefix)
    folder = os.path.dirname(os.path.abspath(out_prefix))
    os.makedirs(folder, exist_ok=True)
    notes = list(notes or ())
    paths = [out_prefix + ".json", out_prefix + ".md"]
    atomic_write_json(
        paths[0], {"command": command, "meta": meta or {}, "notes": notes, "rows": rows}
    )
    with atomic_path(paths[1], ".md") as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(_markdown(rows, command, meta, notes))
    for path in paths:
        os.chmod(path, 0o644)
    if figure:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("matplotlib is not installed: no figure (pip install matplotlib).")
            return paths
        title = (
            "Indian Pines x4, held-out 144x48 region: fusion under degradations it was not "
            "told about"
        )
        paths.append(_figure(out_prefix + ".png", rows, title))
    return paths
