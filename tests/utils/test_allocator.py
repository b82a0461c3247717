"""glibc malloc tuning (keras_hsifusion.utils.runtime): what it changes, and its opt-out."""

import json
import os
import subprocess
import sys

import pytest

from keras_hsifusion.utils import runtime
from keras_hsifusion.utils.runtime import MMAP_THRESHOLD, malloc_env, tune_malloc

# numpy only: runs once, under the first backend of `make test` (tests/conftest.py)
pytestmark = pytest.mark.backend_independent

# Allocates one 100 MiB block and reports where glibc took it from (mallinfo2: `hblkhd` =
# bytes in mmapped blocks, `arena` = bytes of the heap).
_PROBE = """
import ctypes, importlib.util, json, sys
# The module file alone: importing the package would import Keras and a backend (slow).
spec = importlib.util.spec_from_file_location("runtime", sys.argv[2])
runtime = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runtime)
applied = runtime.tune_malloc() if sys.argv[1].startswith("tune") else None
libc = ctypes.CDLL("libc.so.6")
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split())]
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
def where():
    block = libc.malloc(ctypes.c_size_t(100 << 20))
    info = libc.mallinfo2()
    return {"mmapped": info.hblkhd, "heap": info.arena}
if sys.argv[1].endswith("block"):  # one block inside `tuned_malloc`, one after it
    with runtime.tuned_malloc():
        inside = where()
    print(json.dumps({"inside": inside, "after": where()}))
else:
    print(json.dumps({"applied": applied, **where()}))
"""


def _probe(mode, **env):
    child = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    child.pop("KHF_MALLOC_TUNING", None)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode, runtime.__file__],
        env={**child, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_large_blocks_come_from_the_heap_once_tuned():
    default = _probe("none")
    assert default["mmapped"] >= 100 << 20  # glibc's default: a fresh mmap per large block
    tuned = _probe("tune")
    assert tuned["applied"] is True
    assert tuned["mmapped"] < 100 << 20 and tuned["heap"] >= 100 << 20
    # The environment variables of `malloc_env` give a new process the same setting.
    from_env = _probe("none", **malloc_env())
    assert from_env["mmapped"] < 100 << 20 and from_env["heap"] >= 100 << 20
    # The opt-out keeps glibc's defaults.
    off = _probe("tune", KHF_MALLOC_TUNING="0")
    assert off["applied"] is False and off["mmapped"] >= 100 << 20


def test_tuned_malloc_lasts_for_its_block_unless_the_process_was_tuned():
    block = _probe("block")
    assert block["inside"]["mmapped"] < 100 << 20 <= block["inside"]["heap"]
    # After it, a large block is mmapped again (and the free heap was trimmed).
    assert block["after"]["mmapped"] >= 100 << 20
    assert block["after"]["heap"] < block["inside"]["heap"] + (100 << 20)
    tuned = _probe("tune-block")  # `khf`'s processes: tuned for good
    assert tuned["after"]["mmapped"] < 100 << 20
    off = _probe("block", KHF_MALLOC_TUNING="0")
    assert off["inside"]["mmapped"] >= 100 << 20


def test_malloc_env_and_argument_checks():
    assert malloc_env() == {
        "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
        "MALLOC_TRIM_THRESHOLD_": str(2**31 - 1),
    }
    for bad in (0, -5, 2**31, 1.5, True, "1"):
        with pytest.raises(ValueError, match="mmap_threshold"):
            tune_malloc(mmap_threshold=bad)
        with pytest.raises(ValueError, match="trim_threshold"):
            malloc_env(trim_threshold=bad)
