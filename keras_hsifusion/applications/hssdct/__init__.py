from keras_hsifusion.applications.hssdct import convert as _convert  # noqa: F401 (registers)
from keras_hsifusion.applications.hssdct.hssdct import HSSDCT

__all__ = ["HSSDCT"]
