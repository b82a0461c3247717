"""Endmember extraction for CNMF and HySure: VCA and the virtual dimensionality.

Vertex component analysis (Nascimento and Bioucas-Dias, IEEE TGRS 2005) in the two variants
of the reference toolbox (magamig/hif-benchmarking): Yokoya's (`methods/CNMF/vca.m`, used by
CNMF) and Bioucas-Dias's (`methods/HySure/VCA.m`, used by HySure with `SNR = 0`). VCA draws
one uniform random vector per endmember; `draws` fixes them so that a run can be reproduced
(the golden fixtures feed the same draws to the Octave reference). The leading singular
vectors are signed so that the largest-magnitude entry of each is positive (`svds` leaves
the sign arbitrary and the selected pixels depend on it).
"""

import numpy as np
from scipy import special

__all__ = [
    "affine_projection",
    "leading_eigenvectors",
    "uniform_draws",
    "vca_hysure",
    "vca_yokoya",
    "vd",
]


def leading_eigenvectors(matrix, k):
    """The `k` leading eigenvectors of a symmetric PSD matrix, as `svds(matrix, k)`.

    Returns:
        `(L, k)` float64 array, columns by decreasing eigenvalue, each signed so that its
        largest-magnitude entry is positive.
    """
    vals, vecs = np.linalg.eigh(np.asarray(matrix, dtype=np.float64))
    vecs = vecs[:, np.argsort(vals)[::-1][:k]]
    pick = vecs[np.argmax(np.abs(vecs), axis=0), np.arange(k)]
    return vecs * np.where(pick < 0, -1.0, 1.0)


def uniform_draws(draws, seed, count):
    """`count` uniform [0, 1) numbers: `draws[:count]` when given, else from `seed`."""
    if draws is None:
        return np.random.default_rng(seed).random(count)
    draws = np.asarray(draws, dtype=np.float64).ravel()
    if draws.size < count:
        raise ValueError(
            f"`vca_draws` must hold at least {count} uniform draws. Received: {draws.size}"
        )
    return draws[:count]


def _select(y, draws):
    # y: (p, N) lifted data; one random direction orthogonal to the picked vertices each step.
    p = y.shape[0]
    picked = np.zeros(p, dtype=np.int64)
    basis = np.zeros((p, 1))
    basis[p - 1, 0] = 1.0
    for i in range(p):
        w = draws[i * p : (i + 1) * p]
        # A pinv(A) w: the projection on the span of the picked vertices (pinv's tolerance).
        u, s, _ = np.linalg.svd(basis, full_matrices=False)
        u = u[:, s > max(basis.shape) * np.finfo(np.float64).eps * s[0]]
        f = w - u @ (u.T @ w)
        f = f / np.sqrt(np.sum(f**2))
        picked[i] = np.argmax(np.abs(f @ y))
        basis = y[:, picked[: i + 1]]
    return picked


def vca_yokoya(data, p, draws):
    """VCA as in Yokoya's CNMF code: SNR-dependent projection, then vertex search.

    Args:
        data: `(L, N)` spectra (columns).
        p: number of endmembers.
        draws: `p * p` uniform draws, `p` per endmember.

    Returns:
        `(L, p)` float64 endmembers.
    """
    r = np.asarray(data, dtype=np.float64)
    bands, n = r.shape
    r_m = r.mean(axis=1)
    r_o = r - r_m[:, None]
    cov = r_o @ r_o.T / n
    ud = leading_eigenvectors(cov, p)
    x_p = ud.T @ r_o
    p_y = np.sum(r**2) / n
    p_x = np.sum(x_p**2) / n + r_m @ r_m
    with np.errstate(divide="ignore", invalid="ignore"):  # noiseless data: inf or nan, as MATLAB
        snr = abs(10 * np.log10((p_x - p / bands * p_y) / (p_y - p_x)))
    if snr > 15 + 10 * np.log(p) + 8:
        ud = leading_eigenvectors(r @ r.T / n, p)
        x = ud.T @ r
        u = x.mean(axis=1)
        y = x / (u @ x)[None, :]
        picked = _select(y, draws)
        return ud @ x[:, picked]
    ud = leading_eigenvectors(cov, p - 1)
    x = ud.T @ r_o
    c = np.sqrt(np.max(np.sum(x**2, axis=0)))
    y = np.vstack([x, np.full((1, n), c)])
    picked = _select(y, draws)
    return ud @ x[:, picked] + r_m[:, None]


def affine_projection(data, p):
    """The lifted projection of HySure's VCA on the best `(p-1)`-dim affine set.

    Args:
        data: `(L, N)` spectra (columns).
        p: number of endmembers.

    Returns:
        `(y, projected)`: the `(p, N)` lifted coordinates in which vertices are searched and
        the `(L, N)` spectra projected on the affine set.
    """
    r = np.asarray(data, dtype=np.float64)
    n = r.shape[1]
    r_m = r.mean(axis=1)
    cov = r @ r.T / n - np.outer(r_m, r_m)
    ud = leading_eigenvectors(cov, p - 1)
    x_p = ud.T @ (r - r_m[:, None])
    c = np.sqrt(np.max(np.sum(x_p**2, axis=0)))
    y = np.vstack([x_p, np.full((1, n), c)])
    return y, ud @ x_p + r_m[:, None]


def vca_hysure(data, p, draws, projection=None):
    """VCA as HySure calls it (`SNR = 0`): projection on the best `(p-1)`-dim affine set.

    Args:
        data: `(L, N)` spectra (columns).
        p: number of endmembers.
        draws: `p * p` uniform draws.
        projection: None or `affine_projection(data, p)`, to reuse it over several runs.

    Returns:
        `(L, p)` float64 endmembers (the selected pixels projected on the affine set).
    """
    y, projected = affine_projection(data, p) if projection is None else projection
    return projected[:, _select(y, draws)]


def vd(data, alpha):
    """Virtual dimensionality (Harsanyi-Farrand-Chang), Yokoya's `vd.m`.

    Counts the eigenvalues of the correlation matrix that exceed those of the covariance
    matrix by more than the Neyman-Pearson threshold at false-alarm rate `alpha`.

    Args:
        data: `(L, N)` spectra (columns).
        alpha: false-alarm rate.

    Returns:
        int, the number of spectrally distinct sources.
    """
    x = np.asarray(data, dtype=np.float64)
    n = x.shape[1]
    e_r = np.sort(np.linalg.eigvalsh(x @ x.T / n))[::-1]
    e_k = np.sort(np.linalg.eigvalsh(np.cov(x)))[::-1]
    sigma = np.sqrt(2 * (e_r**2 + e_k**2) / n)
    tau = -sigma * special.ndtri(alpha)
    return int(np.sum(e_r - e_k > tau))
