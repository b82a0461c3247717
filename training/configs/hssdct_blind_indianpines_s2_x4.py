"""Recipe `hssdct_blind_indianpines_s2_x4`, shipped in the package:
`keras_hsifusion/recipes/hssdct_blind_indianpines_s2_x4.py` (its docstring describes it;
`khf train hssdct_blind_indianpines_s2_x4` runs it from an installed wheel too).

This file keeps the repository path working:
    python -m training.run training/configs/hssdct_blind_indianpines_s2_x4.py
"""

from keras_hsifusion.recipes.hssdct_blind_indianpines_s2_x4 import CONFIG

__all__ = ["CONFIG"]
