"""Matrix products over many pixels, split so that each BLAS call runs on one thread.

OpenBLAS runs a GEMM on several threads once `m * n * k` reaches 4 * 65536. The iterative
baselines (CNMF, HySure) make thousands of such products of a small matrix with a wide
`(k, pixels)` one; threaded, each call waits for a second core, and on a busy 2-core CPU they
ran ~10x slower (CNMF on the 144 x 144 x 200 pair: 75 s instead of 4 s). Column blocks
below the threshold cost the same on an idle machine.
"""

import numpy as np

__all__ = ["matmul_wide", "matmul_wide_t"]

_SERIAL_GEMM = 4 * 65536


def matmul_wide(a, b):
    """`a @ b` for a small `(m, k)` `a` and a wide `(k, n)` `b`, in column blocks of `b`."""
    block = max(16, _SERIAL_GEMM // max(1, a.shape[0] * a.shape[1]))
    if block >= b.shape[1]:
        return a @ b
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    for i in range(0, b.shape[1], block):
        np.matmul(a, b[:, i : i + block], out=out[:, i : i + block])
    return out


def matmul_wide_t(a, b):
    """`a @ b.T` for wide `(m, n)` `a` and `(k, n)` `b`, summed over column blocks."""
    block = max(16, _SERIAL_GEMM // max(1, a.shape[0] * b.shape[0]))
    if block >= a.shape[1]:
        return a @ b.T
    out = np.zeros((a.shape[0], b.shape[0]), dtype=np.result_type(a, b))
    for i in range(0, a.shape[1], block):
        out += a[:, i : i + block] @ b[:, i : i + block].T
    return out
