"""The Dask path of `fuse`: the same tiles and weights as the in-memory path, as a task graph.

One task per tile reads its LR-HSI and HR-MSI blocks (only the input chunks it touches),
fuses them and applies its blending weight; the output is a grid of blocks, cut where any
tile starts or ends, each the sum of the weighted tiles that cover it, added in the order of
the in-memory path, so both give identical numbers. The method (a model, or a preset that
each worker loads once from its files) is one key of the graph, shipped once per worker.
"""

import numpy as np

from keras_hsifusion.inference.methods import check_divisor, fuse_tile

__all__ = ["fuse_dask"]


def _import_dask():
    try:
        import dask
        import dask.array as da
    except ImportError as e:
        raise ImportError(
            "Fusing Dask arrays needs Dask: `pip install keras-hsifusion[dask]` "
            '(or `pip install "dask[array]" distributed`).'
        ) from e
    return dask, da


def _tile_task(method, lr, hr, weight, scale, srf, psf_fwhm, divisor):
    if divisor is not None:  # the maximum of the LR-HSI, computed by its own task
        divisor = check_divisor(divisor)
    lr, hr = np.asarray(lr, dtype=np.float32), np.asarray(hr, dtype=np.float32)
    return fuse_tile(method, lr, hr, scale, srf, psf_fwhm, divisor) * weight


def _block_task(shape, pieces):
    block = np.zeros(shape, np.float32)
    for tile, (r0, r1, c0, c1) in pieces:
        block += tile[r0:r1, c0:c1]
    return block


def fuse_dask(method, lr_hsi, hr_msi, plan, srf=None, psf_fwhm=None):
    """The fused scene as a lazy float32 `(H, W, C)` Dask array (see `fuse`)."""
    dask, da = _import_dask()
    lr, hr = da.asarray(lr_hsi), da.asarray(hr_msi)
    bands, scale = lr.shape[-1], plan.scale
    method_key = dask.delayed(method, pure=True)
    divisor = method.divisor
    if divisor == "max":
        divisor = lr.max()
    tiles = {}
    for i, (r0, r1) in enumerate(plan.rows):
        for j, (c0, c1) in enumerate(plan.cols):
            lr_block = lr[r0 // scale : r1 // scale, c0 // scale : c1 // scale]
            hr_block = hr[r0:r1, c0:c1]
            tiles[i, j] = dask.delayed(_tile_task, pure=True)(
                method_key,
                lr_block,
                hr_block,
                plan.weight(i, j),
                scale,
                srf,
                psf_fwhm,
                divisor,
            )
    row_cuts = sorted({x for interval in plan.rows for x in interval})
    col_cuts = sorted({x for interval in plan.cols for x in interval})
    blocks = []
    for a, b in zip(row_cuts[:-1], row_cuts[1:]):
        line = []
        for c, d in zip(col_cuts[:-1], col_cuts[1:]):
            pieces = []
            for i, (r0, r1) in enumerate(plan.rows):
                if not (r0 <= a and b <= r1):
                    continue
                for j, (c0, c1) in enumerate(plan.cols):
                    if c0 <= c and d <= c1:
                        pieces.append((tiles[i, j], (a - r0, b - r0, c - c0, d - c0)))
            task = dask.delayed(_block_task, pure=True)((b - a, d - c, bands), pieces)
            block = da.from_delayed(task, shape=(b - a, d - c, bands), dtype=np.float32)
            line.append([block])  # np.block nesting: rows, then columns, then bands
        blocks.append(line)
    return da.block(blocks)
