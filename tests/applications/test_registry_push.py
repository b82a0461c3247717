"""Push, not pull: a model folder hands its FLOP formulas and presets folder to the registry
(`ModelSpec.flops`, `ModelSpec.presets_dir`); `count_flops` and `presets` find them there, and
a preset card is read from disk once."""

import json

import keras
import pytest

from keras_hsifusion import presets
from keras_hsifusion.applications import registry
from keras_hsifusion.applications.registry import ModelSpec, register_model
from keras_hsifusion.profiling import count_flops


class _Doubler(keras.layers.Layer):
    def call(self, x):
        return 2.0 * x


class _Tiny(keras.Model):
    pass


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_SPECS", dict(registry._SPECS))
    monkeypatch.setattr(presets, "_PRESET_DIRS", list(presets._PRESET_DIRS))


def _card(folder, name, **extra):
    (folder / name).mkdir(parents=True)
    card = {"name": name, "class": "HSSDCT", "sha256": "0" * 64, **extra}
    (folder / name / presets.CARD_FILE).write_text(json.dumps(card), encoding="utf-8")
    return folder / name


def test_a_model_folder_pushes_its_flop_formula_and_presets(tmp_path, clean_registry):
    x = keras.Input((4, 5, 3))
    model = keras.Model(x, _Doubler()(x))
    assert count_flops(model, (1, 4, 5, 3)).elementwise == 0  # no formula yet: uncounted
    _card(tmp_path, "tiny_pushed_x4")
    register_model(
        ModelSpec(
            name="tiny_pushed",
            cls=_Tiny,
            flops={_Doubler: lambda layer, inputs, outputs: (0, 7)},
            presets_dir=str(tmp_path),
        )
    )
    assert registry.flop_formulas()[_Doubler](None, [], []) == (0, 7)
    assert count_flops(model, (1, 4, 5, 3)).elementwise == 7
    assert presets.shipped_presets()["tiny_pushed_x4"] == str(tmp_path / "tiny_pushed_x4")
    assert presets.find_preset("tiny_pushed_x4") == str(tmp_path / "tiny_pushed_x4")
    assert presets.load_card("tiny_pushed_x4")["name"] == "tiny_pushed_x4"
    # The shipped presets are still there, next to the pushed one.
    assert {"hssdct_indianpines_s2_x4", "tiny_pushed_x4"} <= set(presets.shipped_presets())


def test_flop_formulas_must_map_layer_classes(clean_registry):
    with pytest.raises(TypeError, match="`flops` must map layer classes"):
        register_model(ModelSpec(name="bad", cls=_Tiny, flops={"Dense": lambda *a: (0, 0)}))
    assert "bad" not in registry.model_specs()


def test_a_card_is_read_once_until_its_file_changes(tmp_path, monkeypatch):
    folder = _card(tmp_path, "mine", description="first")
    reads = []
    load = json.load
    monkeypatch.setattr(json, "load", lambda f, **kw: reads.append(f.name) or load(f, **kw))
    first = presets.load_card(str(folder))
    first["description"] = "changed by the caller"  # a copy: the cache keeps the file's
    assert presets.load_card(str(folder))["description"] == "first"
    assert presets.find_preset(str(folder)) == str(folder)
    assert len(reads) == 1
    (folder / presets.CARD_FILE).write_text(
        json.dumps({"class": "HSSDCT", "sha256": "1" * 64, "description": "second, longer"}),
        encoding="utf-8",
    )
    assert presets.load_card(str(folder))["description"] == "second, longer"
    assert len(reads) == 2
    assert presets.find_preset(str(tmp_path / "nowhere")) is None
