"""Progress that suits its output (`keras_hsifusion.utils.progress`): a bar on a terminal,
plain rate-limited lines in a log, for `fuse` and `evaluate`; `khf.fuse` shows it by default
only when run interactively."""

import io
import re
import time

import numpy as np
import pytest

import keras_hsifusion as khf
from keras_hsifusion.data import raster
from keras_hsifusion.utils import progress

pytestmark = pytest.mark.backend_independent

LINE = re.compile(r"^fuse: (\d+)/(\d+) tiles \((\d+)%\), [\d.]+ s(, about [\d.]+ s left)?$")


def test_plain_lines_every_tenth_and_the_last():
    log = io.StringIO()
    bar = progress.Progress(1681, unit="tile", label="fuse", stream=log)
    assert not bar.terminal  # a StringIO is no terminal
    for done in range(1, 1682):
        bar.update(done)
    lines = log.getvalue().splitlines()
    assert len(lines) == 10, lines
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [int(m.group(3)) for m in parsed] == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert parsed[0].group(4) and not parsed[-1].group(4)  # time left, until done


def test_plain_lines_at_least_every_30_seconds(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    log = io.StringIO()
    bar = progress.Progress(1000, unit="tile", label="fuse", stream=log)
    for done in range(1, 6):  # 0.5 % of the work, 31 s apart
        clock[0] += 31.0
        bar.update(done)
    lines = log.getvalue().splitlines()
    assert [line.split(" tiles")[0] for line in lines] == [f"fuse: {i}/1000" for i in range(1, 6)]


def test_a_bar_on_a_terminal_redraws_one_line_and_ends_it():
    log = io.StringIO()
    with progress.Progress(50, unit="tile", label="fuse", stream=log, terminal=True) as bar:
        for done in range(1, 51):
            bar.update(done)
    text = log.getvalue()
    assert text.startswith("\rfuse: [") and text.endswith("\x1b[K\n") and text.count("\n") == 1
    assert "50/50 tiles (100%)" in text
    # interrupted half-way: close() ends the line, so the next message starts on its own
    log = io.StringIO()
    bar = progress.Progress(50, unit="tile", label="fuse", stream=log, terminal=True)
    bar.update(20)
    bar.close()
    bar.close()
    assert log.getvalue().endswith("\n") and log.getvalue().count("\n") == 1


def test_fuse_shows_progress_when_asked_and_when_interactive(capsys, monkeypatch):
    rng = np.random.default_rng(0)
    lr, hr = rng.random((32, 32, 5)), rng.random((128, 128, 3))
    khf.fuse(lr, hr, "bicubic", tile=16, overlap=8)  # progress=None: stderr is no terminal
    assert capsys.readouterr().err == ""
    khf.fuse(lr, hr, "bicubic", tile=16, overlap=8, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert 2 <= len(lines) <= 11 and all(LINE.match(line) for line in lines), lines
    assert lines[-1].startswith("fuse: 225/225 tiles (100%)")
    monkeypatch.setattr(progress, "is_terminal", lambda stream=None: True)
    assert progress.resolve_progress(None) is True
    assert progress.resolve_progress(False) is False


def test_heartbeat_and_evaluate_report_long_steps(tmp_path, capsys):
    log = io.StringIO()
    with progress.Heartbeat("D_lambda (10 band pairs)", stream=log, interval=0.05):
        time.sleep(0.3)
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("D_lambda (10 band pairs): still running, ")
    assert lines[-1].startswith("D_lambda (10 band pairs): done in ")
    rng = np.random.default_rng(0)
    raster.write_raster(tmp_path / "lr.h5", rng.random((8, 8, 6)))
    raster.write_raster(tmp_path / "msi.h5", rng.random((32, 32, 3)))
    raster.write_raster(tmp_path / "est.h5", rng.random((32, 32, 6)))
    args = dict(lr_hsi=tmp_path / "lr.h5", hr_msi=tmp_path / "msi.h5", block_size=8)
    from keras_hsifusion.evaluation import evaluate_files

    result = evaluate_files(tmp_path / "est.h5", progress=True, **args)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("D_lambda (15 band pairs): done in ")
    assert err[1].startswith("D_s (6 x 3 band pairs): done in ")
    assert set(result["metrics"]) == {"d_lambda", "d_s", "qnr"}
    evaluate_files(tmp_path / "est.h5", progress=False, **args)
    assert capsys.readouterr().err == ""
