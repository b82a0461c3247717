"""The command line's help and docs/cli.md agree with its parser, and the parser with the
library: every option of every command is documented (and no other), every choice is listed
by `--help`, and the lists written into cli.py (so that help needs no Keras) are the
library's."""

import re

import pytest
from harness import ROOT

import keras_hsifusion as khf
from keras_hsifusion import baselines, cli, data
from keras_hsifusion.applications.registry import model_specs

pytestmark = pytest.mark.backend_independent

COMMON = {"--backend", "--quiet", "--debug", "--help", "-h", "-q"}
# options named in docs/cli.md: `--long-name` and `-x`
OPTION = r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-z])(?![\w-])"
# docs/cli.md section heading -> command
SECTIONS = {
    "khf fuse": "fuse",
    "khf evaluate": "evaluate",
    "khf presets": "presets",
    "khf train": "train",
    "khf adapt": "adapt",
    "khf demo": "demo",
}


def _subparsers():
    parser = cli.build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return parser, action.choices


def _options(subparser):
    """The option strings of each option of `subparser`, one tuple per option."""
    return [tuple(a.option_strings) for a in subparser._actions if a.option_strings]


def _doc_sections():
    text = (ROOT / "docs" / "cli.md").read_text()
    sections = {}
    for block in re.split(r"\n(?=## )", text):
        heading = block.splitlines()[0]
        match = re.match(r"## `(khf \w+)", heading)
        if match and match.group(1) in SECTIONS and "robustness" not in heading:
            sections[SECTIONS[match.group(1)]] = set(re.findall(OPTION, block))
        elif heading.startswith("## Common options"):
            sections["common"] = set(re.findall(OPTION, block))
    return sections


def test_every_option_is_documented_and_every_documented_option_exists():
    parser, commands = _subparsers()
    docs = _doc_sections()
    assert set(SECTIONS.values()) <= set(docs), sorted(docs)
    assert {"--backend", "--quiet", "--debug", "--version"} <= docs["common"]
    assert ("--version",) in _options(parser)
    for command in SECTIONS.values():
        options = [o for o in _options(commands[command]) if not set(o) & COMMON]
        # `--overwrite` is described once, with the outputs, under "Common options"
        strings = {s for o in options for s in o}
        documented = docs[command] | (docs["common"] & {"--overwrite"} & strings)
        missing = [o for o in options if not set(o) & documented]
        unknown = documented - COMMON - strings
        assert not missing and not unknown, (
            f"khf {command}: undocumented {missing}, documented but not in the parser "
            f"{sorted(unknown)}"
        )


def _help(command):
    _, commands = _subparsers()
    text = commands[command].format_help()
    return text, re.sub(r"\s+", "", text)  # argparse wraps lines, also at hyphens


def test_help_lists_every_choice():
    presets = list(khf.list_presets())
    fuse, fuse_flat = _help("fuse")
    for name in [*baselines.METHODS, *presets, *data.list_sensors()]:
        assert name in fuse_flat, name
    assert "usage: khf fuse" in fuse
    _, adapt_flat = _help("adapt")
    for name in [*presets, *data.list_sensors(), *(s.cls.__name__ for s in model_specs().values())]:
        assert name in adapt_flat, name
    _, presets_flat = _help("presets")
    assert all(name in presets_flat for name in presets)
    demo, _ = _help("demo")
    assert "usage: khf demo" in demo
    assert all(o in demo for o in ("--backend", "--quiet", "--debug", "--out", "--train"))


def test_the_lists_written_into_the_command_line_are_the_librarys():
    assert cli.CLASSICAL_METHODS == tuple(baselines.METHODS)
    assert cli.SENSORS == tuple(data.list_sensors())
    assert set(cli.MODEL_CLASSES) == {s.cls.__name__ for s in model_specs().values()}
    assert cli.shipped_cards() == khf.list_presets()  # read without Keras, same cards


def test_version_and_help_of_wrapped_commands(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"keras_hsifusion {khf.__version__}"
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--quiet", "--help"])
    assert info.value.code == 0 and "usage: khf demo" in capsys.readouterr().out
    assert cli.main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: khf bench" in out and "--backend" in out and "--models" in out
