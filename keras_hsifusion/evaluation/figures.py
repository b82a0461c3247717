"""Figures of fused images: per-pixel error maps, false colour and one figure writer.

- `sam_map`, `rmse_map`: per-pixel spectral angle and RMSE of an estimate, `(H, W)`.
- `false_colour_bands`, `false_colour`: the one false-colour choice and stretch of the
  package (`keras_hsifusion.data.raster`: colour-infrared 860/650/550 nm, true colour or
  band fractions; 1st-99th percentile stretch to uint8, nodata black), re-exported here.
- `write_figure(path, rows, title)`: the one figure writer (matplotlib): rows of panels
  (images, maps, spectra, text), written atomically.
- `reference_figure` (`khf evaluate EST REF --figure`), `consistency_figure` (`khf evaluate
  EST --lr-hsi --hr-msi --figure`) and `comparison_figure` (`make demo`) build their rows
  and call it.

matplotlib is imported only inside `write_figure`; without it a `ValueError` says how to
install it.
"""

import os

import numpy as np

from keras_hsifusion.data.raster import false_colour, false_colour_bands

__all__ = [
    "comparison_figure",
    "consistency_figure",
    "false_colour",
    "false_colour_bands",
    "reference_figure",
    "rmse_map",
    "sam_map",
    "spectra_pixels",
    "write_figure",
]


def sam_map(ref, est):
    """Per-pixel spectral angle between `ref` and `est` `(H, W, C)`, in degrees, `(H, W)`."""
    dot = np.sum(ref * est, axis=-1, dtype=np.float64)
    norms = np.linalg.norm(ref, axis=-1) * np.linalg.norm(est, axis=-1)
    return np.degrees(np.arccos(np.clip(dot / np.maximum(norms, 1e-12), -1.0, 1.0)))


def rmse_map(ref, est):
    """Per-pixel RMSE over the bands of `ref` and `est` `(H, W, C)`, `(H, W)`."""
    return np.sqrt(np.mean(np.square(ref.astype(np.float64) - est), axis=-1))


def spectra_pixels(score, valid, quantiles=(0.5, 0.9, 0.99)):
    """`(row, col)` of the valid pixels at the given quantiles of `score` `(H, W)`."""
    order = np.flatnonzero(np.asarray(valid).reshape(-1))
    order = order[np.argsort(np.asarray(score).reshape(-1)[order], kind="stable")]
    picks = [order[int(q * (len(order) - 1))] for q in quantiles]
    return [divmod(int(i), score.shape[1]) for i in picks]


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ValueError("A figure needs matplotlib: pip install matplotlib") from e
    return plt


