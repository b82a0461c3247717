"""glibc `malloc` tuning for processes that run these models on a CPU.

With glibc's defaults, a block larger than the mmap threshold (128 KiB, raised dynamically up
to 32 MiB) is served by `mmap` and handed back to the kernel with `munmap` when it is freed;
freed heap memory above 128 KiB is trimmed back too. The models' activations are tens to
hundreds of MiB (HSSDCT at the official size: 256 x 256 x 172 float32 = 45 MiB per tensor),
so every call maps fresh pages and page-faults them in again: on a 2-core CPU this costs a
third of a forward pass (docs/benchmarks.md, "Allocator"). Raising both thresholds keeps
freed blocks in the heap for the next call, at the price of a resident set that stays at its
peak instead of shrinking between calls.

`tune_malloc()` applies it in the running process (`mallopt` through `ctypes`; glibc only,
a no-op elsewhere). The `khf` command line, `python -m training.run` and the benchmark
runner's `--allocator tuned` rows use it; set `KHF_MALLOC_TUNING=0` to keep glibc's defaults.
Library users can call it at the start of their own scripts, or set the same values for a
process before it starts with `malloc_env()` (`MALLOC_MMAP_THRESHOLD_`,
`MALLOC_TRIM_THRESHOLD_`).
"""

import ctypes
import ctypes.util
import os
import sys

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "malloc_env", "tune_malloc"]

# Blocks below 1 GiB come from the heap; the heap is trimmed only above 2 GiB of free top.
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = (1 << 31) - 1
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
_ENV_NAMES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def _check_threshold(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise ValueError(
            f"`{name}` must be an integer number of bytes in [1, 2**31). Received: {name}={value!r}"
        )


def malloc_env(mmap_threshold=MMAP_THRESHOLD, trim_threshold=TRIM_THRESHOLD):
    """The environment variables that give a new process the same settings as `tune_malloc`."""
    _check_threshold("mmap_threshold", mmap_threshold)
    _check_threshold("trim_threshold", trim_threshold)
    return dict(zip(_ENV_NAMES, (str(mmap_threshold), str(trim_threshold))))


def tune_malloc(mmap_threshold=MMAP_THRESHOLD, trim_threshold=TRIM_THRESHOLD):
    """Raises glibc's mmap and trim thresholds in this process (see the module docstring).

    Args:
        mmap_threshold: bytes; smaller blocks are served from the heap. Default 1 GiB.
        trim_threshold: bytes of free memory at the top of the heap kept for reuse.
            Default 2 GiB.

    Returns:
        True when both were applied; False where there is no glibc (macOS, Windows, musl),
        when `KHF_MALLOC_TUNING=0` is set, or when glibc refuses a value.
    """
    _check_threshold("mmap_threshold", mmap_threshold)
    _check_threshold("trim_threshold", trim_threshold)
    if os.environ.get("KHF_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    if not hasattr(libc, "gnu_get_libc_version"):
        return False  # mallopt of another C library (musl has none; others differ)
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, mmap_threshold) == 1
    return mallopt(_M_TRIM_THRESHOLD, trim_threshold) == 1 and ok
