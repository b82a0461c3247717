"""Atomic file writes: a temporary file in the same folder, then `os.replace`."""

import contextlib
import json
import os
import tempfile

__all__ = ["atomic_path", "atomic_write_json"]


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path next to `path`; renames it to `path` if the block succeeds.

    An interruption or error leaves `path` as it was (absent or the previous version).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(
        prefix=".tmp-", suffix=suffix or os.path.splitext(path)[1], dir=folder
    )
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_json(path, value):
    """Writes `value` as indented JSON to `path` atomically."""
    with atomic_path(path, ".json") as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=1)
