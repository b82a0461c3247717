"""MSST-Net (Ma et al., Information Fusion 2023) and its MBAE/MPAE pretrainers."""

from keras_hsifusion.applications.msst_net import convert  # noqa: F401  (registers converters)
from keras_hsifusion.applications.msst_net.msst_net import MSSTNet
from keras_hsifusion.applications.msst_net.pretrainers import MBAE, MPAE

__all__ = ["MBAE", "MPAE", "MSSTNet"]
