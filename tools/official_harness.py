"""Times the official PyTorch code of the zoo's models, for `benchmarks/run.py --official`.

Research harness, not part of the `keras_hsifusion` package: it imports an official
checkout from a directory the user gives (`sys.path`), and, where `timm`/`ptflops` are not
installed, puts minimal stand-ins for the helpers the official code imports into
`sys.modules`. The official code is never shipped with this repository. Method and limits:
docs/benchmarks.md.
"""

import argparse
import os
import sys
import types

from keras_hsifusion.profiling import benchmark, count_flops, native

OFFICIAL_KINDS = ("hssdct", "msst_net")

# The released MSST-Net `Net.forward` reads 13 attributes that `Net.__init__` never creates
# (docs/differences.md, MSST-Net 1). For timing, each is aliased to the module it evidently
# means; `conv2` is read twice (spectral scale 2 and the patch-16 scale), both are C->C 3x3
# convolutions of the same cost.
_OFFICIAL_MSST_ALIASES = {
    "norm1": "norm_1",
    "conv1": "conv_1",
    "norm2": "norm_2",
    "conv2": "conv_2",
    "norm3": "norm_3",
    "conv3": "conv_3",
    "patch_embedding": "patch_embedding_16",
    "patch_unembed": "patch_unembed_16",
    "norm4_8": "norm_8",
    "conv2_8": "conv_8",
    "norm4_32": "norm_32",
    "conv2_32": "conv_32",
}


def _install_official_stand_ins():
    """Minimal stand-ins for the timm/ptflops helpers the official code imports, used only
    when those packages are absent (timm pulls a CUDA torch; neither is needed to run)."""
    import importlib.util

    import torch

    def to_2tuple(x):
        return tuple(x) if isinstance(x, (tuple, list)) else (x, x)

    class DropPath(torch.nn.Identity):  # drop_path=0 everywhere at inference
        def __init__(self, *args, **kwargs):
            super().__init__()

    def absent(name):
        # A stand-in installed by an earlier call has no __spec__ (find_spec would raise).
        return name not in sys.modules and importlib.util.find_spec(name) is None

    if absent("timm"):
        timm = types.ModuleType("timm")
        timm.layers = types.ModuleType("timm.layers")
        timm.models = types.ModuleType("timm.models")
        timm.models.layers = timm.layers
        timm.layers.trunc_normal_ = torch.nn.init.trunc_normal_
        timm.layers.to_2tuple = to_2tuple
        timm.layers.DropPath = DropPath
        sys.modules.update(
            {
                "timm": timm,
                "timm.layers": timm.layers,
                "timm.models": timm.models,
                "timm.models.layers": timm.layers,
            }
        )
    if absent("ptflops"):
        ptflops = types.ModuleType("ptflops")

        def get_model_complexity_info(*args, **kwargs):
            raise NotImplementedError("ptflops is not installed")

        ptflops.get_model_complexity_info = get_model_complexity_info
        sys.modules["ptflops"] = ptflops


def build_official(kind, path, lr_bands, msi_bands):
    """The official PyTorch network at its default configuration, imported from `path`.

    `kind` is 'hssdct' (a checkout of jemmyleee/HSSDCT: `models/hssdct.py`, `HyDCFN`) or
    'msst_net' (jx-mzc/MSST-Net: `model/net.py`, `Net`, with the attribute aliases above).
    The official code is never shipped with this package; give the directory of a checkout.
    """
    _install_official_stand_ins()
    sys.path.insert(0, os.path.abspath(path))
    if kind == "hssdct":
        from models.hssdct import HyDCFN

        net = HyDCFN(
            argparse.Namespace(
                snr=0,
                network_mode=1,
                bands=lr_bands,
                nf=96,
                gc=32,
                msi_bands=msi_bands,
                DEBUG=False,
            )
        )
    elif kind == "msst_net":
        from model.net import Net

        net = Net(
            argparse.Namespace(
                hsi_channel=lr_bands,
                msi_channel=msi_bands,
                n_feats=64,
                hsi_embed_dim=32,
                msi_embed_dim=256,
                hsi_heads=4,
                msi_heads=4,
                patch_size=16,
                hsi_res_blocks=5,
                msi_res_blocks=5,
                hsi_num_layers=4,
                msi_num_layers=4,
                ratio=8,
                device="cpu",
                hsi_device="cpu",
                msi_device="cpu",
            )
        )
        for alias, name in _OFFICIAL_MSST_ALIASES.items():
            setattr(net, alias, getattr(net, name))
    else:
        raise ValueError(f"`kind` must be one of {OFFICIAL_KINDS}. Received: {kind!r}")
    return net.eval()


