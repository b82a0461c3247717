"""Progress reports that suit where they go: a bar on a terminal, plain lines in a log.

`Progress(total, unit, label)` is updated with the number of steps done. On a terminal
(`stream.isatty()`, or a Jupyter/IPython kernel) it redraws one bar line in place, at most
ten times a second; anywhere else (a file, a pipe, a CI log) it writes a plain line each
time another 10 % is done or 30 s have passed since the last line, and one at the end, so
a log gets about a dozen lines whatever the number of steps. `close()` ends an unfinished
bar line, so that what is printed next (an error, "interrupted") starts on its own line.
`Heartbeat(label)` does the same for work without steps: it reports the elapsed time from
a background thread until closed.

`resolve_progress(progress)` is the rule of `progress=None` in the library: on when stderr
is a terminal (an interactive session), off otherwise.

Examples:
>>> import io
>>> log = io.StringIO()
>>> with Progress(4, unit="tile", label="fuse", stream=log) as bar:
...     for done in range(1, 5):
...         bar.update(done)
>>> for line in log.getvalue().splitlines():
...     print(line.split(",")[0])
fuse: 1/4 tiles (25%)
fuse: 2/4 tiles (50%)
fuse: 3/4 tiles (75%)
fuse: 4/4 tiles (100%)
"""

import math
import sys
import threading
import time

__all__ = ["Heartbeat", "Progress", "is_terminal", "resolve_progress"]

# Plain (non-terminal) output: a line per this share of the steps, or after this many seconds.
LINE_FRACTION = 0.1
LINE_SECONDS = 30.0
# Terminal output: redraw the bar at most this often (seconds).
REDRAW_SECONDS = 0.1
BAR_WIDTH = 30


def is_terminal(stream=None):
    """Whether `stream` (default `sys.stderr`) shows a redrawn line as one line: a terminal,
    or the output of an IPython/Jupyter kernel."""
    stream = sys.stderr if stream is None else stream
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # closed or not a file
        return False
    return type(stream).__module__.split(".")[0] == "ipykernel"


def resolve_progress(progress, stream=None):
    """`progress` as a bool: `None` means "on when run interactively" (`is_terminal`)."""
    return is_terminal(stream) if progress is None else bool(progress)


def _seconds(s):
    if s < 60:
        return f"{s:.1f} s"
    minutes, s = divmod(int(round(s)), 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class Progress:
    """Progress over `total` steps: a bar on a terminal, rate-limited plain lines elsewhere.

    Args:
        total: number of steps (positive).
        unit: name of one step, e.g. `"tile"` (an `s` is added for the count).
        label: what is progressing, printed first (e.g. `"fuse"`).
        stream: where to write. Defaults to `sys.stderr`.
        terminal: None (detect with `is_terminal`), True (a bar) or False (plain lines).
    """

    def __init__(self, total, unit="step", label="", stream=None, terminal=None):
        if isinstance(total, bool) or not isinstance(total, int) or total < 1:
            raise ValueError(f"`total` must be a positive int. Received: total={total!r}")
        self.total, self.unit, self.label = total, unit, label
        self.stream = sys.stderr if stream is None else stream
        self.terminal = is_terminal(self.stream) if terminal is None else bool(terminal)
        self.done = 0
        self.start = time.monotonic()
        self._last_time = self.start
        self._last_done = 0
        self._open_line = False
        self._closed = False

    def _prefix(self):
        return f"{self.label}: " if self.label else ""

    def _status(self, now):
        elapsed = now - self.start
        text = f"{self.done}/{self.total} {self.unit}s ({100 * self.done // self.total}%)"
        text += f", {_seconds(elapsed)}"
        if 0 < self.done < self.total:
            text += f", about {_seconds(elapsed * (self.total - self.done) / self.done)} left"
        return text

    def _write(self, text):
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe must not stop the work
            pass

    def update(self, done):
        """Records that `done` steps (cumulative) are finished."""
        self.done = min(max(int(done), 0), self.total)
        now = time.monotonic()
        final = self.done == self.total
        if self.terminal:
            if final or not self._open_line or now - self._last_time >= REDRAW_SECONDS:
                filled = BAR_WIDTH * self.done // self.total
                bar = ("=" * filled + ">" + " " * BAR_WIDTH)[:BAR_WIDTH]
                self._write(f"\r{self._prefix()}[{bar}] {self._status(now)}\x1b[K")
                self._open_line, self._last_time = True, now
            if final:
                self.close()
            return
        step = max(1, math.ceil(LINE_FRACTION * self.total))
        crossed = self.done // step > self._last_done // step
        late = now - self._last_time >= LINE_SECONDS and self.done != self._last_done
        if crossed or late or (final and self._last_done != self.total):
            self._write(f"{self._prefix()}{self._status(now)}\n")
            self._last_time, self._last_done = now, self.done
        if final:
            self._closed = True

    def close(self):
        """Ends the bar's line (if one is open); idempotent."""
        if self._open_line:
            self._write("\n")
            self._open_line = False
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Heartbeat:
    """Reports the elapsed time of one long step without sub-steps, from a daemon thread.

    On a terminal the line `label ... 12.0 s` is redrawn every second; elsewhere a line is
    written every `LINE_SECONDS`. Use it as a context manager around the work.

    Args:
        label: what is running, e.g. `"D_lambda (19900 band pairs)"`.
        stream: where to write. Defaults to `sys.stderr`.
        terminal: None (detect), True or False.
        interval: seconds between plain lines (default `LINE_SECONDS`).
    """

    def __init__(self, label, stream=None, terminal=None, interval=None):
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.terminal = is_terminal(self.stream) if terminal is None else bool(terminal)
        self.interval = (1.0 if self.terminal else LINE_SECONDS) if interval is None else interval
        self._stop = threading.Event()
        self._thread = None
        self.start = None

    def _write(self, text):
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def _run(self):
        while not self._stop.wait(self.interval):
            elapsed = _seconds(time.monotonic() - self.start)
            if self.terminal:
                self._write(f"\r{self.label} ... {elapsed}\x1b[K")
            else:
                self._write(f"{self.label}: still running, {elapsed}\n")

    def __enter__(self):
        self.start = time.monotonic()
        if self.terminal:
            self._write(f"{self.label} ...")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self._stop.set()
        self._thread.join()
        elapsed = _seconds(time.monotonic() - self.start)
        if self.terminal:
            self._write(f"\r{self.label} ... {elapsed}\x1b[K\n")
        elif exc_type is None:
            self._write(f"{self.label}: done in {elapsed}\n")
        return False
