"""The universal image quality index Q (Wang and Bovik, 2002) on sliding windows, from running
sums: shared by `full_reference.uiqi` and the no-reference indices (`no_reference`)."""

import numpy as np

__all__ = ["box_sums", "pairwise_q", "q_from_sums", "q_index"]


def box_sums(x, block):
    """Sums of `x` (..., H, W) over every `block` x `block` window (valid positions only)."""
    s = np.cumsum(np.cumsum(x, axis=-2), axis=-1)
    s = np.pad(s, [(0, 0)] * (s.ndim - 2) + [(1, 0), (1, 0)])
    return (
        s[..., block:, block:]
        - s[..., :-block, block:]
        - s[..., block:, :-block]
        + s[..., :-block, :-block]
    )


def q_from_sums(n, sx, sy, sxx, syy, sxy):
    """Mean Q over windows from window sums of x, y, x^2, y^2, xy (..., h, w) -> (...)."""
    num = 4.0 * (n * sxy - sx * sy) * sx * sy
    den1 = n * (sxx + syy) - sx * sx - sy * sy
    den2 = sx * sx + sy * sy
    # Flat windows follow the reference implementation of Wang and Bovik (img_qi.m); "zero"
    # allows for the rounding of the running sums.
    flat = np.abs(den1) <= 1e-10 * n * (sxx + syy)
    den1 = np.where(flat, 0.0, den1)
    den = den1 * den2
    q = np.ones_like(num)
    only_means = flat & (den2 != 0)
    q = np.where(only_means, 2.0 * sx * sy / np.where(only_means, den2, 1.0), q)
    regular = den != 0
    q = np.where(regular, num / np.where(regular, den, 1.0), q)
    return np.mean(q, axis=(-2, -1))


def q_index(x, y, block):
    """Mean Wang-Bovik Q over sliding windows of images `x`, `y` (..., H, W) -> (...)."""
    block = min(block, x.shape[-2], x.shape[-1])
    x, y = np.broadcast_arrays(x, y)
    sums = [box_sums(v, block) for v in (x, y, x * x, y * y, x * y)]
    return q_from_sums(float(block * block), *sums)


def pairwise_q(bands, block):
    """Mean Q of every band pair (i < j) of `bands` (C, H, W), in the order of np.triu_indices."""
    block = min(block, bands.shape[-2], bands.shape[-1])
    n = float(block * block)
    s1 = box_sums(bands, block)
    s2 = box_sums(bands * bands, block)
    out = []
    for i in range(bands.shape[0] - 1):
        sxy = box_sums(bands[i] * bands[i + 1 :], block)
        out.append(q_from_sums(n, s1[i], s1[i + 1 :], s2[i], s2[i + 1 :], sxy))
    return np.concatenate(out)
