"""FLOP formulas of MSST-Net's private layers (`_layers`), registered with `count_flops`.

The public layers MSST-Net builds (SpeT, SpaT, the embeddings, `Interpolate`, Keras
convolutions) have generic formulas in `keras_hsifusion.profiling.layer_flops`.
"""

from keras_hsifusion.applications.msst_net import _layers
from keras_hsifusion.profiling.flops import no_flops, num_elements, register_flops

# Padding, cropping, pixel shuffle and the pretraining masks (identity at inference) only
# move or zero data.
register_flops(
    _layers.MSSTPad,
    _layers.MSSTCrop,
    _layers.PixelShuffle,
    _layers.RandomChannelMask,
    _layers.RandomTokenMask,
)(no_flops)


@register_flops(_layers.BranchWeights)
def _branch_weights(layer, inputs, outputs):
    # One multiply per branch and the adds between them (the weight normalisation is scalar).
    return 0, num_elements(outputs[0]) * (2 * len(inputs) - 1)
