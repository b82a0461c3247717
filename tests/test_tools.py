"""The research tools outside the package (tools/): the official-code timing harness of
`benchmarks/run.py --official` and the derivation of the shipped spectral tables."""

import sys

import numpy as np
import pytest
from harness import ROOT

from keras_hsifusion.applications.registry import model_names
from keras_hsifusion.ops.resize import upsample_matmul_flops
from tools import derive_tables, official_harness  # repository root: pyproject's pythonpath

# No Keras backend (the official harness runs torch itself): runs once, under the first
# backend of `make test` (tests/conftest.py).
pytestmark = pytest.mark.backend_independent

_FAKE_HSSDCT = """
import torch

class HyDCFN(torch.nn.Module):  # the official signature: HyDCFN(args)(lr_hsi, hr_msi), NCHW
    def __init__(self, args):
        super().__init__()
        self.args = args
        self.up = torch.nn.Upsample(scale_factor=4)

    def forward(self, lr_hsi, hr_msi):
        return self.up(lr_hsi) + hr_msi.mean(1, keepdim=True)
"""


def test_official_stand_ins_only_fill_missing_packages():
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in ("timm", "ptflops")}
    try:
        official_harness._install_official_stand_ins()
        from timm.layers import DropPath, to_2tuple, trunc_normal_  # noqa: F401
        from timm.models.layers import trunc_normal_ as again

        assert again is trunc_normal_ and to_2tuple(3) == (3, 3) and to_2tuple([1, 2]) == (1, 2)
        x = np.ones((2, 3), "float32")
        import torch

        assert torch.equal(DropPath(0.1)(torch.from_numpy(x)), torch.from_numpy(x))
        with pytest.raises(NotImplementedError):
            sys.modules["ptflops"].get_model_complexity_info(None, None)
        # A second official network in the same worker (a second size) keeps the stand-ins.
        stand_in = sys.modules["timm"]
        official_harness._install_official_stand_ins()
        assert sys.modules["timm"] is stand_in
    finally:
        for name in [k for k in sys.modules if k.split(".")[0] in ("timm", "ptflops")]:
            del sys.modules[name]
        sys.modules.update(saved)


def test_official_worker_times_a_checkout(tmp_path):
    # A stand-in checkout with the official layout (models/hssdct.py, HyDCFN): the worker
    # imports it from the directory, times it and adds our model's FLOPs at the same size.
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "hssdct.py").write_text(_FAKE_HSSDCT)
    saved_path = list(sys.path)
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in ("models", "timm")}
    try:
        lines = []
        row = official_harness.official_worker(
            "hssdct", str(tmp_path), "small", iters=1, log=lines.append
        )
        assert row["ok"], row.get("error")
        assert (row["backend"], row["model"], row["size"]) == ("official-torch", "hssdct", "small")
        # our HSSDCT at the small size: the official count plus our upsampling's matmuls
        up = upsample_matmul_flops((1, 16, 16, 172), (1, 64, 64, 172), "bicubic")
        assert row["gflops_per_step"] == pytest.approx(38.310646016 + up / 1e9)
        assert len(lines) == 1 and "official-torch" in lines[0]
        with pytest.raises(ValueError, match="must be one of"):
            official_harness.official_worker("resnet", str(tmp_path), "small")
    finally:
        sys.path[:] = saved_path
        for name in [k for k in sys.modules if k.split(".")[0] in ("models", "timm", "ptflops")]:
            del sys.modules[name]
        sys.modules.update(saved)


def test_official_kinds_are_registered_models():
    assert set(official_harness.OFFICIAL_KINDS) <= set(model_names())
    assert set(official_harness._OFFICIAL_MSST_ALIASES.values()) >= {"norm_1", "conv_32"}


def test_derived_indian_pines_bands_match_the_shipped_table():
    pytest.importorskip("spectral")
    shipped = np.load(ROOT / "keras_hsifusion" / "data" / "indian_pines_bands.npz")
    derived = derive_tables.derive_indian_pines_bands()
    assert set(derived) == set(shipped.files)
    for key in shipped.files:
        np.testing.assert_array_equal(derived[key], shipped[key])
