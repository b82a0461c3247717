"""HySime's signal subspace of a batch of LR-HSIs, in `keras.ops` (float32, in the graph).

The graph counterpart of `keras_hsifusion.baselines.subspace.signal_subspace` (float64 numpy,
matched to the toolbox's `estNoise.m` / `hysime.m`), for `GlobalSkip("hysime_detail_injection")`.
Two rewrites keep it accurate in float32 without a loop over bands:

- estNoise's residual of band `i` regressed on all the others is `(R^-1 y)_i / (R^-1)_ii`
  for the band correlation `R = y y'` (the closed form of the reference's rank-one update),
  and `R^-1` comes from `eigh(R)` with the eigenvalues floored at `1e-7` of the largest
  (the reference's ridge is `1e-6` absolute on data of order one: the same role, but relative,
  so the result does not depend on the units).
- The noise powers get the same degrees-of-freedom correction `N / (N - m)` and the same
  interleaved band groups for images with fewer than `2 L` pixels as `signal_subspace`.

The projection `E_k E_k'` onto the kept eigenvectors (at least one) is returned; it is not
differentiated (the basis is a statistic of the input, as the global skip's regression).
"""

from keras import ops

# Eigenvalue floor of the band correlation, relative to its largest eigenvalue.
_FLOOR = 1e-7


def _groups(bands, pixels):
    # `signal_subspace`'s interleaved groups: each at most N / 2 bands (static shapes).
    return -(-2 * bands // pixels)


def _noise_operator(corr, pixels, index):
    # For one group (band indices `index` of the (B, L, L) correlation), the (B, m, m) map
    # from the group's bands to their estNoise residuals and the (B, m) noise powers.
    m = len(index)
    sub = ops.take(ops.take(corr, index, axis=1), index, axis=2)
    # Unit diagonal first (a residual is invariant to the bands' scales): far better
    # conditioned in float32 when the bands' powers differ by orders of magnitude.
    scale = ops.sqrt(ops.maximum(ops.diagonal(sub, axis1=1, axis2=2), 1e-30))
    unit = sub / (scale[:, :, None] * scale[:, None, :])
    vals, vecs = ops.eigh(unit)
    vals = ops.maximum(vals, _FLOOR * vals[:, -1:])
    inv = ops.einsum("bij,bj,bkj->bik", vecs, 1.0 / vals, vecs)
    inv = inv / (scale[:, :, None] * scale[:, None, :])
    diag = ops.diagonal(inv, axis1=1, axis2=2)
    residual = inv / diag[:, :, None]  # row i: (R^-1)_i. / (R^-1)_ii
    # Mean square of the residuals, (residual R residual')_ii / N, with the d.o.f. correction.
    power = ops.einsum("bij,bjk,bik->bi", residual, sub, residual) / (pixels - (m - 1))
    return residual, power


def hysime_projection(lr_hsi):
    """The `(B, C, C)` projection onto HySime's signal subspace of each `(h, w, C)` image.

    Args:
        lr_hsi: `(B, h, w, C)` tensor.

    Returns:
        `(projection, dims)`: `(B, C, C)` float32 orthogonal projections and the `(B,)` int32
        subspace dimensions.
    """
    lr = ops.cast(lr_hsi, "float32")
    bands = lr.shape[-1]
    pixels = lr.shape[1] * lr.shape[2]
    b = ops.shape(lr)[0]
    y = ops.reshape(lr, (b, -1, bands))
    top = ops.max(ops.abs(y), axis=(1, 2), keepdims=True)
    y = y / ops.where(top > 0, top, ops.ones_like(top))
    ry = ops.matmul(ops.transpose(y, (0, 2, 1)), y) / pixels  # (B, L, L)
    return hysime_projection_from_correlation(ry, pixels)


def hysime_projection_from_correlation(ry, pixels):
    """`hysime_projection` from the `(B, C, C)` band correlations `y'y / pixels` of images
    scaled to `max|y| = 1` and their pixel count (an int): for statistics gathered block by
    block over a whole scene (`layers.GlobalSkipFit`)."""
    ry = ops.cast(ry, "float32")
    bands, b = ry.shape[-1], ops.shape(ry)[0]
    groups = _groups(bands, pixels)
    eye = ops.eye(bands, dtype="float32")
    if bands < 2 * groups:  # too few pixels for groups of two bands: no projection
        return ops.broadcast_to(eye[None], (b, bands, bands)), ops.full((b,), bands, "int32")
    # The noise map W (y_noise = y W') and the noise powers, assembled group by group.
    noise_map, power = ops.zeros((b, bands, bands)), ops.zeros((b, bands))
    for g in range(groups):
        index = list(range(g, bands, groups))
        residual, group_power = _noise_operator(ry * pixels, pixels, index)
        onehot = ops.take(eye, index, axis=0)  # (m, L): group band -> band
        noise_map = noise_map + ops.einsum(
            "ai,bij,jc->bac", ops.transpose(onehot), residual, onehot
        )
        power = power + ops.einsum("bi,ia->ba", group_power, onehot)
    signal_map = eye[None] - noise_map  # x = y - w = y (I - W)'
    rx = ops.einsum("bij,bjk,blk->bil", signal_map, ry, signal_map)
    rx = (rx + ops.transpose(rx, (0, 2, 1))) / 2
    _, e = ops.eigh(rx)
    trace = ops.sum(ops.diagonal(rx, axis1=1, axis2=2), axis=-1)
    rn = power + (trace / bands / 1e10)[:, None]  # diagonal of Rn
    py = ops.einsum("bik,bij,bjk->bk", e, ry, e)
    pn = ops.einsum("bij,bi,bij->bj", e, rn, e)
    keep = ops.cast(-py + 2.0 * pn < 0, "float32")
    # At least one dimension: the eigenvector of the largest eigenvalue (eigh sorts ascending).
    keep = ops.maximum(keep, ops.one_hot(ops.full((b,), bands - 1, "int32"), bands))
    projection = ops.einsum("bik,bk,bjk->bij", e, keep, e)
    projection = ops.stop_gradient(projection)
    return projection, ops.cast(ops.sum(keep, axis=-1), "int32")
