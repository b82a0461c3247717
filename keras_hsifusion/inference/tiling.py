"""Tile planning and blending weights of `fuse`: overlapping, aligned tiles that sum to one.

A scene of `H x W` HR pixels is cut into a grid of tiles, the product of a plan of row
intervals and a plan of column intervals (`plan_axis`). On each axis the fewest tiles of
`tile` pixels that overlap by at least `overlap` are spread evenly, every start rounded down
to a multiple of the alignment `multiple` (the scale and the model's window/patch multiple),
so every tile sees the windows and patches of a one-pass run at the same places. The last
tile ends on the scene's edge and may be up to `multiple - 1` pixels longer; a scene not
longer than `tile` is one tile.

Each interval gets a 1-D weight (`axis_weights`): 1 in its own part and, over each overlap
with a neighbour, 0 on the outer quarter (the tile's border, where padding changes a
model's output), a raised-cosine (Hann) cross-fade over the middle half (`sin^2` rising into
the tile, `cos^2` falling out of it) and 1 on the inner quarter, so that two overlapping
tiles cross-fade smoothly with weights that sum to 1. The weights are then divided by their
sum over the axis, an exact partition of unity even where three intervals overlap. A tile's
2-D weight is the outer product of its row and column weights.

Examples:
>>> plan_axis(100, tile=48, overlap=16, multiple=8)
[(0, 48), (24, 72), (48, 100)]
>>> w = axis_weights(plan_axis(100, 48, 16, 8), 100)
>>> [round(float(v), 3) for v in w[0][[0, 23, 24, 36, 47]]]  # ramp over the overlap 24-47
[1.0, 1.0, 1.0, 0.435, 0.0]
"""

import numpy as np

__all__ = [
    "TilePlan",
    "axis_weights",
    "balanced_tile",
    "check_tiling",
    "plan_axis",
    "plan_tiles",
]


def _pair(name, value):
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(
                f"`{name}` must be an int or a pair (rows, columns). Received: {name}={value!r}"
            )
        values = tuple(value)
    else:
        values = (value, value)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(
                f"`{name}` must be an int or a pair of ints (HR pixels). Received: {name}={value!r}"
            )
    return tuple(int(v) for v in values)


