"""The shipped training recipes: one module per experiment, each defining `CONFIG`.

A recipe is a plain dict (`keras_hsifusion.training.validate_config` lists its keys) in a
module named after the experiment, e.g. `keras_hsifusion.recipes.hssdct_indianpines_s2_x4`,
the recipe of the shipped preset of that name. They ship in the wheel, so `khf train NAME`
works from an installed package; in a source checkout `training/configs/NAME.py` re-exports
the same `CONFIG` (the path that `python -m training.run` and the preset cards' `recipe`
name).

Examples:

>>> from keras_hsifusion import recipes
>>> "hssdct_tiny_indianpines_s2_x4" in recipes.list_recipes()
True
>>> recipes.get_recipe("hssdct_tiny_indianpines_s2_x4")["model"]["class"]
'HSSDCT'
"""

import copy
import importlib
import os

__all__ = ["RECIPES_DIR", "get_recipe", "list_recipes", "recipe_path", "resolve"]

RECIPES_DIR = os.path.dirname(os.path.abspath(__file__))


def list_recipes():
    """The names of the shipped recipes, sorted."""
    return sorted(
        name[:-3]
        for name in os.listdir(RECIPES_DIR)
        if name.endswith(".py") and not name.startswith("_")
    )


def _check_name(name):
    names = list_recipes()
    if name not in names:
        raise ValueError(f"No shipped recipe {name!r}. Shipped recipes: {names}")
    return name


def recipe_path(name):
    """The file of the shipped recipe `name` (what `training.load_config` reads)."""
    return os.path.join(RECIPES_DIR, _check_name(name) + ".py")


def get_recipe(name):
    """A copy of the `CONFIG` dict of the shipped recipe `name` (not yet validated)."""
    module = importlib.import_module(f"{__name__}.{_check_name(name)}")
    return copy.deepcopy(module.CONFIG)


def resolve(config):
    """The recipe file that `config` names, for `khf train` and `python -m training.run`.

    Args:
        config: a path to a recipe file (`.py` defining `CONFIG`, or `.json`); or the name of
            a shipped recipe (`list_recipes()`, with or without `.py`); or the repository
            path of one, `training/configs/NAME.py`, which resolves to the shipped recipe
            when no such file exists (outside a source checkout: the preset cards'
            `recipe` field).

    Returns:
        the path of an existing file.

    Raises:
        FileNotFoundError: naming `config` and the shipped recipes when it is neither.
    """
    config = os.fspath(config)
    if os.path.isfile(config):
        return config
    parts = os.path.normpath(config).split(os.sep)
    name = parts[-1][:-3] if parts[-1].endswith(".py") else parts[-1]
    repository_path = parts[-3:-1] == ["training", "configs"]
    if (len(parts) == 1 or repository_path) and name in list_recipes():
        return recipe_path(name)
    raise FileNotFoundError(
        f"No recipe file or shipped recipe {config!r}. Shipped recipes: {list_recipes()}"
    )
