"""Nothing lost: a training run killed with SIGKILL at random points and resumed each time
ends with every epoch, a loadable `best.keras` and one `log.csv` row per epoch; two runs on
one folder are refused (docs/reliability.md)."""

import csv
import errno
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys

import keras
import pytest
from harness import MSST_CONFIG_TINY

from keras_hsifusion import training
from keras_hsifusion.training import callbacks
from keras_hsifusion.utils.files import load_keras_file
from keras_hsifusion.utils.lock import LOCK_FILE, RunLock, RunLockedError

EPOCHS = 3
CONFIG = {
    "name": "killed",
    # A 64x64 crop of Indian Pines (test: 16 columns, validation: 16 rows), 10 bands.
    "data": {
        "crop": 64,
        "test_size": 16,
        "val_size": 16,
        "val_axis": 0,
        "band_step": 20,
        "patch_size": 16,
        "batch_size": 2,
        "patches_per_epoch": 2,
    },
    "model": {**MSST_CONFIG_TINY, "n_feats": 4},
    "epochs": EPOCHS,
    "steps_per_epoch": 1,
    "tensorboard": False,
}

# The child process: one segment of the run, killed by SIGKILL (sent to itself, so exactly
# where the test asks) at the n-th time it reaches the given point:
#   step   - fetching a training batch (inside an epoch, between or during steps);
#   save   - writing a .keras checkpoint: half the temporary file is on disk;
#   commit - state.json of an epoch committed, its checkpoints not yet renamed into place;
#   log    - before log.csv is (re)written (at the end of an epoch, or while recovering);
#   timer  - a random delay after the first batch (anywhere: step, validation, writing);
#   none   - not killed.
# The classical baselines of results.json are skipped: they are not what is tested here.
DRIVER = r"""
import json, os, random, signal, sys, threading
import keras
from keras_hsifusion import training
from keras_hsifusion.data import patches
from keras_hsifusion.training import callbacks, runner

config, out, mode, n, resume = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
count = [0]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def reached():
    count[0] += 1
    return count[0] == n

get_item = patches.FusionPatches.__getitem__
def fetch(self, index):
    if mode == "step" and reached():
        die()
    if mode == "timer" and count[0] == 0:
        count[0] = 1
        threading.Timer(n / 1000.0, die).start()
    return get_item(self, index)
patches.FusionPatches.__getitem__ = fetch

save = keras.Model.save
def save_and_die(self, path, *args, **kwargs):
    save(self, path, *args, **kwargs)
    if mode == "save" and reached():
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.truncate(size // 2)
        die()
keras.Model.save = save_and_die

replace = os.replace
def replace_or_die(src, dst):
    if mode == "commit" and os.path.basename(src).startswith(".pending-") and reached():
        die()
    return replace(src, dst)
os.replace = replace_or_die

write_log = callbacks.write_log
def write_log_or_die(*args):
    if mode == "log" and reached():
        die()
    return write_log(*args)
callbacks.write_log = write_log_or_die

runner.baseline_metrics = lambda *args, **kwargs: {}
training.run_experiment(config, out, resume=resume == "resume", verbose=0, log=print)
print("FINISHED")
"""


