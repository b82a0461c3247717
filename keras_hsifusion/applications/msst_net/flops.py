"""FLOP formulas of MSST-Net's private layers (`_layers`), for `count_flops`.

`FORMULAS` (`{layer class: formula(layer, input_shapes, output_shapes) -> (flops,
elementwise)}`) goes to the zoo registry with the model (`ModelSpec.flops`), where
`keras_hsifusion.profiling.count_flops` finds it. The public layers MSST-Net builds (SpeT,
SpaT, the embeddings, `Interpolate`, Keras convolutions) have generic formulas in
`keras_hsifusion.profiling.layer_flops`.
"""

import math

from keras_hsifusion.applications.msst_net import _layers


def no_flops(layer, inputs, outputs):
    # Padding, cropping, pixel shuffle and the pretraining masks (identity at inference) only
    # move or zero data.
    return 0, 0


def branch_weights_flops(layer, inputs, outputs):
    # One multiply per branch and the adds between them (the weight normalisation is scalar).
    return 0, math.prod(int(s) for s in outputs[0]) * (2 * len(inputs) - 1)


FORMULAS = {
    _layers.MSSTPad: no_flops,
    _layers.MSSTCrop: no_flops,
    _layers.PixelShuffle: no_flops,
    _layers.RandomChannelMask: no_flops,
    _layers.RandomTokenMask: no_flops,
    _layers.BranchWeights: branch_weights_flops,
}
