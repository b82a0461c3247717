"""The shipped training recipes (`keras_hsifusion.recipes`): every preset's recipe is one,
the repository's `training/configs/` re-exports them, and `resolve` maps what `khf train`
and `python -m training.run` take (a file, a name, a repository path) to a file."""

import json
import pathlib
import runpy

import pytest
from harness import ROOT

from keras_hsifusion import recipes

pytestmark = pytest.mark.backend_independent

TINY = "hssdct_tiny_indianpines_s2_x4"


def test_every_preset_recipe_and_every_repository_config_is_shipped():
    names = recipes.list_recipes()
    assert {TINY, "msst_net_tiny_indianpines_s2_x4"} <= set(names)
    cards = sorted(ROOT.glob("keras_hsifusion/applications/*/presets/*/preset.json"))
    assert cards
    for card in cards:
        recipe = json.loads(card.read_text())["recipe"]  # training/configs/NAME.py
        assert pathlib.Path(recipe).stem == card.parent.name in names
    configs = sorted(p.stem for p in (ROOT / "training" / "configs").glob("*.py"))
    assert configs == names
    for name in names:
        config = runpy.run_path(str(ROOT / "training" / "configs" / f"{name}.py"))["CONFIG"]
        assert config == recipes.get_recipe(name) and config["name"] == name
        assert runpy.run_path(recipes.recipe_path(name))["CONFIG"] == config


def test_resolve_takes_a_file_a_name_or_a_repository_path(tmp_path, monkeypatch):
    shipped = recipes.recipe_path(TINY)
    assert pathlib.Path(shipped).parent == pathlib.Path(recipes.RECIPES_DIR)
    monkeypatch.chdir(tmp_path)  # no training/configs/ here: not a source checkout
    assert recipes.resolve(TINY) == shipped
    assert recipes.resolve(f"{TINY}.py") == shipped
    assert recipes.resolve(f"training/configs/{TINY}.py") == shipped
    mine = tmp_path / f"{TINY}.py"  # a file of that name wins over the shipped recipe
    mine.write_text("CONFIG = {}\n")
    assert recipes.resolve(f"{TINY}.py") == f"{TINY}.py"
    assert recipes.resolve(pathlib.Path(mine)) == str(mine)
    for wrong in ("hssdct_huge", f"elsewhere/{TINY}.py", "my_recipe.json"):
        with pytest.raises(FileNotFoundError, match=f"{wrong!r}.*Shipped recipes: .*{TINY}"):
            recipes.resolve(wrong)
    with pytest.raises(ValueError, match="No shipped recipe 'hssdct_huge'"):
        recipes.get_recipe("hssdct_huge")
    config = recipes.get_recipe(TINY)
    config["epochs"] = 1000  # a copy: the shipped dict is unchanged
    assert recipes.get_recipe(TINY)["epochs"] == 4
