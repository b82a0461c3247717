"""Official HSSDCT (`HyDCFN` / `YDCFN`) state dicts -> `HSSDCT`."""

import numpy as np

from keras_hsifusion.applications.hssdct.hssdct import HSSDCT
from keras_hsifusion.convert import register_converter

UNUSED_OFFICIAL_KEYS = {
    "norm.weight": "LayerNorm built by YDCFN but never called in its forward",
    "norm.bias": "LayerNorm built by YDCFN but never called in its forward",
}


def _map_sscl(m, layer, prefix):
    m.conv1x1_as_dense(layer.dfe_conv1, prefix + ".qv.conv.0")
    m.conv2d(layer.dfe_conv2, prefix + ".qv.conv.2")
    m.conv1x1_as_dense(layer.dfe_conv3, prefix + ".qv.conv.4")
    m.conv1x1_as_dense(layer.dfe_linear, prefix + ".qv.linear")
    m.dense(layer.proj, prefix + ".proj")
    m.assign(layer.spatial_kernel, prefix + ".spatial_linear.weight", np.transpose)
    m.assign(layer.spatial_bias, prefix + ".spatial_linear.bias")
    m.dense(layer.pos_proj, prefix + ".pos.pos_proj")
    for i, (norm, fc) in enumerate(zip(layer.pos_norms, layer.pos_fcs), start=1):
        m.layer_norm(norm, f"{prefix}.pos.pos{i}.0")
        m.dense(fc, f"{prefix}.pos.pos{i}.2")


def _map_hierarchical_block(m, block, prefix):
    m.layer_norm(block.norm1, prefix + ".norm1")
    m.layer_norm(block.norm2, prefix + ".norm2")
    _map_sscl(m, block.correlation, prefix + ".correlation")
    m.dense(block.fc1, prefix + ".mlp.fc1")
    m.dense(block.fc2, prefix + ".mlp.fc2")


def _map_window_block(m, block, prefix):
    m.assign(block.gamma, prefix + ".gamma")
    m.layer_norm(block.norm1, prefix + ".norm1")
    m.assign(block.relative_position_bias_table, prefix + ".attn.relative_position_bias_table")
    m.ignore(
        prefix + ".attn.relative_position_index",
        "buffer of constant indices; recomputed from the window size",
    )
    m.ignore(prefix + ".attn_mask", "buffer; the official window is never shifted")
    m.dense(block.qkv, prefix + ".attn.qkv")
    m.dense(block.proj, prefix + ".attn.proj")
    m.layer_norm(block.norm2, prefix + ".norm2")
    m.dense(block.fc1, prefix + ".mlp.fc1")
    m.dense(block.fc2, prefix + ".mlp.fc2")


def _map_dense_block(m, layer, prefix, map_block):
    """The four blocks (`swin1`..`swin4`) and 1x1 adjusts of an HDRTB or DenseWindowBlock."""
    for k, (block, adjust) in enumerate(zip(layer.blocks, layer.adjusts), start=1):
        map_block(m, block, f"{prefix}.swin{k}")
        m.conv1x1_as_dense(adjust, f"{prefix}.adjust{k}")


def _map_hdrtb(m, layer, prefix):
    _map_dense_block(m, layer, prefix, _map_hierarchical_block)


def _map_dense_window_block(m, layer, prefix):
    _map_dense_block(m, layer, prefix, _map_window_block)


@register_converter(HSSDCT)
def convert_hssdct(model, m):
    """Maps `HyDCFN.state_dict()` (keys `decoder.*`) or `YDCFN.state_dict()` onto `model`."""
    if any(k.startswith("decoder.") for k in m._sd):
        m._prefix = "decoder."
    m.conv2d(model.hsi_conv_first, "hsiconv1")
    m.conv2d(model.hsi_conv_last, "hsiconvlast")
    for i, block in enumerate(model.hsi_blocks):
        _map_hdrtb(m, block, f"hsifeat.{i}")
    m.conv2d(model.msi_conv_first, "msiconv1")
    m.conv2d(model.msi_conv_last, "msiconvlast")
    for i, block in enumerate(model.msi_blocks):
        _map_hdrtb(m, block, f"msifeat.{i}")
    m.conv2d(model.fuse_conv, "conv_fuse.0")
    _map_dense_window_block(m, model.final_block, "final_blk.0")
    m.conv2d(model.last_conv, "last", bias=False)
    for key, why in UNUSED_OFFICIAL_KEYS.items():
        m.ignore(key, why)
