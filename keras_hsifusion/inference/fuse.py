"""`fuse`: a whole scene of any size through a zoo model, a preset or a classical method.

The scene is cut into overlapping tiles aligned to the scale and to the model's windows or
patches (`keras_hsifusion.inference.tiling`); each tile is fused on its own and the tiles are
cross-faded with raised-cosine weights that sum to one. A local method (bicubic, and the
detail injections applying the scene's regression) needs no cross-fade: its tiles overlap by
twice its halo and each writes its core. Tile rows are accumulated in a strip buffer of one
tile row and every output row is written once, when final, so the peak memory depends on the
tile size and the scene width, not on its height: with `out=` (a `np.memmap`, an h5py or zarr
dataset, a raster writer) the scene never has to fit in memory.

One cohesive module: the tile loop, the memory plan that chooses one pass or tiles, and the
argument checks of the one public function.
"""

import contextlib
import numbers
import os

import numpy as np

from keras_hsifusion.baselines.global_skip import fit_scene
from keras_hsifusion.inference.methods import check_divisor, resolve_method, scale_inputs
from keras_hsifusion.inference.tiling import balanced_tile, plan_tiles
from keras_hsifusion.utils.progress import Progress, resolve_progress
from keras_hsifusion.utils.runtime import tuned_malloc

__all__ = ["fuse"]

# Classical methods: one pass when the scene fits in memory, else the largest tile of at
# most this size whose working memory fits.
CLASSICAL_TILE = 512
CLASSICAL_OVERLAP = 64
# Peak working memory of a classical method on one tile (its inputs, intermediates and the
# float32 output, which a one-pass run returns as the result), in multiples of that output:
# the peak RSS above the framework's, measured for `poly_detail_injection` (the heaviest of
# the global-skip family; 1024^2 x 200 bands, one pass: tensorflow 5.3, torch 3.55, jax 3.5)
# with ~25 % headroom (docs/fuse.md, "Memory").
CLASSICAL_WORK_FACTOR = {"tensorflow": 6.5, "torch": 4.5, "jax": 4.5}
# Share of the available memory (`MemAvailable`) `fuse` plans to use.
MEMORY_SHARE = 0.8
SKIP_FITS = ("scene", "tile")


def _is_dask(x):
    return type(x).__module__.split(".")[0] == "dask" and hasattr(x, "chunks")


def _check_image(name, x):
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        try:
            x = np.asarray(x)
        except (TypeError, ValueError) as e:
            raise TypeError(f"`{name}` must be a numeric array. Received: {name}={x!r}") from e
    if len(x.shape) != 3:
        raise ValueError(
            f"`{name}` must be a channels-last (height, width, bands) array. Received: {name} "
            f"of shape {tuple(x.shape)}"
        )
    if np.dtype(x.dtype).kind not in "iuf":
        raise TypeError(
            f"`{name}` must be a real numeric array (float or int). Received: {name} of dtype "
            f"{x.dtype}"
        )
    if 0 in tuple(x.shape):
        raise ValueError(f"`{name}` is empty. Received: {name} of shape {tuple(x.shape)}")
    return x


def _read(x, r0, r1, c0, c1):
    """A numpy block of `x` in its own dtype (numpy, memmap, h5py, zarr: read only that
    block); `scale_inputs` normalises it and makes it contiguous float32."""
    return np.asarray(x[r0:r1, c0:c1, :])


def _array_max(x, rows=256):
    """The maximum of a (possibly on-disk) `(h, w, C)` array, read in row blocks."""
    if isinstance(x, np.ndarray) and not isinstance(x, np.memmap):
        return float(np.max(x))
    return max(float(np.max(np.asarray(x[r : r + rows]))) for r in range(0, x.shape[0], rows))


