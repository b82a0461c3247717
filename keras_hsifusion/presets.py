"""Pretrained presets: shipped with the package (registered by the zoo), or in a folder.

A preset is a folder with `model.keras` (the model, not compiled) and its card
`preset.json`: model class and arguments, data protocol (band centres, MSI sensor and bands,
scale, input normalisation), training recipe, provenance, the file's sha256, parameters,
FLOPs and held-out test metrics next to the classical baselines. Shipped presets live in each
model's folder (`applications/<model>/presets/<name>/`), which registers that folder here
(`register_presets`, through its `ModelSpec`); a user's own are written by
`FusionModel.save_to_preset` and loaded from their path. A card is read from disk once and
kept until its file changes.

Every load checks the sha256 of `model.keras` against the card before deserialising it, and
loads with Keras' `safe_mode=True` unless told otherwise.

Examples:
>>> import keras_hsifusion as khf
>>> sorted(khf.list_presets())
['hssdct_indianpines_s2_x4', 'msst_net_indianpines_s2_x4']
>>> model = khf.from_preset("hssdct_indianpines_s2_x4")
>>> model.scale, model.hsi_bands, model.msi_bands
(4, 200, 4)
"""

import copy
import hashlib
import json
import os

import numpy as np

from keras_hsifusion.utils.files import atomic_path, atomic_write_json, load_keras_file

__all__ = [
    "check_wavelengths",
    "find_preset",
    "from_preset",
    "get_file",
    "list_presets",
    "load_card",
    "load_preset",
    "register_presets",
    "save_preset",
    "shipped_presets",
]

MODEL_FILE = "model.keras"
CARD_FILE = "preset.json"

# Folders of shipped presets, pushed by the model folders (`register_presets`, called by
# `applications.registry.register_model` for a `ModelSpec` with `presets_dir`).
_PRESET_DIRS = []


def register_presets(folder):
    """Adds a folder of shipped presets (one sub-folder with a `preset.json` each).

    Called once per model folder, through `keras_hsifusion.applications.registry.register_model`
    (`ModelSpec.presets_dir`): the zoo pushes its presets here, this module never imports it.
    Registering the same folder twice has no effect.
    """
    folder = os.path.abspath(os.fspath(folder))
    if folder not in _PRESET_DIRS:
        _PRESET_DIRS.append(folder)
    return folder


def shipped_presets():
    """The shipped presets, `{name: folder}` (from the registered folders, in order)."""
    found = {}
    for root in _PRESET_DIRS:
        if not os.path.isdir(root):
            continue
        for name in sorted(os.listdir(root)):
            if os.path.isfile(os.path.join(root, name, CARD_FILE)):
                found[name] = os.path.join(root, name)
    return found


def find_preset(preset):
    """The folder of a shipped preset name or of a preset folder (one with `preset.json`), else
    None. `preset` must be a string or path."""
    preset = os.fspath(preset)
    shipped = shipped_presets()
    if preset in shipped:
        return shipped[preset]
    if os.path.isfile(os.path.join(preset, CARD_FILE)):
        return preset
    return None


def _folder(preset):
    if isinstance(preset, (str, os.PathLike)):
        folder = find_preset(preset)
        if folder is not None:
            return folder
        preset = os.fspath(preset)
        if os.path.isdir(preset):
            raise FileNotFoundError(
                f"{preset!r} is a folder but not a preset: it has no {CARD_FILE} "
                "(save one with `model.save_to_preset(folder)`)."
            )
    raise ValueError(
        f"Unknown preset. Expected one of {sorted(shipped_presets())} or the path of a preset "
        f"folder. Received: preset={preset!r}"
    )


# Cards read, by path, with the file's identity when it was read: a card is read from disk
# once (per change of the file), however many times a load or a fuse asks for it.
_CARDS = {}


def _file_key(path):
    st = os.stat(path)
    return st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino


def _read_card(path):
    try:
        key = _file_key(path)
    except OSError as e:
        raise ValueError(f"Cannot read the preset card {path!r}: {e}") from None
    cached = _CARDS.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        with open(path, encoding="utf-8") as f:
            card = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"Cannot read the preset card {path!r}: {e}") from None
    if not isinstance(card, dict) or not {"class", "sha256"} <= set(card):
        raise ValueError(f"The preset card {path!r} lacks `class` or `sha256`.")
    _CARDS[path] = (key, card)
    return card


def load_card(preset):
    """The card (`preset.json`, a dict) of a shipped preset name or a preset folder.

    The file is read once and kept until it changes; every call returns a fresh copy.
    """
    path = os.path.abspath(os.path.join(_folder(preset), CARD_FILE))
    return copy.deepcopy(_read_card(path))


def list_presets():
    """The cards of the shipped presets, `{name: card}`."""
    return {name: load_card(folder) for name, folder in shipped_presets().items()}


