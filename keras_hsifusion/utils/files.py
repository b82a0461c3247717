"""Atomic file writes (a temporary file in the same folder, then `os.replace`) and the one
checked way the package loads `.keras` files."""

import contextlib
import json
import os
import tempfile
import zipfile

__all__ = ["atomic_path", "atomic_write_json", "load_keras_file"]


def _fsync(path, directory=False):
    # Data on disk before the rename, the rename on disk after it: a power cut then leaves
    # the old file or the new one, never an empty new one (SIGKILL alone cannot lose data
    # the kernel already has). Not every platform can open a folder.
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path next to `path`; renames it to `path` if the block succeeds.

    The temporary file (`.tmp-*` in the same folder, so the rename is atomic) is flushed to
    disk before the rename. An interruption or error, SIGKILL included, leaves `path` as it
    was (absent or the previous version), never a truncated one; an interrupted process may
    leave a `.tmp-*` file behind, which nothing reads.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(
        prefix=".tmp-", suffix=suffix or os.path.splitext(path)[1], dir=folder
    )
    os.close(fd)
    try:
        yield tmp
        _fsync(tmp)
        if os.path.exists(tmp):  # mkstemp makes 0600; give the file the usual umask mode
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
        _fsync(folder, directory=True)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_json(path, value):
    """Writes `value` as indented JSON to `path` atomically."""
    with atomic_path(path, ".json") as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=1)


def load_keras_file(path, safe_mode=True, compile=True, what="model file"):
    """Loads a `.keras` archive with `keras.models.load_model`, or raises an error naming it.

    Every loading path of the package goes through here (presets, the training runner's
    resume and `best.keras`). Safe mode (the default) refuses archives that would run Python
    code when deserialised (a `Lambda` layer, a Python lambda anywhere in a config) and Keras
    refuses classes that are neither Keras' own nor registered (an unknown custom object, a
    function of an arbitrary module); pass `safe_mode=False` only for files you trust.
    Weights are read from HDF5 inside the archive; nothing is unpickled.

    Args:
        path: path of a `.keras` file (the zip format of Keras 3; legacy `.h5` files are not
            accepted here).
        safe_mode: passed to `keras.models.load_model`. Defaults to True.
        compile: passed to `keras.models.load_model`. Defaults to True.
        what: how the file is called in the messages (e.g. `"checkpoint"`).

    Returns:
        the model.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: naming `path`, for a truncated or corrupt archive, a refused object
            (Lambda in safe mode, unknown class) or any other failure to deserialise.
    """
    import keras

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No {what} at {path!r}.")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"The {what} {path!r} is not a .keras archive ({os.path.getsize(path)} bytes): it "
            "is truncated or corrupt, or not a Keras 3 model file."
        )
    try:
        return keras.models.load_model(path, compile=compile, safe_mode=safe_mode)
    except Exception as e:  # Keras raises several types for a bad archive
        hint = ""
        if safe_mode and "safe_mode" in str(e):
            hint = (
                " It was refused because loading it would run Python code; pass "
                "safe_mode=False only if you trust where the file comes from."
            )
        raise ValueError(f"Cannot load the {what} {path!r}: {type(e).__name__}: {e}{hint}") from e
