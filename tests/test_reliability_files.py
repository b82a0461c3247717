"""Hostile and corrupt `.keras` files: every loading path we offer (presets, `from_preset`, the
training runner's resume and `best.keras`) refuses Lambda layers and unknown objects unless
`safe_mode=False`, checks a preset's sha256 before deserialising it, and names the file when
it is truncated or corrupt (docs/reliability.md)."""

import ast
import json
import os
import pathlib
import shutil
import zipfile

import keras
import numpy as np
import pytest

import keras_hsifusion as khf
from keras_hsifusion import presets, training
from keras_hsifusion.applications import HSSDCT, FusionModel
from keras_hsifusion.utils.files import load_keras_file

PACKAGE = pathlib.Path(khf.__file__).parent


def _lambda_model():
    return keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2.0)])


def _rewrite_config(path, edit):
    """Rewrites the `config.json` of the `.keras` archive at `path` with `edit(config)`."""
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def _os_system_layer(config):
    # A layer that names `os.system`, with a command that would leave a file behind.
    config["config"]["layers"][1] = {
        "module": "os",
        "class_name": "system",
        "config": {"command": f"touch {config['sentinel']}"},
        "registered_name": None,
    }


def _os_system_function(config):
    # A Lambda layer whose function is `os.system` by name (no bytecode at all).
    config["config"]["layers"][1]["config"]["function"] = {
        "module": "os",
        "class_name": "function",
        "config": "system",
        "registered_name": "function",
    }


@keras.saving.register_keras_serializable(package="khf_test_unknown")
class _Doubler(keras.layers.Layer):
    def call(self, x):
        return 2.0 * x


def _unknown_object_model(path):
    """Saves a model with a custom layer, then forgets the layer: loaders meet an unknown
    class."""
    model = keras.Sequential([keras.Input((4,)), _Doubler()])
    model.save(path)
    return path


def _hostile_files(folder):
    """`{kind: path}` of hostile `.keras` files."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {"lambda": folder / "lambda.keras", "unknown_object": folder / "unknown.keras"}
    _lambda_model().save(out["lambda"])
    _unknown_object_model(out["unknown_object"])
    for kind, edit in (("os_system_layer", _os_system_layer),
                       ("os_system_function", _os_system_function)):  # fmt: skip
        out[kind] = folder / f"{kind}.keras"
        shutil.copyfile(out["lambda"], out[kind])
        sentinel = str(folder / f"{kind}.PWNED")

        def with_sentinel(config, edit=edit, sentinel=sentinel):
            config["sentinel"] = sentinel
            edit(config)
            del config["sentinel"]

        _rewrite_config(out[kind], with_sentinel)
    return out


@pytest.fixture
def forget_doubler():
    objects = keras.saving.get_custom_objects()
    name = "khf_test_unknown>_Doubler"
    saved = objects.pop(name)
    yield
    objects[name] = saved


# What each hostile file must raise with safe_mode=True; the Lambda is the one that
# safe_mode=False lets through (the others name code no loader will import).
REFUSED = {
    "lambda": r"deserialization of a `Lambda` layer.*safe_mode=False only if you trust",
    "unknown_object": r"Could not locate class '_Doubler'",
    "os_system_layer": r"Could not locate class 'system'",
    "os_system_function": r"Could not locate function 'system'",
}


def _preset_of(path, folder, cls_name="HSSDCT"):
    """A preset folder holding the file at `path`, with a matching sha256 and a card that
    claims a zoo model."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True)
    shutil.copyfile(path, folder / "model.keras")
    card = {"name": folder.name, "class": cls_name, "file": "model.keras",
            "sha256": presets._sha256(folder / "model.keras")}  # fmt: skip
    (folder / "preset.json").write_text(json.dumps(card))
    return folder


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_hostile_presets_are_refused_by_every_loader(kind, tmp_path, forget_doubler):
    path = _hostile_files(tmp_path / "files")[kind]
    folder = str(_preset_of(path, tmp_path / "preset"))
    loaders = {
        "khf.from_preset": lambda **kw: khf.from_preset(folder, **kw),
        "presets.load_preset": lambda **kw: presets.load_preset(folder, **kw),
        "FusionModel.from_preset": lambda **kw: FusionModel.from_preset(folder, **kw),
        "HSSDCT.from_preset": lambda **kw: HSSDCT.from_preset(folder, **kw),
        "load_keras_file": lambda **kw: load_keras_file(path, **kw),
    }
    for name, load in loaders.items():
        with pytest.raises(ValueError, match=r"Cannot load the .*\.keras") as info:
            load()
        assert info.match(REFUSED[kind]), (name, str(info.value))
    assert not list((tmp_path / "files").glob("*.PWNED"))  # no command ever ran
    if kind == "lambda":
        # The explicit opt-out loads it; the preset's card then disagrees with its class.
        model = load_keras_file(path, safe_mode=False)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(model(np.ones((1, 4)))), 2.0)
        with pytest.raises(ValueError, match="holds a Sequential, its card says HSSDCT"):
            khf.from_preset(folder, safe_mode=False)
    else:  # no code to run: refused even without safe mode
        for load in loaders.values():
            with pytest.raises(ValueError, match=REFUSED[kind]):
                load(safe_mode=False)


