"""Reusable, serializable layers of the zoo's models."""

from keras_hsifusion.layers.dense_swin import DenseWindowBlock, WindowTransformerBlock
from keras_hsifusion.layers.embeddings import BandEmbedding, PatchEmbedding, PositionEmbedding2D
from keras_hsifusion.layers.global_skip import GlobalSkip, ResidualGate
from keras_hsifusion.layers.hdrtb import HDRTB, HierarchicalTransformerBlock
from keras_hsifusion.layers.interpolate import Interpolate
from keras_hsifusion.layers.spat import SpaT
from keras_hsifusion.layers.spet import SpeT
from keras_hsifusion.layers.sscl import SSCL

__all__ = [
    "HDRTB",
    "SSCL",
    "BandEmbedding",
    "DenseWindowBlock",
    "GlobalSkip",
    "HierarchicalTransformerBlock",
    "Interpolate",
    "PatchEmbedding",
    "PositionEmbedding2D",
    "ResidualGate",
    "SpaT",
    "SpeT",
    "WindowTransformerBlock",
]
