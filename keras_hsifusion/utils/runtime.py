"""Run-time settings of a process that runs the models: threads, allocator, compilation cache,
compiled or eager steps. One low-level module, so that the command line, the training runner,
the benchmarks and library users set them the same way.

Nothing is imported at module level besides the standard library (Keras and the backend
framework are imported inside the function that needs them), so a command can apply the
allocator setting first, and a subprocess can load this file alone.

- **Allocator** (`tune_malloc`, `malloc_env`). With glibc's defaults, a block larger than the
  mmap threshold (128 KiB, raised dynamically up to 32 MiB) is served by `mmap` and handed
  back to the kernel with `munmap` when it is freed; freed heap memory above 128 KiB is
  trimmed back too. The models' activations are tens to hundreds of MiB (HSSDCT at the
  official size: 256 x 256 x 172 float32 = 45 MiB per tensor), so every call maps fresh pages
  and page-faults them in again: on a 2-core CPU this costs a third of a forward pass
  (docs/benchmarks.md, "Allocator"). Raising both thresholds keeps freed blocks in the heap
  for the next call, at the price of a resident set that stays at its peak instead of
  shrinking between calls. `tune_malloc()` applies it in the running process (`mallopt`
  through `ctypes`; glibc only, a no-op elsewhere); the `khf` command line, `python -m
  training.run` and the benchmark runner's `--allocator tuned` rows use it; set
  `KHF_MALLOC_TUNING=0` to keep glibc's defaults. `malloc_env()` gives a new process the same
  values (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`). `tuned_malloc()` applies it
  for one block only (what `fuse` does around its tiles, so that library calls get it too:
  2048^2 `poly_detail_injection` on torch, 19.2 s -> 10.5 s, docs/fuse.md), then sets glibc
  back to where its dynamic thresholds settle and returns the free heap to the kernel.
- **Threads** (`set_threads`): the intra-op threads of the backend's CPU runtime.
- **Compilation cache** (`enable_compilation_cache`): JAX's compiled programs kept on disk.
- **Compiled or eager steps** (`resolve_jit_compile`, `resolve_run_eagerly`): what the
  configs' `"auto"` means for `keras.Model.compile` on the active backend.
"""

import contextlib
import ctypes
import ctypes.util
import functools
import os
import sys
import threading

__all__ = [
    "GRAPH_MIN_STEPS",
    "MMAP_THRESHOLD",
    "TRIM_THRESHOLD",
    "enable_compilation_cache",
    "malloc_env",
    "resolve_jit_compile",
    "resolve_run_eagerly",
    "set_threads",
    "tune_malloc",
    "tuned_malloc",
]


def _backend():
    import keras

    return keras.backend.backend()


# --------------------------------------------------------------------------------------------
# Allocator.


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


_M_MMAP_THRESHOLD_CEILING = 32 << 20  # where glibc's dynamic mmap threshold stops (64-bit)
_STATE = {"tuned": False, "depth": 0}
_LOCK = threading.Lock()


def _glibc():
    """glibc with `mallopt`/`malloc_trim` typed, or None (opted out, not glibc)."""
    if os.environ.get("KHF_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return None
    return _load_glibc()


@functools.cache
def _load_glibc():  # once: `find_library` runs `ldconfig -p` in a subprocess
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt, trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        return None
    if not hasattr(libc, "gnu_get_libc_version"):
        return None  # mallopt of another C library (musl has none; others differ)
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    trim.argtypes, trim.restype = (ctypes.c_size_t,), ctypes.c_int
    return libc


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
    libc = _glibc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold) == 1
    ok = libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold) == 1 and ok
    _STATE["tuned"] = _STATE["tuned"] or ok
    return ok


@contextlib.contextmanager
def tuned_malloc():
    """`tune_malloc()` for the duration of the block (re-entrant, thread-safe), then glibc's
    thresholds where its dynamic ones settle (mmap above 32 MiB, trim above 64 MiB) and
    `malloc_trim(0)`; a process tuned for good (`tune_malloc`, the `khf` command) stays
    tuned. Allocate what outlives the block (an output) before entering it.

    Examples:
    >>> import numpy as np
    >>> with tuned_malloc():
    ...     total = sum(float(np.ones(2**20).sum()) for _ in range(3))
    >>> total
    3145728.0
    """
    libc = _glibc()
    if libc is None:
        yield
        return
    with _LOCK:
        _STATE["depth"] += 1
        if _STATE["depth"] == 1 and not _STATE["tuned"]:
            libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    try:
        yield
    finally:
        with _LOCK:
            _STATE["depth"] -= 1
            if _STATE["depth"] == 0 and not _STATE["tuned"]:
                libc.mallopt(_M_MMAP_THRESHOLD, _M_MMAP_THRESHOLD_CEILING)
                libc.mallopt(_M_TRIM_THRESHOLD, 2 * _M_MMAP_THRESHOLD_CEILING)
                libc.malloc_trim(0)


# --------------------------------------------------------------------------------------------
# Threads and the compilation cache.


def set_threads(n):
    """Pins intra-op threads of the active backend's CPU runtime where it allows it."""
    if not n:
        return
    name = _backend()
    if name == "torch":
        import torch

        torch.set_num_threads(int(n))
    elif name == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(n))
        except RuntimeError:
            pass


def enable_compilation_cache(path=None):
    """Keeps JAX's compiled XLA programs on disk, so that a resumed or repeated run (`khf
    train --resume`, the same model again) loads them instead of compiling for minutes.

    JAX only (TensorFlow's XLA has no persistent cache; torch.compile keeps its own). Used
    where the process is ours (`khf`, `python -m training.run`). `path` defaults to
    `$JAX_COMPILATION_CACHE_DIR`, else `$XDG_CACHE_HOME/keras_hsifusion/jax` (`~/.cache/...`);
    `KHF_COMPILATION_CACHE=0` turns it off.

    Returns:
        the cache folder, or None when not enabled (another backend, or turned off).
    """
    if _backend() != "jax" or os.environ.get("KHF_COMPILATION_CACHE", "1") == "0":
        return None
    import jax

    if path is None:
        path = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if path is None:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(cache, "keras_hsifusion", "jax")
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", os.fspath(path))
    return os.fspath(path)


# --------------------------------------------------------------------------------------------
# Compiled or eager steps.


def resolve_jit_compile(value="auto"):
    """`jit_compile` for `compile`: `"auto"` is True on JAX only (see `training.config`)."""
    if value == "auto":
        return _backend() == "jax"
    return bool(value)


# TensorFlow: fewest optimiser steps for which tracing the step into a graph (without XLA)
# pays for itself. Measured on a 2-core CPU at the small benchmark size of both zoo models:
# the traced step is 4-5x faster than eager, and tracing costs what about 22 eager steps
# save (docs/benchmarks.md, "Training step").
GRAPH_MIN_STEPS = 32


def resolve_run_eagerly(value="auto", steps=None):
    """`run_eagerly` for `compile`. `"auto"`: on TensorFlow, eager only for a stage of fewer
    than `GRAPH_MIN_STEPS` optimiser steps (`steps`; None: a long run), else a `tf.function`
    graph; False on the other backends (`training.config`)."""
    if value == "auto":
        if _backend() != "tensorflow":
            return False
        return steps is not None and steps < GRAPH_MIN_STEPS
    return bool(value)
