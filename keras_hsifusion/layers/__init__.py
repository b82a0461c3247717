"""Reusable, serializable layers of the zoo's models."""

from keras_hsifusion.layers.embeddings import BandEmbedding, PatchEmbedding, PositionEmbedding2D
from keras_hsifusion.layers.spat import SpaT
from keras_hsifusion.layers.spet import SpeT