def test_checksum_is_verified_before_anything_is_deserialised(tmp_path, monkeypatch):
    path = _hostile_files(tmp_path / "files")["lambda"]
    folder = _preset_of(path, tmp_path / "preset")
    with open(folder / "model.keras", "ab") as f:
        f.write(b"\0")  # the file no longer matches its card

    def never(*args, **kwargs):
        raise AssertionError("deserialised before the checksum was checked")

    monkeypatch.setattr(keras.models, "load_model", never)
    monkeypatch.setattr(keras.saving, "load_model", never)
    for load in (khf.from_preset, FusionModel.from_preset, HSSDCT.from_preset):
        with pytest.raises(ValueError, match=r"model.keras' does not match its card: sha256"):
            load(str(folder), safe_mode=False)  # even when the caller trusts it


def test_preset_card_cannot_point_outside_its_folder(tmp_path):
    folder = tmp_path / "preset"
    folder.mkdir()
    (tmp_path / "elsewhere.keras").write_bytes(b"x")
    card = {"class": "HSSDCT", "file": "../elsewhere.keras", "sha256": "0" * 64}
    (folder / "preset.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match=r"names a file outside its folder: file='\.\./elsewh"):
        khf.from_preset(str(folder))


def _truncated(src, dst):
    data = pathlib.Path(src).read_bytes()
    pathlib.Path(dst).write_bytes(data[: len(data) // 2])
    return dst


def _garbled_weights(src, dst):
    # A well-formed zip whose weights file is garbage.
    with zipfile.ZipFile(src) as z:
        members = {name: z.read(name) for name in z.namelist()}
    members["model.weights.h5"] = b"not an HDF5 file" * 64
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return dst


def _empty(src, dst):
    pathlib.Path(dst).write_bytes(b"")
    return dst


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (_truncated, r"is not a \.keras archive \(\d+ bytes\): it is truncated or corrupt"),
        (_empty, r"is not a \.keras archive \(0 bytes\)"),
        (_garbled_weights, r"Cannot load the (preset|model) file '.*\.keras'"),
    ],
    ids=["truncated", "empty", "garbled_weights"],
)
def test_corrupt_presets_name_the_file(corrupt, match, tmp_path):
    good = tmp_path / "good.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(good)  # any model
    bad = corrupt(good, tmp_path / "bad.keras")
    folder = _preset_of(bad, tmp_path / "preset")  # a user's own preset, checksum included
    for load in (khf.from_preset, HSSDCT.from_preset):
        with pytest.raises(ValueError, match=match) as info:
            load(str(folder))
        assert str(folder / "model.keras") in str(info.value)
    with pytest.raises(ValueError, match=match):
        load_keras_file(bad)
    with pytest.raises(FileNotFoundError, match=r"No model file at .*missing\.keras"):
        load_keras_file(tmp_path / "missing.keras")


# A 64x64 crop, 10 bands, one step: the runner reaches its loading paths in seconds.
RUN_CONFIG = {
    "name": "hostile",
    "data": {"crop": 64, "test_size": 16, "val_size": 16, "band_step": 20, "patch_size": 16,
             "batch_size": 2, "patches_per_epoch": 2},
    "model": {"class": "MSSTNet", "n_feats": 4, "hsi_embed_dim": 4, "msi_embed_dim": 8,
              "hsi_heads": 2, "msi_heads": 2, "patch_size": 4, "hsi_res_blocks": 1,
              "msi_res_blocks": 1, "hsi_num_layers": 1, "msi_num_layers": 1,
              "reference_size": [4, 4]},
    "epochs": 2,
    "steps_per_epoch": 1,
    "tensorboard": False,
}  # fmt: skip


@pytest.mark.parametrize("kind", ["lambda", "truncated"])
def test_runner_refuses_a_hostile_or_corrupt_checkpoint_on_resume(kind, tmp_path, monkeypatch):
    monkeypatch.setattr(training.runner, "baseline_metrics", lambda *a, **k: {})
    out = tmp_path / "run"
    out.mkdir()
    # A folder that says one epoch is done, with a last.keras someone else put there.
    hostile = _hostile_files(tmp_path / "files")["lambda"]
    if kind == "truncated":
        hostile = _truncated(hostile, tmp_path / "files" / "truncated.keras")
    shutil.copyfile(hostile, out / "last.keras")
    (out / "state.json").write_text(json.dumps({"epoch": 1, "history": [{"epoch": 0}]}))
    match = REFUSED["lambda"] if kind == "lambda" else "is not a .keras archive"
    with pytest.raises(ValueError, match=r"Cannot load the checkpoint|The checkpoint") as info:
        training.run_experiment(RUN_CONFIG, out, resume=True, verbose=0, log=lambda m: None)
    assert info.match(match) and str(out / "last.keras") in str(info.value)
    assert not (out / ".lock").exists()  # the lock is released on the error


def test_runner_loads_best_keras_in_safe_mode(tmp_path, monkeypatch):
    # The run ends by loading best.keras for the test region: through the same checked
    # loader, in safe mode unless the caller opts out.
    monkeypatch.setattr(training.runner, "baseline_metrics", lambda *a, **k: {})
    calls = []
    load = training.runner.load_keras_file

    def spy(path, safe_mode=True, **kwargs):
        calls.append((os.path.basename(path), safe_mode))
        return load(path, safe_mode, **kwargs)

    monkeypatch.setattr(training.runner, "load_keras_file", spy)
    config = {**RUN_CONFIG, "epochs": 1}
    results = training.run_experiment(config, tmp_path / "a", verbose=0, log=lambda m: None)
    assert calls == [("best.keras", True)] and results["test"]["psnr"] > 0
    training.run_experiment(
        config, tmp_path / "a", resume=True, verbose=0, log=lambda m: None, safe_mode=False
    )
    assert calls[1:] == [("last.keras", False), ("best.keras", False)]


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def test_nothing_in_the_package_unpickles_or_disables_safe_mode():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel = path.relative_to(PACKAGE.parent)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n.split(".")[0] in ("pickle", "cloudpickle", "dill", "joblib", "marshal")
                       for n in names):  # fmt: skip
                    found.append(f"{rel}:{node.lineno} imports {names}")
        for call in _calls(tree):
            func = ast.unparse(call.func)
            if func.endswith(("torch.load", "enable_unsafe_deserialization", "pickle.load")):
                found.append(f"{rel}:{call.lineno} calls {func}")
            for kw in call.keywords:
                value = kw.value.value if isinstance(kw.value, ast.Constant) else None
                if (kw.arg, value) in (("allow_pickle", True), ("safe_mode", False)):
                    found.append(f"{rel}:{call.lineno} passes {kw.arg}={value}")
    assert not found, found