def check_tiling(tile, overlap, scale, multiple):
    """Validates `tile` and `overlap` (HR pixels) and returns the effective pairs.

    Args:
        tile: int or `(rows, columns)`: tile side in HR pixels; a multiple of `multiple`.
        overlap: int or `(rows, columns)`: the least overlap of neighbouring tiles in HR
            pixels, `0 <= overlap < tile`. It is rounded up so that the stride
            `tile - overlap` is a multiple of `multiple`.
        scale: the resolution ratio (divides `multiple`).
        multiple: the alignment of tiles in HR pixels.

    Returns:
        `((tile_rows, tile_cols), (overlap_rows, overlap_cols))`, the effective values.

    Raises:
        TypeError: for non-integer values. ValueError: for non-positive tiles, a tile not
        a multiple of `scale` or `multiple`, a negative overlap, or `overlap >= tile` (or an
        overlap that leaves a stride below `multiple`).
    """
    tiles, overlaps = _pair("tile", tile), _pair("overlap", overlap)
    out_overlap = []
    for t, o in zip(tiles, overlaps):
        if t < 1:
            raise ValueError(f"`tile` must be positive. Received: tile={tile!r}")
        if t % scale:
            raise ValueError(
                f"`tile` must be a multiple of the scale ({scale}) in HR pixels. Received: "
                f"tile={tile!r}"
            )
        if t % multiple:
            lower, upper = max(t // multiple, 1) * multiple, -(-t // multiple) * multiple
            raise ValueError(
                f"`tile` must be a multiple of {multiple} HR pixels for this method (its "
                f"scale times the window/patch multiple of the model), e.g. {lower} or "
                f"{upper}. Received: tile={tile!r}"
            )
        if o < 0:
            raise ValueError(f"`overlap` must be >= 0. Received: overlap={overlap!r}")
        if o >= t:
            raise ValueError(
                f"`overlap` must be smaller than `tile`. Received: overlap={overlap!r}, "
                f"tile={tile!r}"
            )
        stride = (t - o) // multiple * multiple
        if stride < multiple:
            raise ValueError(
                f"`overlap` leaves no stride: `tile - overlap` must be at least {multiple} "
                f"HR pixels (the alignment). Received: overlap={overlap!r}, tile={tile!r}"
            )
        out_overlap.append(t - stride)
    return tiles, tuple(out_overlap)


def plan_axis(size, tile, overlap, multiple=1):
    """`[(start, stop), ...]`: overlapping intervals covering `[0, size)`.

    `size <= tile` gives one interval. Otherwise the fewest intervals of length `tile` whose
    neighbours overlap by at least `overlap` (`tile - overlap` must be a multiple of
    `multiple`) are spread evenly, their starts rounded down to multiples of `multiple`; the
    last one ends at `size` (then it is `tile` to `tile + multiple - 1` long).
    """
    if size <= tile:
        return [(0, size)]
    span = size - tile
    count = 1 + -(-span // (tile - overlap))
    starts = sorted({k * span // (count - 1) // multiple * multiple for k in range(count)})
    return [(s, s + tile) for s in starts[:-1]] + [(starts[-1], size)]


def balanced_tile(size, tile, overlap, multiple):
    """The shortest tile (a multiple of `multiple`, at most `tile`) that covers `size` with
    as few tiles overlapping by `overlap` as tiles of `tile` would."""
    if size <= tile:
        return tile
    count = 1 + -(-(size - tile) // (tile - overlap))
    need = -(-(size + (count - 1) * overlap) // count)
    return min(tile, -(-need // multiple) * multiple)


def _rise(length):
    """Raised-cosine weight rising over an overlap of `length`: 0 on its outer quarters
    (tile borders, where padding changes a model's output), a Hann ramp over its middle."""
    margin = length // 4
    ramp = length - 2 * margin
    rise = np.zeros(length)
    rise[margin : margin + ramp] = np.sin(0.5 * np.pi * (np.arange(ramp) + 0.5) / ramp) ** 2
    rise[margin + ramp :] = 1.0
    return rise


def axis_weights(intervals, size):
    """1-D blending weights (float64) of `intervals` (as `plan_axis` gives), summing to 1.

    Over the overlap of two neighbours, the first quarter belongs to the earlier interval,
    the last quarter to the later one, and the middle half cross-fades (`sin^2` / `cos^2`).
    """
    weights = [np.ones(stop - start) for start, stop in intervals]
    for k in range(len(intervals) - 1):
        (_, stop), (start, _) = intervals[k], intervals[k + 1]
        length = stop - start
        if length <= 0:
            continue
        rise = _rise(length)
        weights[k][-length:] *= 1.0 - rise
        weights[k + 1][:length] *= rise
    total = np.zeros(size)
    for (start, stop), w in zip(intervals, weights):
        total[start:stop] += w
    if np.any(total <= 0):  # three intervals over one pixel can zero it out: fall back
        return axis_weights_uniform(intervals, size)
    return [w / total[start:stop] for (start, stop), w in zip(intervals, weights)]


def axis_weights_uniform(intervals, size):
    """Plain averaging of the overlaps (only where `axis_weights` cannot cover a pixel)."""
    total = np.zeros(size)
    for start, stop in intervals:
        total[start:stop] += 1.0
    return [1.0 / total[start:stop] for start, stop in intervals]


def _cores(intervals):
    cuts = [(stop + start) // 2 for (_, stop), (start, _) in zip(intervals, intervals[1:])]
    return list(zip([intervals[0][0], *cuts], [*cuts, intervals[-1][1]]))


def _indicator(interval, core):
    w = np.zeros(interval[1] - interval[0])
    w[core[0] - interval[0] : core[1] - interval[0]] = 1.0
    return w


class TilePlan:
    """The tiles of one scene: row and column intervals (HR pixels) and their weights.

    Attributes:
        shape: `(H, W)` of the HR scene. scale: resolution ratio.
        rows, cols: lists of `(start, stop)` intervals.
        row_weights, col_weights: float64 weights per interval (`axis_weights`, or after
            `use_cores` 1 on each interval's core and 0 elsewhere).
        blend: False after `use_cores`.
        tile, overlap: the effective `(rows, columns)` tile and overlap, or None for one pass.
    """

    def __init__(self, shape, scale, tile=None, overlap=None, multiple=None):
        big_h, big_w = shape
        self.shape, self.scale = (int(big_h), int(big_w)), int(scale)
        if tile is None:
            self.tile = self.overlap = None
            self.rows, self.cols = [(0, big_h)], [(0, big_w)]
        else:
            self.tile, self.overlap = tile, overlap
            self.rows = plan_axis(big_h, tile[0], overlap[0], multiple)
            self.cols = plan_axis(big_w, tile[1], overlap[1], multiple)
        self.row_weights = axis_weights(self.rows, big_h)
        self.col_weights = axis_weights(self.cols, big_w)
        self.blend = True

    def use_cores(self):
        """Weights 1 on each tile's core (`cores`) and 0 elsewhere, in place of the
        cross-fade: for a local method, whose tiles agree where they overlap (the core cut
        is the farthest point from both tiles' borders), nothing is blended."""
        self.blend = False
        row_cores, col_cores = self.cores()
        self.row_weights = [_indicator(i, c) for i, c in zip(self.rows, row_cores)]
        self.col_weights = [_indicator(i, c) for i, c in zip(self.cols, col_cores)]

    def __len__(self):
        return len(self.rows) * len(self.cols)

    def weight(self, i, j):
        """The float32 `(rows, cols, 1)` weight of tile `(i, j)`."""
        w = self.row_weights[i][:, None] * self.col_weights[j][None, :]
        return w.astype(np.float32)[..., None]

    def cores(self):
        """`(row_cores, col_cores)`: each interval cut at the middles of its overlaps, a
        partition of the scene (for methods whose tiles agree where they overlap)."""
        return _cores(self.rows), _cores(self.cols)

    def max_tile_shape(self):
        return (
            max(b - a for a, b in self.rows),
            max(b - a for a, b in self.cols),
        )

    def __repr__(self):
        return (
            f"TilePlan(shape={self.shape}, tile={self.tile}, overlap={self.overlap}, "
            f"tiles={len(self.rows)}x{len(self.cols)})"
        )


def plan_tiles(shape, scale, tile, overlap, multiple):
    """A `TilePlan`; `tile=None` is one pass. Checks `tile`/`overlap` (`check_tiling`)."""
    if tile is None:
        return TilePlan(shape, scale)
    tile, overlap = check_tiling(tile, overlap, scale, multiple)
    return TilePlan(shape, scale, tile, overlap, multiple)