def _available_memory():
    """Bytes of memory available to a new allocation (Linux MemAvailable), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n):
    return f"{n / 2**30:.2f} GiB"


def _check_shapes(m, lr, hr, scale):
    (h, w, bands), (big_h, big_w, msi_bands) = tuple(lr.shape), tuple(hr.shape)
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, numbers.Integral) or scale < 1:
            raise ValueError(f"`scale` must be a positive integer. Received: scale={scale!r}")
        scale = int(scale)
        if m.scale is not None and scale != m.scale:
            raise ValueError(
                f"`scale` does not match the model's scale {m.scale}. Received: scale={scale}"
            )
    if scale is None and m.scale is None:  # classical: the ratio of the sizes
        scale = big_h // h if big_h % h == 0 and big_w == big_h // h * w else None
        if scale is None:
            raise ValueError(
                "`hr_msi` must be an integer multiple (the scale) of the height and width of "
                f"`lr_hsi`. Received: lr_hsi of shape {tuple(lr.shape)}, hr_msi of shape "
                f"{tuple(hr.shape)}"
            )
    scale = scale or m.scale
    if (big_h, big_w) != (scale * h, scale * w):
        raise ValueError(
            f"`hr_msi` must be scale={scale} times the height and width of `lr_hsi`. Received: "
            f"lr_hsi of shape {tuple(lr.shape)}, hr_msi of shape {tuple(hr.shape)}"
        )
    for arg, got, want in (("lr_hsi", bands, m.hsi_bands), ("hr_msi", msi_bands, m.msi_bands)):
        if want is not None and got != want:
            raise ValueError(
                f"`{arg}` must have {want} bands for {m.name!r}. Received: {arg} of shape "
                f"{tuple(lr.shape if arg == 'lr_hsi' else hr.shape)}"
            )
    return scale


def _work_factor(m):
    return CLASSICAL_WORK_FACTOR.get(m.backend, max(CLASSICAL_WORK_FACTOR.values()))


def _classical_tile(m, shape, bands, multiple, in_memory, itemsize=4, local=False):
    """None (one pass) when a classical method's one-pass working memory fits in
    `MEMORY_SHARE` of the available memory, else the largest tile (`CLASSICAL_TILE`,
    halved while needed, a multiple of `multiple`) for which the output (when kept in
    memory), one strip buffer and one tile's working memory fit; the smallest tried when
    none fits (`_memory_guard` then refuses an output that cannot fit). A `local` method
    (tiles reassemble it exactly) is tiled whenever the scene is larger than a tile: at
    2048^2 its tiles were 3-5x faster than one pass and used 2-3x less memory (docs/fuse.md)."""
    big_h, big_w = shape
    factor, available = _work_factor(m), _available_memory()
    pixel = bands * itemsize
    fits = available is None or factor * big_h * big_w * pixel <= MEMORY_SHARE * available
    if available is None or (fits and (not local or max(shape) <= CLASSICAL_TILE)):
        return None
    output = big_h * big_w * pixel if in_memory else 0
    tile = -(-CLASSICAL_TILE // multiple) * multiple
    while True:
        rows, cols = min(tile + multiple, big_h), min(tile + multiple, big_w)
        need = output + rows * big_w * pixel + factor * rows * cols * pixel
        if need <= MEMORY_SHARE * available or tile <= 2 * multiple:
            return tile
        tile = max(2 * multiple, tile // 2 // multiple * multiple)


def _plan(m, shape, bands, scale, tile, overlap, in_memory=True, psf_fwhm=None, skip_fit=None):
    """The `TilePlan`: explicit tiles, the model's defaults, or for a classical method one
    pass when its working memory fits, else the largest tiles that fit
    (`_classical_tile`); for a local method (`_Method.halo`) these overlap by twice its
    halo and are balanced over the scene (`tiling.balanced_tile`)."""
    multiple = m.multiple or scale
    if tile is None:
        if m.kind == "model":
            tile, overlap = m.tile, m.overlap if overlap is None else overlap
        else:
            halo = m.halo(scale, psf_fwhm, skip_fit or "scene")
            local = halo is not None and overlap is None
            tile = _classical_tile(m, shape, bands, multiple, in_memory, local=local)
            if tile is None:
                return plan_tiles(shape, scale, None, None, multiple)
            if local:
                overlap = min(-(-2 * halo // multiple) * multiple, tile - multiple)
                tile = tuple(balanced_tile(n, tile, overlap, multiple) for n in shape)
                return plan_tiles(shape, scale, tile, overlap, multiple)
            overlap = min(CLASSICAL_OVERLAP if overlap is None else overlap, tile // 2)
    elif overlap is None:
        # The default overlap, lowered where the tile leaves no stride of `multiple`.
        overlap = m.overlap if m.kind == "model" else CLASSICAL_OVERLAP
        sides = tile if isinstance(tile, (tuple, list)) else (tile,)
        if all(isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in sides):
            overlap = max(0, min([overlap] + [int(t) - multiple for t in sides]))
    return plan_tiles(shape, scale, tile, overlap, multiple)


def _check_out(out, shape):
    if not hasattr(out, "__setitem__") or not hasattr(out, "shape"):
        raise TypeError(
            "`out` must support `out[r0:r1, c0:c1, :] = block` and have a `shape` (a numpy "
            f"array or memmap, an h5py or zarr dataset, a raster writer). Received: {out!r}"
        )
    if tuple(out.shape) != tuple(shape):
        raise ValueError(
            f"`out` must have the shape of the fused scene {tuple(shape)}. Received: out of "
            f"shape {tuple(out.shape)}"
        )


def _memory_guard(plan, bands):
    big_h, big_w = plan.shape
    output = big_h * big_w * bands * 4
    buffer = plan.max_tile_shape()[0] * big_w * bands * 4
    need = output + buffer
    available = _available_memory()
    if available is not None and need > available:
        raise MemoryError(
            f"The fused scene ({big_h} x {big_w} x {bands} float32, {_gib(output)}, plus a "
            f"{_gib(buffer)} strip buffer) does not fit in the {_gib(available)} of memory "
            "available. Pass `out=` to write it tile row by tile row to disk (an np.memmap, an "
            "h5py or zarr dataset), or fuse Dask arrays."
        )


def _scene_statistics(m, lr, hr, scale, psf_fwhm, divisor):
    """The `GlobalSkipStatistics` of every global skip `m` fits, fitted once on the whole
    scene with the inputs its tiles get (`baselines.global_skip.fit_scene`)."""
    stats = []
    for mode, skip_scale, skip_fwhm in m.global_skips(scale, psf_fwhm):
        if skip_scale != scale:  # not a skip over the model's own inputs: left per tile
            continue
        # A model's tiles are divided by the preset's divisor (or not at all); the
        # baselines divide by max|lr_hsi|, here the scene's.
        fit_divisor = divisor if m.kind == "model" else "unit"
        stats.append(fit_scene(mode, lr, hr, scale, skip_fwhm, divisor=fit_divisor))
    return tuple(stats)


def _weighted(pred, plan, i, j):
    return np.multiply(pred, plan.weight(i, j), out=pred)


def _tile_inputs(plan, i, j):
    (r0, r1), (c0, c1), s = plan.rows[i], plan.cols[j], plan.scale
    return (r0 // s, r1 // s, c0 // s, c1 // s), (r0, r1, c0, c1)


def _batches(cols, batch_size):
    """Consecutive column indices grouped by equal width, at most `batch_size` per group."""
    group = []
    for j, (c0, c1) in enumerate(cols):
        if group and (len(group) == batch_size or cols[group[0]][1] - cols[group[0]][0] != c1 - c0):
            yield group
            group = []
        group.append(j)
    if group:
        yield group


def _fuse_numpy(m, lr, hr, plan, out, batch_size, progress, srf, psf_fwhm, divisor):
    big_h, big_w = plan.shape
    bands = lr.shape[-1]
    result = out
    if out is None and len(plan) > 1:
        result = np.empty((big_h, big_w, bands), np.float32)
    # Tiles free and allocate output-sized arrays for each operation: keep them in the
    # heap meanwhile (`utils.runtime.tuned_malloc`; the result is allocated outside).
    with tuned_malloc() if len(plan) > 1 else contextlib.nullcontext():
        # A local method's tiles agree where they overlap: each tile's core is written as it is
        # (into the result, or into a strip of core rows for `out`), nothing is blended.
        crop = len(plan) > 1 and not plan.blend
        row_cores, col_cores = plan.cores()
        bar = progress
        done, buffer, start = 0, None, 0
        for i, (r0, r1) in enumerate(plan.rows):
            a0, a1 = row_cores[i]
            if crop:
                buffer = result[a0:a1] if out is None else np.empty((a1 - a0, big_w, bands), "f4")
            elif len(plan) > 1:  # one pass writes the prediction itself
                new = np.zeros((r1 - r0, big_w, bands), np.float32)
                if buffer is not None and start + len(buffer) > r0:
                    new[: start + len(buffer) - r0] = buffer[r0 - start :]
                buffer = new
            start = r0
            for group in _batches(plan.cols, batch_size):
                lrs, hrs = [], []
                for j in group:
                    (a, b, c, d), _ = _tile_inputs(plan, i, j)
                    c0, c1 = plan.cols[j]
                    lrs.append(_read(lr, a, b, c, d))
                    hrs.append(_read(hr, r0, r1, c0, c1))
                if m.kind == "model" and len(lrs) < batch_size and m.backend == "jax":
                    # A constant batch size: JAX compiles `predict_on_batch` once per shape.
                    lrs += [lrs[0]] * (batch_size - len(lrs))
                    hrs += [hrs[0]] * (batch_size - len(hrs))
                dtype = np.float32 if m.kind == "model" else np.float64
                lrs, hrs = scale_inputs(np.stack(lrs), np.stack(hrs), divisor, dtype)
                preds = m(lrs, hrs, plan.scale, srf, psf_fwhm)
                if len(preds) > len(group) or not (crop or preds.flags.writeable):  # JAX's padding
                    preds = np.array(preds[: len(group)])
                if divisor is not None:
                    preds *= np.float32(divisor)  # in place: no output-sized temporaries
                for j, pred in zip(group, preds):
                    c0, c1 = plan.cols[j]
                    if len(plan) == 1:  # one pass: the weight is 1, the prediction is the strip
                        buffer = pred
                    elif crop:
                        b0, b1 = col_cores[j]
                        buffer[:, b0:b1] = pred[a0 - r0 : a1 - r0, b0 - c0 : b1 - c0]
                    else:
                        buffer[:, c0:c1] += _weighted(pred, plan, i, j)
                done += len(group)
                if bar is not None:
                    bar.update(done)
            if crop:
                if out is not None:
                    out[a0:a1, 0:big_w, :] = buffer
                continue
            stop = plan.rows[i + 1][0] if i + 1 < len(plan.rows) else big_h
            if out is None and len(plan) == 1:
                return buffer  # the only tile, the whole scene: no copy
            result[r0:stop, 0:big_w, :] = buffer[: stop - r0]
        return result


def fuse(
    lr_hsi,
    hr_msi,
    method,
    *,
    scale=None,
    tile=None,
    overlap=None,
    batch_size=1,
    progress=None,
    out=None,
    srf=None,
    psf_fwhm=None,
    skip_fit="scene",
):
    """Fuses a whole scene of any size, tile by tile, with a preset, a model or a classical
    method.

    The scene is cut into overlapping tiles (HR pixels) aligned to the scale and to the
    model's window/patch multiple (`model.fuse_multiple`), so every tile sees the windows and
    patches of a one-pass run at the same places; border tiles are shifted back to end on the
    scene's edge and a scene not larger than a tile runs in one pass. Tiles are cross-faded
    with separable raised-cosine (Hann) weights over their overlaps that sum to one, and each
    output row is written once, when final, from a strip buffer of one tile row: the peak
    memory depends on the tile and the scene width, not its height.

    Defaults: a zoo model uses its class's `fuse_tile` / `fuse_overlap` (see docs/fuse.md for
    the measurements behind them; `128` / `tile // 4` for models without them). Classical
    methods (`keras_hsifusion.baselines.METHODS`, most of which fit regressions on the whole
    image) run in one pass when their working memory (measured per backend:
    `CLASSICAL_WORK_FACTOR` float32 copies of the output) fits in 80 % of the available
    memory, else in the largest tiles of at most 512 (overlap 64, at most half the tile) for
    which the output, one strip and one tile's working memory fit; `tile=` forces tiles.

    Normalisation: a preset (by name or folder, or a model carrying its card as
    `model.preset_card`) whose card has a `normalisation` entry gets its input divided by one
    constant, the maximum of `lr_hsi` (or the card's `normalisation.divisor` when it is a
    number), and its output multiplied back, so the result is in the units of the input; a
    maximum that is not positive and finite (an all-zero or all-negative LR-HSI, NaN) is a
    `ValueError`. A model without a card sees the input as given. Integer inputs are
    converted to float32 (float64 for classical methods); negative values are fused as given.
    The division is done in float64 before the one rounding to float32, and every tile is a
    C-contiguous copy: the result is proportional to the units of the input and the same for
    any dtype holding the same values and any memory layout (docs/reliability.md).

    Args:
        lr_hsi: `(h, w, C)` channels-last array: numpy (any float or integer dtype), an
            array-like that reads blocks on slicing (np.memmap, h5py/zarr dataset), or a
            Dask array.
        hr_msi: `(scale*h, scale*w, c)` array of the same kinds.
        method: a preset name (`keras_hsifusion.list_presets()`), a preset folder, a
            `FusionModel`, or a classical method name (`keras_hsifusion.baselines.METHODS`).
        scale: resolution ratio; defaults to the model's scale, or `H // h`.
        tile: tile side in HR pixels (int or `(rows, cols)`), a multiple of the alignment
            (the scale for classical methods); None for the defaults above.
        overlap: least overlap of neighbouring tiles in HR pixels, `0 <= overlap < tile`,
            rounded up so that `tile - overlap` is a multiple of the alignment. Defaults to
            the model's `fuse_overlap` (classical: 64, at most `tile // 2`).
        batch_size: tiles of equal shape per model call (models only). Default 1.
        progress: report the tiles done on stderr (`keras_hsifusion.utils.progress`: a bar
            on a terminal, a line per 10 % in a log). Default None: on when stderr is a
            terminal (an interactive session), off otherwise.
        out: None (return a new float32 array), or a target supporting
            `out[r0:r1, c0:c1, :] = block` with shape `(H, W, C)` (np.memmap, h5py or zarr
            dataset, a raster writer): every row is written once and `out` is returned.
        srf: `(C, c)` spectral response for classical methods that use one.
        psf_fwhm: PSF FWHM in HR pixels for classical methods that use one.
        skip_fit: where a global skip's spectral regression is fitted when the scene is
            cut into tiles (a zoo model's `GlobalSkip`, the baselines `detail_injection` and
            `poly_detail_injection`): `"scene"` (default) once on the whole scene before
            tiling (`baselines.global_skip.fit_scene`, read in row blocks), then applied to
            every tile, so that the tiles give the one-pass result; `"tile"`: each tile
            fits its own (the earlier behaviour: 0.1-0.3 dB lower with tiles of 32-64 HR
            pixels on Indian Pines, docs/fuse.md). Other methods and one-pass runs are not
            affected.

    Returns:
        the fused `(H, W, C)` float32 numpy array, or `out`. With Dask inputs: a float32 Dask
        array computed over the same tiles, identical to the in-memory result (`batch_size`
        1), unless `out` is given (then it is stored into `out`, which is returned).

    Raises:
        ValueError / TypeError: bad shapes, band counts, `tile` or `overlap` (naming the
            argument and the value), an unknown `method` (naming the choices), a preset's
            normalisation maximum that is not positive, NaN/Inf in a tile given to a model,
            or NaN/Inf out of a model on finite inputs (float32 overflow: unscaled input).
        MemoryError: when the in-memory output cannot fit (before allocating it or reading
            the input), with the estimate in GiB; pass `out=`.

    Examples:
    >>> import numpy as np, keras_hsifusion as khf
    >>> rng = np.random.default_rng(0)
    >>> lr, hr = rng.random((40, 40, 6)), rng.random((160, 160, 3))
    >>> fused = khf.fuse(lr, hr, "bicubic", tile=64, overlap=32)
    >>> fused.shape, fused.dtype
    ((160, 160, 6), dtype('float32'))
    >>> one_pass = khf.fuse(lr, hr, "bicubic")
    >>> bool(np.abs(fused - one_pass).max() < 1e-5)  # a local method: reassembled exactly
    True
    """
    m = resolve_method(method)
    lr_hsi, hr_msi = _check_image("lr_hsi", lr_hsi), _check_image("hr_msi", hr_msi)
    scale = _check_shapes(m, lr_hsi, hr_msi, scale)
    if m.kind == "model" and (srf is not None or psf_fwhm is not None):
        raise ValueError(
            "`srf` and `psf_fwhm` are used by classical methods only. Received: "
            f"srf of type {type(srf).__name__}, psf_fwhm={psf_fwhm!r} with method={m.name!r}"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int. Received: batch_size={batch_size}")
    if not isinstance(skip_fit, str) or skip_fit not in SKIP_FITS:
        raise ValueError(f"`skip_fit` must be one of {SKIP_FITS}. Received: skip_fit={skip_fit!r}")
    big_h, big_w, bands = hr_msi.shape[0], hr_msi.shape[1], lr_hsi.shape[-1]
    plan = _plan(m, (big_h, big_w), bands, scale, tile, overlap, out is None, psf_fwhm, skip_fit)
    if out is not None:
        _check_out(out, (big_h, big_w, bands))
    dask = _is_dask(lr_hsi) or _is_dask(hr_msi)
    if out is None and not dask:  # before reading the whole input
        _memory_guard(plan, bands)
    divisor = m.divisor
    if divisor == "max" and (not dask or (skip_fit == "scene" and len(plan) > 1)):
        divisor = check_divisor(_array_max(lr_hsi))
    if skip_fit == "scene" and len(plan) > 1:  # one pass fits the scene anyway
        with tuned_malloc():
            m.statistics = _scene_statistics(m, lr_hsi, hr_msi, scale, psf_fwhm, divisor)
    if len(plan) > 1 and m.halo(scale, psf_fwhm, skip_fit) is not None:
        plan.use_cores()
    if dask:
        from keras_hsifusion.inference._dask import fuse_dask

        result = fuse_dask(m, lr_hsi, hr_msi, plan, srf, psf_fwhm)
        if out is None:
            return result
        result.store(out, lock=True)
        return out
    bar = Progress(len(plan), unit="tile", label="fuse") if resolve_progress(progress) else None
    try:
        return _fuse_numpy(
            m, lr_hsi, hr_msi, plan, out, int(batch_size), bar, srf, psf_fwhm, divisor
        )
    finally:
        if bar is not None:  # ends the bar's line, also when interrupted
            bar.close()