def _draw(fig, cell, panel):
    """One panel (a dict, see `write_figure`) in the grid cell `cell`; returns the image of
    a map panel (for a shared colour bar) or None."""
    ax = fig.add_subplot(cell)
    ax.axis("off")
    if panel is None:
        return ax, None
    image = None
    if "image" in panel:
        ax.imshow(panel["image"])
        for r, c in panel.get("marks", ()):
            ax.plot(c, r, "c+", ms=8)
    elif "map" in panel:
        image = ax.imshow(
            panel["map"], cmap=panel.get("cmap"), vmin=panel.get("vmin"), vmax=panel.get("vmax")
        )
        if panel.get("colorbar", True):
            fig.colorbar(image, ax=ax, fraction=0.046)
    elif "curves" in panel:
        ax.axis("on")
        for label, x, values, style in panel["curves"]:
            ax.plot(x, values, style, lw=panel.get("lw", 1.2), label=label)
        ax.set_xlabel(panel.get("xlabel", ""), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    elif "text" in panel:
        ax.text(0.5, 0.5, panel["text"], ha="center", va="center", fontsize=9)
    ax.set_title(panel.get("title", ""), fontsize=8)
    return ax, image


def write_figure(path, rows, title, heights=None, width=None):
    """Writes a figure of rows of panels as a PNG, atomically; returns `path`.

    Each row is a list of panels drawn side by side (rows may have different lengths), or a
    dict `{"panels": [...], "shared_colorbar": True}` whose maps share one colour bar. A
    panel is None (empty) or a dict with a `title` and one of:
    `image` (uint8 RGB, e.g. `false_colour`; optional `marks`: `(row, col)` crosses),
    `map` (2-D array; `cmap`, `vmin`, `vmax`, `colorbar` (default True)),
    `curves` (`[(label, x, values, style)]`; `xlabel`, `lw`),
    `text` (a label).

    Args:
        path: the PNG file.
        rows: the rows, top to bottom.
        title: the figure's title.
        heights: relative row heights (default equal).
        width: figure width in inches (default 3.2 per panel of the widest row).

    Raises:
        ValueError: without matplotlib.
    """
    from keras_hsifusion.utils.files import atomic_path

    plt = _pyplot()
    rows = [row if isinstance(row, dict) else {"panels": row} for row in rows]
    n = max(len(row["panels"]) for row in rows)
    heights = heights or [1.0] * len(rows)
    fig = plt.figure(figsize=(width or max(3.2 * n, 8.0), 3.0 * sum(heights)))
    grid = fig.add_gridspec(len(rows), 1, height_ratios=heights)
    for i, row in enumerate(rows):
        cells = grid[i].subgridspec(1, len(row["panels"]))
        shared = row.get("shared_colorbar", False)
        axes, image = [], None
        for j, panel in enumerate(row["panels"]):
            if shared and panel is not None and "map" in panel:
                panel = {**panel, "colorbar": False}
            ax, im = _draw(fig, cells[0, j], panel)
            if im is not None:
                axes.append(ax)
                image = im
        if shared and image is not None:
            fig.colorbar(image, ax=axes, fraction=0.02)
    fig.suptitle(title, fontsize=10)
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
        os.chmod(tmp, 0o644)
    plt.close(fig)
    return path


def _wavelength_axis(wavelengths, bands):
    if wavelengths is None:
        return np.arange(bands), "band"
    return np.asarray(wavelengths), "wavelength (nm)"


def reference_figure(path, ref, est, valid, wavelengths, names):
    """An estimate against its reference: false colour of both (the estimate stretched like
    the reference), per-pixel SAM and RMSE maps (nodata blank) and the spectra of the
    pixels at the median, 90 % and 99 % RMSE.

    Args:
        path: the PNG file.
        ref, est: `(H, W, C)` reference and estimate.
        valid: `(H, W)` bool, the pixels valid in both.
        wavelengths: `(C,)` band centres in nm, or None.
        names: `(estimate name, reference name)` for the title.
    """
    rmse, sam = rmse_map(ref, est), sam_map(ref, est)
    rmse[~valid], sam[~valid] = np.nan, np.nan
    pixels = spectra_pixels(np.nan_to_num(rmse), valid)
    bands, combo = false_colour_bands(wavelengths, ref.shape[-1])
    x, xlabel = _wavelength_axis(wavelengths, ref.shape[-1])
    rows = [
        [
            {
                "title": f"reference ({combo})",
                "image": false_colour(ref[..., bands], valid),
                "marks": pixels,
            },
            {
                "title": "estimate",
                "image": false_colour(est[..., bands], valid, ref[..., bands]),
                "marks": pixels,
            },
        ],
        [
            {"title": "SAM per pixel (deg)", "map": sam, "cmap": "magma"},
            {"title": "RMSE per pixel", "map": rmse, "cmap": "viridis"},
        ],
        [
            {
                "title": f"pixel {p} ({q} RMSE quantile)",
                "curves": [("reference", x, ref[p], "k-"), ("estimate", x, est[p], "r-")],
                "xlabel": xlabel,
            }
            for p, q in zip(pixels, ("50%", "90%", "99%"))
        ],
    ]
    return write_figure(path, rows, f"{names[0]} vs {names[1]}")


def consistency_figure(path, est, lr, degraded, wavelengths, name):
    """A fused image without reference: the LR-HSI and the fused image in false colour, and
    the consistency of the fused image brought to the LR grid (`degraded`) with the LR-HSI
    (per-pixel SAM and RMSE, spectra at the median, 90 % and 99 % RMSE)."""
    rmse, sam = rmse_map(lr, degraded), sam_map(lr, degraded)
    pixels = spectra_pixels(rmse, np.ones(lr.shape[:2], bool))
    bands, combo = false_colour_bands(wavelengths, est.shape[-1])
    x, xlabel = _wavelength_axis(wavelengths, est.shape[-1])
    rows = [
        [
            {"title": f"LR-HSI ({combo})", "image": false_colour(lr[..., bands]), "marks": pixels},
            {"title": "fused", "image": false_colour(est[..., bands], reference=lr[..., bands])},
        ],
        [
            {"title": "SAM(LR-HSI, degraded fused) (deg)", "map": sam, "cmap": "magma"},
            {"title": "RMSE(LR-HSI, degraded fused)", "map": rmse, "cmap": "viridis"},
        ],
        [
            {
                "title": f"LR pixel {p}",
                "curves": [("LR-HSI", x, lr[p], "k-"), ("fused, degraded", x, degraded[p], "r-")],
                "xlabel": xlabel,
            }
            for p in pixels
        ],
    ]
    return write_figure(path, rows, f"{name}: consistency with the LR-HSI (no reference)")


def comparison_figure(path, target, estimates, psnr, wavelengths, pixels, noisy=None, title=""):
    """Several estimates of one reference side by side (`make demo`).

    Rows: the reference and each estimate in false colour (stretched like the reference,
    with its PSNR), their per-pixel SAM and RMSE maps on shared colour scales (up to the
    99th percentile over all estimates), optionally a row for a noisy pair, and the spectra
    of every estimate at `pixels`.

    Args:
        path: the PNG file.
        target: `(H, W, C)` reference.
        estimates: `{name: (H, W, C) estimate}`.
        psnr: `{name: PSNR in dB}`.
        wavelengths: `(C,)` band centres in nm, or None.
        pixels: `(row, col)` pixels whose spectra are drawn.
        noisy: optional `{"title", "lr_hsi", "estimates": {name: (cube, psnr)}}`: the noisy
            LR-HSI (shown nearest-neighbour on the HR grid) and each fusion of it.
        title: the figure's title.
    """
    names = list(estimates)
    bands, combo = false_colour_bands(wavelengths, target.shape[-1])
    x, xlabel = _wavelength_axis(wavelengths, target.shape[-1])
    ref_rgb = target[..., bands]

    def colour(cube):
        return false_colour(cube[..., bands], reference=ref_rgb)

    sams = {k: sam_map(target, v) for k, v in estimates.items()}
    rmses = {k: rmse_map(target, v) for k, v in estimates.items()}
    sam_max = max(float(np.percentile(m, 99)) for m in sams.values())
    rmse_max = max(float(np.percentile(m, 99)) for m in rmses.values())
    images = [{"title": f"reference\n({combo})", "image": colour(target), "marks": pixels}]
    images += [{"title": f"{k}\n{psnr[k]:.2f} dB", "image": colour(estimates[k])} for k in names]

    def maps(label, values, cmap, vmax):
        panels = [{"text": label}]
        panels += [{"map": values[k], "cmap": cmap, "vmin": 0, "vmax": vmax} for k in names]
        return {"panels": panels, "shared_colorbar": True}

    rows = [
        images,
        maps("SAM (deg)\nper pixel", sams, "magma", sam_max),
        maps("RMSE\nper pixel", rmses, "viridis", rmse_max),
    ]
    heights = [1.0, 1.0, 1.0]
    if noisy:
        lr = noisy["lr_hsi"]
        scale = target.shape[0] // lr.shape[0]
        lr = np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)
        row = [{"text": noisy["title"]}, {"title": "noisy LR-HSI\n(input)", "image": colour(lr)}]
        row += [
            {"title": f"{k}\n{value:.2f} dB (noisy pair)", "image": colour(cube)}
            for k, (cube, value) in noisy["estimates"].items()
        ]
        rows.append(row + [None] * (len(images) - len(row)))
        heights.append(1.0)
    rows.append(
        [
            {
                "title": f"pixel ({r}, {c})",
                "curves": [("reference", x, target[r, c], "k-")]
                + [(k, x, estimates[k][r, c], "-") for k in names],
                "xlabel": xlabel,
                "lw": 0.9,
            }
            for r, c in pixels
        ]
    )
    heights.append(0.9)
    return write_figure(path, rows, title, heights=heights, width=max(2.1 * len(images), 8.0))
