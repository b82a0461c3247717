"""Resampling operators of the classical pansharpening-family baselines (SFIM, GSA, GLP).

Each operator is one small matrix per image axis (`y = M_rows @ x @ M_cols.T`, band by
band), so that a whole cube is two `tensordot`s. They reproduce the MATLAB functions the
reference code (Yokoya et al.'s toolbox, as collected in magamig/hif-benchmarking) calls:

- `resize_matrix`: `imresize` with `'nearest'`, `'bilinear'` or `'bicubic'` (Keys, a = -0.5),
  antialiased when shrinking (the kernel stretched by `1 / scale`), weights normalised to sum
  1, symmetric border padding; the same as GNU Octave's `image` package 2.14.
- `interp23tap_matrix`: `interp23tapGeneral`: zero insertion at a start offset, then the
  45-tap Hamming-windowed low-pass `ratio * fir1(44, 1 / ratio)` applied with circular
  borders (`imfilter(..., 'circular')`) along each axis. MATLAB's and GNU Octave's `fir1`
  differ (`fir1_lowpass`); MATLAB's is the default.

The toolbox's `gaussian_down_sample` is `_estimation.gaussian_down_sample`.
"""

import numpy as np

__all__ = [
    "apply_axes",
    "fir1_lowpass",
    "interp23tap_matrix",
    "matlab_round",
    "resize",
    "resize_matrix",
]


def matlab_round(x):
    """MATLAB's `round`: halves away from zero (Python's `round` goes to even).

    An `int` for a scalar, a float64 array for an array.
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.sign(x) * np.floor(np.abs(x) + 0.5)
    return int(out) if out.ndim == 0 else out


def _triangle(d):
    return np.clip(1.0 - np.abs(d), 0.0, None)


def _cubic(d):
    a = np.abs(d)
    a2, a3 = a * a, a * a * a
    inner = (1.5 * a3 - 2.5 * a2 + 1.0) * (a <= 1)
    outer = (-0.5 * a3 + 2.5 * a2 - 4.0 * a + 2.0) * ((a > 1) & (a <= 2))
    return inner + outer


def _symmetric_index(j, n):
    """0-based indices `j` (any integers) folded into `[0, n)` by half-sample symmetry."""
    period = 2 * n
    m = np.mod(j, period)
    return np.where(m < n, m, period - 1 - m)


def resize_matrix(n_in, n_out, method):
    """The `(n_out, n_in)` matrix of MATLAB's `imresize` along one axis.

    Args:
        n_in: input length.
        n_out: output length (the scale is `n_out / n_in`).
        method: `"nearest"`, `"bilinear"` or `"bicubic"`.

    Returns:
        float64 array `(n_out, n_in)`.
    """
    scale = n_out / n_in
    x = np.arange(1, n_out + 1) / scale + 0.5 * (1.0 - 1.0 / scale)  # 1-based input coords
    matrix = np.zeros((n_out, n_in))
    if method == "nearest":
        idx = np.clip(matlab_round(x), 1, n_in).astype(np.int64) - 1
        matrix[np.arange(n_out), idx] = 1.0
        return matrix
    kernel, width = {"bilinear": (_triangle, 2.0), "bicubic": (_cubic, 4.0)}[method]
    if scale < 1:  # antialiasing: the kernel stretched by 1 / scale
        base = kernel

        def kernel(d):
            return scale * base(scale * d)

        width = width / scale
    left = np.floor(x - width / 2.0)
    taps = int(np.ceil(width)) + 2
    j = left[:, None] + np.arange(taps)[None, :]  # 1-based input positions
    weights = kernel(x[:, None] - j)
    weights /= weights.sum(axis=1, keepdims=True)
    cols = _symmetric_index(j.astype(np.int64) - 1, n_in)
    np.add.at(matrix, (np.repeat(np.arange(n_out), taps), cols.ravel()), weights.ravel())
    return matrix


def apply_axes(x, rows, cols):
    """`rows @ x[..., k] @ cols.T` for every band `k` of an `(H, W, C)` array."""
    out = np.tensordot(rows, x, axes=([1], [0]))  # (H', W, C)
    out = np.tensordot(cols, out, axes=([1], [1]))  # (W', H', C)
    return np.ascontiguousarray(out.transpose(1, 0, 2))


def resize(x, size, method):
    """MATLAB `imresize(x, size, method)` of an `(H, W, C)` float64 array, band by band."""
    rows = resize_matrix(x.shape[0], size[0], method)
    cols = resize_matrix(x.shape[1], size[1], method)
    return apply_axes(x, rows, cols)


def _hamming(length):
    return 0.54 - 0.46 * np.cos(2.0 * np.pi * np.arange(length) / (length - 1))


def fir1_lowpass(order, cutoff, design="matlab"):
    """`fir1(order, cutoff)`: a Hamming-windowed low-pass FIR with unit gain at DC.

    Args:
        order: even filter order (`order + 1` taps).
        cutoff: cut-off in (0, 1), 1 the Nyquist frequency.
        design: `"matlab"`: MATLAB's `fir1` (the ideal low-pass impulse response, a sinc,
            truncated and windowed; the same as `scipy.signal.firwin`). `"octave"`: GNU
            Octave `signal` package 1.4's `fir1`, a frequency-sampling design (`fir2` on a
            512-point grid with a 2-point transition ramp), about 1e-3 away from MATLAB's taps.

    Returns:
        float64 array `(order + 1,)`.
    """
    if design == "matlab":
        n = np.arange(order + 1) - order / 2.0
        taps = cutoff * np.sinc(cutoff * n)
    elif design == "octave":
        grid_n, ramp = 512, 2.0 / 512 / 2
        f = np.unique(np.clip([0.0, cutoff - ramp, cutoff, cutoff + ramp, 1.0], 0.0, 1.0))
        # Octave's interp1 is right-continuous at the repeated break point `cutoff`.
        grid = np.interp(np.linspace(0.0, 1.0, grid_n + 1), f, (f < cutoff).astype(float))
        response = np.real(np.fft.ifft(np.concatenate([grid, grid[grid_n - 1 : 0 : -1]])))
        half = (order + 1) / 2.0
        taps = np.concatenate(
            [response[response.size - int(np.floor(half)) :], response[: int(np.ceil(half))]]
        )
    else:
        raise ValueError(f"`design` must be 'matlab' or 'octave'. Received: design={design!r}")
    taps = taps * _hamming(order + 1)
    return taps / abs(taps.sum())


def interp23tap_matrix(n, ratio, offset, design="matlab"):
    """The `(ratio * n, n)` matrix of `interp23tapGeneral` along one axis.

    Args:
        n: LR length.
        ratio: integer upsampling ratio (>= 2).
        offset: 0-based position of the first LR sample on the HR grid (the reference's
            `start_pos - 1`).
        design: the `fir1` of the 45-tap filter (`fir1_lowpass`).

    Returns:
        float64 array `(ratio * n, n)`.
    """
    taps = ratio * fir1_lowpass(44, 1.0 / ratio, design)
    big = ratio * n
    center = (taps.size - 1) // 2
    matrix = np.zeros((big, n))
    rows = np.arange(big)
    for k, tap in enumerate(taps):  # correlation with circular borders
        src = np.mod(rows + k - center, big)
        hit = np.mod(src - offset, ratio) == 0
        np.add.at(matrix, (rows[hit], (src[hit] - offset) // ratio), tap)
    return matrix