def _segment(tmp_path, mode, n, resume):
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    if env["KERAS_BACKEND"] == "jax":  # compile once for all segments (`make test` sets these)
        env.setdefault("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax_cache"))
        env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
        env.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    args = [str(tmp_path / "config.json"), str(tmp_path / "run"), mode, str(n), resume]
    return subprocess.run(
        [sys.executable, "-c", DRIVER, *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# The n of each kill point: a kill there costs at most one epoch of progress, so a second
# kill point is always reached before the run could end.
KILL_POINTS = {"step": (1, 2), "save": (1, 2), "commit": (1, 1), "log": (1, 1)}


def _plan(rng):
    # Two kills at two different points; the second may be a random timer instead.
    first = rng.choice(sorted(KILL_POINTS))
    second = rng.choice([m for m in sorted(KILL_POINTS) if m != first] + ["timer"])
    return [
        (m, rng.randint(0, 2500) if m == "timer" else rng.randint(*KILL_POINTS[m]))
        for m in (first, second)
    ]


def test_sigkilled_run_resumes_to_the_end_with_every_epoch_once(tmp_path):
    # not `random`: the tests seed it (conftest), and every run would kill at the same points
    seed = int(os.environ.get("KHF_KILL_SEED", random.SystemRandom().randrange(10**6)))
    plan = _plan(random.Random(seed))
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    out = tmp_path / "run"
    history = []
    for i, (mode, n) in enumerate(plan + [("none", 0)]):
        proc = _segment(tmp_path, mode, n, "resume" if i else "fresh")
        history.append((mode, n, proc.returncode))
        context = f"seed {seed}, segments {history}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        if mode == "none":
            assert proc.returncode == 0 and "FINISHED" in proc.stdout, context
        elif mode == "timer":  # may fire after the run has ended
            assert proc.returncode in (-signal.SIGKILL, 0), context
        else:
            assert proc.returncode == -signal.SIGKILL, context
        if proc.returncode == -signal.SIGKILL and os.path.isfile(out / "state.json"):
            # What a kill leaves behind is consistent after recovery alone (on a copy: the
            # next segment recovers the run folder itself).
            copy = tmp_path / f"copy{i}"
            shutil.copytree(out, copy)
            state = callbacks.recover_run(copy)
            assert len(_rows(copy / "log.csv")) == state["epoch"] <= EPOCHS, context
            load_keras_file(copy / "last.keras")
    state = training.read_state(out)
    assert state["epoch"] == EPOCHS, history
    rows = _rows(out / "log.csv")
    assert [r["epoch"] for r in rows] == [str(e) for e in range(EPOCHS)], (seed, history)
    assert [h["epoch"] for h in state["history"]] == list(range(EPOCHS))
    results = json.loads((out / "results.json").read_text())
    assert results["epochs"] == EPOCHS and results["best_epoch"] == state["best_epoch"]
    best = load_keras_file(out / "best.keras", compile=False)
    assert type(best).__name__ == "MSSTNet"
    last = load_keras_file(out / "last.keras")
    # The optimiser has taken one step per epoch: no epoch was trained twice or skipped
    # in the checkpoint that the run finished from.
    assert int(keras.ops.convert_to_numpy(last.optimizer.iterations)) == EPOCHS
    psnrs = [float(r["val_psnr"]) for r in rows]
    assert results["val"]["val_psnr"] == max(psnrs)
    left = [p for p in os.listdir(out) if p.startswith((".tmp-", ".pending-", LOCK_FILE))]
    assert not left, left
    print(f"kill seed {seed}: (point, n, exit status) of each segment {history}")


def test_recovery_rolls_a_committed_epoch_forward_and_an_uncommitted_one_back(tmp_path):
    # The two halves of the commit, without a process: an epoch whose state.json is written
    # gets its pending checkpoints renamed; the pending files of an unfinished epoch go.
    out = tmp_path
    for name in (".pending-2-last.keras", ".pending-3-last.keras", ".tmp-abc.keras"):
        (out / name).write_bytes(name.encode())
    (out / "last.keras").write_bytes(b"epoch 1")
    state = {"epoch": 2, "pending": ["last.keras"], "history": [{"epoch": 0, "loss": 1.0},
             {"epoch": 1, "loss": 0.5}]}  # fmt: skip
    (out / "state.json").write_text(json.dumps(state))
    (out / "log.csv").write_text("epoch,loss\n0,1.0\n1,0.5\n2,0.25\n2,0.25\n")
    assert callbacks.recover_run(out)["epoch"] == 2
    assert (out / "last.keras").read_bytes() == b".pending-2-last.keras"
    assert sorted(os.listdir(out)) == ["last.keras", "log.csv", "state.json"]
    assert [r["loss"] for r in _rows(out / "log.csv")] == ["1.0", "0.5"]
    assert callbacks.recover_run(out)["epoch"] == 2  # idempotent
    (out / "state.json").write_text("{broken")
    with pytest.raises(ValueError, match=r"Cannot read the run state .*state.json"):
        callbacks.recover_run(out)


def test_second_run_on_one_folder_is_refused(tmp_path):
    out = tmp_path / "run"
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    with RunLock(out):
        with pytest.raises(RunLockedError) as info:
            training.run_experiment(str(tmp_path / "config.json"), out, verbose=0)
    message = str(info.value)
    assert repr(str(out)) in message and f"PID {os.getpid()}" in message
    assert socket.gethostname() in message
    assert sorted(os.listdir(out)) == []  # refused before writing anything; lock released


_HOLDER = r"""
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("lock", sys.argv[1])
lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock)
held = lock.RunLock(sys.argv[2]).acquire()
print("LOCKED", flush=True)
time.sleep(120)
"""


def test_lock_held_by_another_process_then_taken_over_when_it_dies(tmp_path):
    # The first run is another process (it loads only the lock module: no Keras import).
    from keras_hsifusion.utils import lock as lock_module

    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, lock_module.__file__, str(out)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        with pytest.raises(RunLockedError, match=rf"PID {holder.pid} on host "):
            RunLock(out).acquire()
        record = json.loads((out / LOCK_FILE).read_text())
        assert record["pid"] == holder.pid and record["host"] == socket.gethostname()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The dead holder's .lock file is still there, but nobody holds it: taken over.
    assert (out / LOCK_FILE).is_file()
    with RunLock(out) as taken:
        assert taken.held and json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (out / LOCK_FILE).exists()


def test_lock_without_flock_uses_the_pid_and_host(tmp_path, monkeypatch):
    # Where fcntl does not exist (Windows): an exclusive file holding the PID.
    from keras_hsifusion.utils import lock as lock_module

    monkeypatch.setattr(lock_module, "fcntl", None)
    out = tmp_path / "run"
    with RunLock(out):
        with pytest.raises(RunLockedError, match=rf"PID {os.getpid()} on host "):
            RunLock(out).acquire()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    record = {"pid": int(dead.stdout), "host": socket.gethostname()}
    (out / LOCK_FILE).write_text(json.dumps(record))
    with RunLock(out):  # its process has exited: a stale lock, taken over
        assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()
    (out / LOCK_FILE).write_text(json.dumps({**record, "host": "another-host"}))
    with pytest.raises(RunLockedError, match=rf"PID {record['pid']} on host another-host"):
        RunLock(out).acquire()  # cannot be checked from here: refused


def test_lock_on_a_filesystem_without_locks_warns(tmp_path, monkeypatch):
    from keras_hsifusion.utils import lock as lock_module

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock_module.fcntl, "flock", no_locks)
    with pytest.warns(UserWarning, match="no file locks, so a second run .* not be refused"):
        with RunLock(tmp_path) as held:
            assert held.held and (tmp_path / LOCK_FILE).is_file()
    assert not (tmp_path / LOCK_FILE).exists()
