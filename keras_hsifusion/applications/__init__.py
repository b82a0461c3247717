"""The model zoo: every model is a `FusionModel` in its own folder, found through `registry`."""

from keras_hsifusion.applications.fusion_model import FusionModel
from keras_hsifusion.applications.hssdct import HSSDCT
from keras_hsifusion.applications.msst_net import MBAE, MPAE, MSSTNet
from keras_hsifusion.applications.registry import get_model_spec, model_names, register_model

__all__ = [
    "HSSDCT",
    "MBAE",
    "MPAE",
    "FusionModel",
    "MSSTNet",
    "get_model_spec",
    "model_names",
    "register_model",
]
