"""`fuse`'s default tiles of classical methods never plan more memory than is available."""

import importlib

import numpy as np
import pytest
from harness import assert_close

import keras_hsifusion as khf
from keras_hsifusion.inference.methods import resolve_method

fuse_module = importlib.import_module("keras_hsifusion.inference.fuse")

# A 160^2 x 6 scene: its float32 output is 614400 bytes.
LR_SHAPE, SCALE, OUTPUT = (40, 40, 6), 4, 160 * 160 * 6 * 4


def scene():
    rng = np.random.default_rng(0)
    return rng.random(LR_SHAPE, dtype=np.float32), rng.random((160, 160, 3), dtype=np.float32)


def budget(monkeypatch, available):
    monkeypatch.setattr(fuse_module, "_available_memory", lambda: available)


def default_plan(out_in_memory=True):
    m = resolve_method("bicubic")
    return fuse_module._plan(m, (160, 160), 6, SCALE, None, None, in_memory=out_in_memory)


def test_one_pass_when_the_measured_working_memory_fits(monkeypatch):
    factor = fuse_module._work_factor(resolve_method("bicubic"))
    assert factor >= 4  # the one-pass rule's old assumption, which TensorFlow overran
    budget(monkeypatch, int(factor * OUTPUT / fuse_module.MEMORY_SHARE) + 1)
    assert default_plan().tile is None
    budget(monkeypatch, int(factor * OUTPUT / fuse_module.MEMORY_SHARE) - 1)
    assert default_plan().tile is not None


def test_a_small_budget_chooses_tiles_that_fit_and_the_result_is_the_one_pass_one(monkeypatch):
    lr, hr = scene()
    one_pass = khf.fuse(lr, hr, "bicubic")  # the real budget: one pass
    # 2.0 MB usable: one pass needs 2.8-4 MB (by backend), tiles of 128 3-4.4 MB, of 64
    # 1.4-1.6 MB.
    budget(monkeypatch, int(2.0e6 / fuse_module.MEMORY_SHARE))
    plan = default_plan()
    # Bicubic is local: tiles of at most 64 overlapping by twice its halo (2 x 3 LR pixels),
    # balanced over the scene (4 tiles of 60 cover 160 as 4 of 64 would).
    assert plan.tile == (60, 60) and plan.overlap == (24, 24) and len(plan) == 16
    m, pixel = resolve_method("bicubic"), 6 * 4
    rows = plan.max_tile_shape()
    need = OUTPUT + rows[0] * 160 * pixel + fuse_module._work_factor(m) * rows[0] * rows[1] * pixel
    assert need <= 2.0e6
    tiled = khf.fuse(lr, hr, "bicubic")
    assert_close(tiled, one_pass, atol=1e-5)  # a local method is reassembled exactly
    # Writing to a target frees the output's share: tiles at least as large.
    assert default_plan(out_in_memory=False).tile[0] >= plan.tile[0]


def test_an_output_that_cannot_fit_is_refused_not_tiled_into_an_oom(monkeypatch):
    lr, hr = scene()
    budget(monkeypatch, OUTPUT // 2)
    with pytest.raises(MemoryError, match=r"out="):
        khf.fuse(lr, hr, "bicubic")


def test_local_methods_are_tiled_past_one_tile_even_when_one_pass_fits(monkeypatch):
    budget(monkeypatch, 10**12)
    monkeypatch.setattr(fuse_module, "CLASSICAL_TILE", 64)
    assert default_plan().tile == (60, 60)  # bicubic: tiles are exact, faster and smaller
    m = resolve_method("gsa")  # not local: one pass whenever it fits
    assert fuse_module._plan(m, (160, 160), 6, SCALE, None, None).tile is None
    small = fuse_module._plan(resolve_method("bicubic"), (64, 64), 6, SCALE, None, None)
    assert small.tile is None  # a scene of one tile
