"""The model zoo."""

from keras_hsifusion.applications.hssdct import HSSDCT
from keras_hsifusion.applications.msst_net import MBAE, MPAE, MSSTNet

__all__ = ["HSSDCT", "MBAE", "MPAE", "MSSTNet"]
