"""An exclusive lock on a run folder, so that two runs never write into the same one.

`RunLock(folder)` holds the file `folder/.lock` for the life of a run. It records who holds
it (`pid`, `host`, `started`, `argv`) so that the run refused can say which process to wait
for or to stop.

How a stale lock (left by a run that died, SIGKILL included) is told from a live one:

- On POSIX systems the file is locked with `fcntl.flock`. The kernel releases such a lock
  when the process holding it exits, however it exits, so a `.lock` file left behind by a
  dead run is simply not locked: the next run locks it, rewrites it and goes on. No PID is
  guessed and a reused PID cannot fool it. On a shared network filesystem this relies on
  the filesystem's lock support (NFSv4 and Lustre have it); where there is none, the run
  goes on with a warning saying that a second run would not be refused.
- Where `fcntl` does not exist (Windows), the file is created exclusively (`O_EXCL`) and
  holds the PID: a lock whose holder runs on this host and no longer exists is taken over;
  one held from another host is refused with its host and PID named (delete `.lock` by
  hand if that run is known to be dead).
"""

import json
import os
import socket
import sys
import time
import warnings

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ["LOCK_FILE", "RunLock", "RunLockedError"]

LOCK_FILE = ".lock"


class RunLockedError(RuntimeError):
    """Raised when another live process holds the lock of a run folder.

    Attributes:
        folder: the run folder. holder: the holder's record (`pid`, `host`, `started`,
            `argv`), or `{}` when it could not be read.
    """

    def __init__(self, folder, holder):
        self.folder, self.holder = folder, holder
        who = f"PID {holder.get('pid', '?')} on host {holder.get('host', '?')}"
        since = holder.get("started")
        since = f" since {since}" if since else ""
        super().__init__(
            f"The run folder {folder!r} is in use by another run ({who}{since}). Two runs "
            "must not write into one folder: wait for that run, stop it, or choose another "
            "output folder."
        )


def _record():
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": list(sys.argv),
    }


def _read(path_or_fd):
    try:
        if isinstance(path_or_fd, int):
            os.lseek(path_or_fd, 0, os.SEEK_SET)
            text = os.read(path_or_fd, 1 << 16).decode("utf-8")
        else:
            with open(path_or_fd, encoding="utf-8") as f:
                text = f.read()
        holder = json.loads(text)
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(fd, record):
    data = json.dumps(record, indent=1).encode("utf-8")
    os.lseek(fd, 0, os.SEEK_SET)
    os.ftruncate(fd, 0)
    os.write(fd, data)
    os.fsync(fd)


def _alive(pid):
    if os.name == "nt":  # os.kill would terminate the process there
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() != 87  # ERROR_INVALID_PARAMETER: no such process
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return not ok or code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but belongs to someone else (or cannot be told): keep it
    return True


class RunLock:
    """Exclusive lock on a run folder (a context manager); see the module docstring.

    Args:
        folder: the run folder (created if needed).

    Raises:
        RunLockedError: from `acquire` (or `with`), naming the folder, the host and the PID
            of the live run that holds it.

    Examples:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder, RunLock(folder):
    ...     try:
    ...         RunLock(folder).acquire()
    ...     except RunLockedError:
    ...         print("a second run on the same folder is refused")
    a second run on the same folder is refused
    """

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        self.path = os.path.join(self.folder, LOCK_FILE)
        self._fd = None

    @property
    def held(self):
        return self._fd is not None

    def acquire(self):
        if self._fd is not None:
            return self
        os.makedirs(self.folder, exist_ok=True)
        self._fd = self._acquire_flock() if fcntl is not None else self._acquire_exclusive()
        return self

    def _acquire_flock(self):
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(fd)
                os.close(fd)
                raise RunLockedError(self.folder, holder) from None
            except OSError as e:  # a filesystem without locks: run, but say so
                warnings.warn(
                    f"Cannot lock {self.path!r} ({e}): this filesystem has no file locks, so "
                    "a second run on this folder would not be refused.",
                    stacklevel=3,
                )
                _write(fd, _record())
                return fd
            # The holder we waited on may have removed the file after we opened it: then we
            # locked an orphan inode, and a third run could lock a new file. Start over.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                _write(fd, _record())
                return fd
            os.close(fd)

    def _acquire_exclusive(self):
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = _read(self.path)
                pid = holder.get("pid")
                ours = holder.get("host") == socket.gethostname()
                if ours and isinstance(pid, int) and not _alive(pid):
                    os.remove(self.path)  # stale: its process is gone
                    continue
                raise RunLockedError(self.folder, holder) from None
            _write(fd, _record())
            return fd
        raise RunLockedError(self.folder, _read(self.path))

    def release(self):
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.remove(self.path)  # before unlocking: nobody else can hold it meanwhile
        except FileNotFoundError:
            pass
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            pass  # never locked (a filesystem without locks); closing is enough
        finally:
            os.close(fd)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False

    def __del__(self):
        try:
            self.release()
        except Exception:
            pass