def official_training_step(kind, path, net, x, y):
    """One training step of the official training script, as a callable: zero_grad, forward,
    its loss, backward, optimiser step, and `loss.item()` (which synchronises).

    HSSDCT (`train.py`, `--joint_loss 1`): SmoothL1 + 0.1 `sam_loss` + 0.1 `BandWiseMSE`
    (`trainOps.py`), Adam lr 5.5e-5, no weight decay. MSST-Net (`main.py`, `trainer.py`):
    L1, AdamW lr 1e-3, betas (0.9, 0.999), weight decay 2e-5.
    """
    import torch

    net.train()
    if kind == "hssdct":
        if "pywt" not in sys.modules:
            try:
                import pywt  # noqa: F401 - trainOps imports it for a loss the step does not use
            except ImportError:
                sys.modules["pywt"] = types.ModuleType("pywt")
        sys.path.insert(0, os.path.abspath(path))
        from trainOps import BandWiseMSE, sam_loss

        smooth_l1 = torch.nn.SmoothL1Loss()
        optimizer = torch.optim.Adam(net.parameters(), lr=5.5e-5, weight_decay=0)

        def loss_fn(out):
            return smooth_l1(out, y) + 0.1 * sam_loss(out, y) + 0.1 * BandWiseMSE(out, y)

    else:
        l1 = torch.nn.L1Loss()
        optimizer = torch.optim.AdamW(
            net.parameters(), lr=1e-3, betas=(0.9, 0.999), weight_decay=2e-5
        )

        def loss_fn(out):
            return l1(out, y)

    def step():
        optimizer.zero_grad()
        loss = loss_fn(net(*x))
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def official_worker(kind, path, size, iters=3, warmup=1, threads=None, mode="forward", log=print):
    """Times the official PyTorch forward (float32, eager, `no_grad`) or training step
    (`official_training_step`) at a named size."""
    if kind not in OFFICIAL_KINDS:
        raise ValueError(f"`kind` must be one of {OFFICIAL_KINDS}. Received: {kind!r}")
    if mode not in benchmark.MODES:
        raise ValueError(f"`mode` must be one of {benchmark.MODES}. Received: {mode!r}")
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    lr, hr = benchmark.model_sizes(kind)[size]
    row = {
        "backend": "official-torch",
        "model": kind,
        "size": size,
        "mode": mode,
        "compile": "eager",
        "dtype": "float32",
        "batch": 1,
        "allocator": benchmark.allocator_setting(),
    }
    try:
        net = build_official(kind, path, lr[-1], hr[-1])
        x = (torch.rand(1, lr[-1], *lr[:2]), torch.rand(1, hr[-1], *hr[:2]))
        if mode == "train":
            fn = official_training_step(kind, path, net, x, torch.rand(1, lr[-1], *hr[:2]))
        else:

            def fn():
                with torch.no_grad():
                    net(*x)

        native.reset_peak_memory()
        row.update(benchmark.measure(fn, warmup, iters, 0))
        # Our model is built only after the official one was measured (peak memory).
        model = benchmark.build_model(kind)
        flops = count_flops(model, {"lr_hsi": (1, *lr), "hr_msi": (1, *hr)}).total
        flops *= 3 if mode == "train" else 1
        row.update(benchmark.rates(row["median_s"], 1, hr[0] * hr[1], flops))
    except Exception as e:  # noqa: BLE001 - reported in the table, the run goes on
        row.update(ok=False, error=f"{type(e).__name__}: {str(e).splitlines()[0][:300]}")
    log(benchmark.progress_line(row))
    return row