def check_wavelengths(card, wavelengths, name="lr_hsi"):
    """Checks the band centres of an LR-HSI against a preset card's `hsi_wavelengths_nm`.

    A preset learned its bands: a cube of another sensor with the same band count would be
    fused into a silently wrong answer. Nothing is checked when the card or the cube has no
    wavelengths. The order is the card's (AVIRIS' overlapping spectrometers make it
    non-monotonic); a band may differ by up to half the median band spacing (at least 1 nm).

    Args:
        card: a preset card (`load_card`), or None.
        wavelengths: the cube's `(C,)` band centres in nm, or None.
        name: the argument named in the message.

    Raises:
        ValueError: naming the preset, the first band that differs most, both wavelengths and
            the tolerance (or both band counts).
    """
    expected = (card or {}).get("hsi_wavelengths_nm")
    if expected is None or wavelengths is None:
        return
    expected = np.asarray(expected, np.float64).reshape(-1)
    got = np.asarray(wavelengths, np.float64).reshape(-1)
    preset = card.get("name", "?")
    if got.size != expected.size:
        raise ValueError(
            f"`{name}` must have the {expected.size} bands of the preset {preset!r} "
            f"(`hsi_wavelengths_nm` of its card). Received {got.size} wavelengths"
        )
    spacing = np.median(np.abs(np.diff(expected))) if expected.size > 1 else 0.0
    tolerance = max(1.0, 0.5 * float(spacing))
    error = np.abs(got - expected)
    k = int(np.argmax(error))
    if not error[k] <= tolerance:  # NaN counts as a mismatch
        raise ValueError(
            f"The wavelengths of `{name}` do not match the preset {preset!r}: band {k} is at "
            f"{got[k]:.2f} nm, the preset expects {expected[k]:.2f} nm (tolerance "
            f"{tolerance:.2f} nm; {int(np.sum(~(error <= tolerance)))} of {got.size} bands "
            "differ). Resample the cube to the preset's bands, or use a classical method."
        )


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def get_file(preset, card=None):
    """The path of a preset's `model.keras`, after checking its sha256 against the card.

    Use it with `keras.models.load_model(khf.presets.get_file(name))` on any backend.
    `card`: the preset's card when the caller has it already (`load_card`).
    """
    folder = _folder(preset)
    card = load_card(folder) if card is None else card
    name = card.get("file", MODEL_FILE)
    if not isinstance(name, str) or os.path.basename(name) != name or name in ("", ".", ".."):
        raise ValueError(
            f"The preset card of {folder!r} names a file outside its folder: file={name!r}"
        )
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The preset file {path!r} is missing.")
    actual = _sha256(path)
    if actual != card["sha256"]:
        raise ValueError(
            f"The preset file {path!r} does not match its card: sha256 {actual} instead of "
            f"{card['sha256']}. The file is corrupt or was changed; reinstall the package or "
            "save the preset again."
        )
    return path


def load_preset(preset, expected_class=None, safe_mode=True):
    """Loads a preset (name or folder) as a model; see `FusionModel.from_preset`.

    `expected_class`: None for any zoo model, else the class the preset must hold. The
    file's sha256 is checked against the card first; then it is loaded by
    `keras_hsifusion.utils.files.load_keras_file`: with `safe_mode=True` (the default) a
    `Lambda` layer is refused, and so is any class that is neither Keras' own nor
    registered; a truncated or corrupt file gives a `ValueError` naming it.
    """
    card = load_card(preset)
    if expected_class is not None and card["class"] != expected_class.__name__:
        raise ValueError(
            f"The preset {preset!r} holds a {card['class']}, not a {expected_class.__name__}. "
            f"Load it with keras_hsifusion.from_preset({preset!r}) or "
            f"{card['class']}.from_preset({preset!r})."
        )
    path = get_file(preset, card)  # the sha256 is checked before anything is deserialised
    model = load_keras_file(path, safe_mode=safe_mode, compile=False, what="preset file")
    if type(model).__name__ != card["class"]:
        raise ValueError(
            f"The preset file {path!r} holds a {type(model).__name__}, its card says "
            f"{card['class']}."
        )
    model.preset_card = card  # `model.fuse` applies the card's input normalisation
    return model


def from_preset(preset, safe_mode=True):
    """Loads any zoo model from a preset name or folder (`FusionModel.from_preset`)."""
    return load_preset(preset, expected_class=None, safe_mode=safe_mode)


def save_preset(model, preset_dir, **card):
    """Writes `model.keras` and `preset.json` to `preset_dir` (both atomically)."""
    preset_dir = os.fspath(preset_dir)
    os.makedirs(preset_dir, exist_ok=True)
    path = os.path.join(preset_dir, MODEL_FILE)
    with atomic_path(path, ".keras") as tmp:
        model.save(tmp)
    config = model.get_config()
    full = {
        "name": card.pop("name", os.path.basename(os.path.normpath(preset_dir))),
        "class": type(model).__name__,
        "config": config,
        "scale": config.get("scale"),
        "hsi_bands": config.get("hsi_bands"),
        "msi_bands": config.get("msi_bands"),
        "params": int(model.count_params()),
        **card,
        "file": MODEL_FILE,
        "sha256": _sha256(path),
    }
    atomic_write_json(os.path.join(preset_dir, CARD_FILE), full)
    return full
