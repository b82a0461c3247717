"""Official MSST-Net state dicts (`Net`, `MBAEViT`, `MPAEViT`) -> Keras models.

Official scale names map to ours in the official order: band scales `_1, _2, _3` (widths
`D, D/2, 2D`) keep their numbers; patch scales `_16, _8, _32` (sizes `p, p/2, 2p`, named after
the default `p = 16`) become `_1, _2, _3`.
"""

import numpy as np

from keras_hsifusion.applications.msst_net.msst_net import MSSTNet
from keras_hsifusion.applications.msst_net.pretrainers import MBAE, MPAE
from keras_hsifusion.convert import register_converter
from keras_hsifusion.layers.spat import SpaT
from keras_hsifusion.layers.spet import SpeT

_POSITION_WHY = (
    "learned position embedding; the official code draws a fresh random one on every call "
    "(docs/differences.md, MSST-Net 2): zero reproduces the official output without that noise"
)
_BRANCH_WHY = (
    "trainable branch weight; the official a, b, c, a1, b1, c1 are constants 1 that are not in "
    "the state dict (docs/differences.md, MSST-Net 3)"
)


def _stack(mapper, layer, prefix):
    """SpeTL / SpaTL: blocks.{i}.{0: norm1, 1: attention, 2: norm2, 3: ConvMlp}."""
    for i in range(layer.num_layers):
        p = f"{prefix}blocks.{i}."
        mapper.layer_norm(layer.norm1[i], p + "0")
        mapper.dense(layer.qkv[i], p + "1.qkv")
        mapper.dense(layer.proj[i], p + "1.proj")
        mapper.layer_norm(layer.norm2[i], p + "2")
        mapper.conv1x1_as_dense(layer.fc1[i], p + "3.mlp.0")
        mapper.conv1x1_as_dense(layer.fc2[i], p + "3.mlp.2")


def _position(mapper, layer):
    if layer is not None:
        mapper.keras_only_weight(layer.embedding, _POSITION_WHY, value=np.float32(0.0))


@register_converter(SpeT)
def _convert_spet(model, mapper):
    _stack(mapper, model, "")


@register_converter(SpaT)
def _convert_spat(model, mapper):
    _stack(mapper, model, "")


def _transformer_scale(mapper, model, branch, k, official, embed_fn):
    """Embedding, transformer stack and norm of scale `k` of the `"spectral"` (band
    embeddings) or `"spatial"` (patch embeddings) branch; `official` names the scale there."""
    g = model.get_layer
    embedding = "band_embedding" if branch == "spectral" else "patch_embedding"
    emb = g(f"{embedding}_{k}")
    embed_fn(emb.embed, f"{embedding}_{official}.embed")
    mapper.layer_norm(emb.norm, f"{embedding}_{official}.norm")
    _position(mapper, emb.position)
    _stack(mapper, g(f"{branch}_layers_{k}"), f"{branch}_layers_{official}.")
    mapper.layer_norm(g(f"{branch}_norm_{k}"), f"norm_{official}")


@register_converter(MSSTNet)
def _convert_msst_net(model, mapper):
    g = model.get_layer
    mapper.conv2d(g("shallow1"), "shallow1")
    mapper.conv2d(g("shallow2"), "shallow2")
    for branch, count in (("RB1", model.hsi_res_blocks), ("RB2", model.msi_res_blocks)):
        for i in range(count):
            for conv in ("conv1", "conv2"):
                mapper.conv2d(g(f"{branch.lower()}_{i}_{conv}"), f"{branch}.{i}.{conv}")
    mapper.conv2d(g("conv_tail1"), "conv_tail1")
    mapper.conv2d(g("conv_tail2"), "conv_tail2")
    for k in (1, 2, 3):
        _transformer_scale(mapper, model, "spectral", k, k, mapper.conv1x1_as_dense)
        mapper.conv1x1_as_dense(g(f"band_unembed_{k}"), f"band_unembed_{k}")
        mapper.conv2d(g(f"spectral_conv_{k}"), f"conv_{k}")
    for k, official in zip((1, 2, 3), (16, 8, 32), strict=True):
        _transformer_scale(mapper, model, "spatial", k, official, mapper.conv2d)
        mapper.conv_transpose2d(g(f"patch_unembed_{k}"), f"patch_unembed_{official}")
        mapper.conv2d(g(f"spatial_conv_{k}"), f"conv_{official}", bias=False)
    mapper.conv2d(g("upsample_conv1"), "upsample.0")
    mapper.conv2d(g("upsample_conv2"), "upsample.2")
    mapper.conv2d(g("upsample_conv3"), "upsample.4")
    mapper.conv2d(g("recon_conv1"), "recon.0")
    mapper.conv2d(g("recon_conv2"), "recon.2")
    for name in ("spectral_weights", "spatial_weights"):
        for w in g(name).branch_weights:
            mapper.keras_only_weight(w, _BRANCH_WHY, value=np.float32(1.0))


def _autoencoder(model, mapper, embed_conv, unembed):
    g = model.get_layer
    emb = g("embed")
    embed_conv(emb.embed, "embed.embed")
    mapper.layer_norm(emb.norm, "embed.norm")
    _position(mapper, emb.position)
    _stack(mapper, g("encoder"), "encoder.")
    mapper.layer_norm(g("norm1"), "norm1")
    mapper.dense(g("proj"), "proj")
    if model.position_embedding is not None:
        _position(mapper, g("decoder_position"))
    _stack(mapper, g("decoder"), "decoder.")
    mapper.dense(g("reconstruction"), "restruction")
    mapper.layer_norm(g("norm2"), "norm2")
    unembed(g("unembed"), "unembed")


@register_converter(MBAE)
def _convert_mbae(model, mapper):
    _autoencoder(model, mapper, mapper.conv1x1_as_dense, mapper.conv1x1_as_dense)


@register_converter(MPAE)
def _convert_mpae(model, mapper):
    _autoencoder(model, mapper, mapper.conv2d, mapper.conv_transpose2d)
