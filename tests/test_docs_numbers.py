"""The numbers of README.md and docs/ trace to committed result files (issue 24).

The README's tables equal the result files they name (each cell rounded as it is shown), the
inline figures equal what they summarise, and every result file that README.md or docs/*.md
cites is committed.
"""

import json
import re

import pytest
from harness import ROOT

pytestmark = pytest.mark.backend_independent

RESULTS = ROOT / "benchmarks" / "results"
PRESETS = ROOT / "keras_hsifusion" / "applications"
README = (ROOT / "README.md").read_text()
# Cited as files that a future run writes (benchmarks/gpu_check.py on a lent GPU machine).
NOT_WRITTEN_YET = {"gpu.md"}
PRESET_NAMES = ("hssdct_indianpines_s2_x4", "msst_net_indianpines_s2_x4")


# --------------------------------------------------------------------------- helpers


def markdown_tables(text):
    """Every pipe table of `text` as a list of rows (lists of stripped cells), the header row
    first and the `|---|` rule dropped."""
    tables, rows = [], []
    for line in text.splitlines() + [""]:
        line = line.strip()
        if line.startswith("|") and line.endswith("|"):
            cells = [cell.strip() for cell in line[1:-1].split("|")]
            if not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                rows.append(cells)
        elif rows:
            tables.append(rows)
            rows = []
    return tables


def table_starting(text, *header):
    """The one table of `text` whose header row starts with the cells `header`."""
    found = [t for t in markdown_tables(text) if t[0][: len(header)] == list(header)]
    assert len(found) == 1, f"{len(found)} tables with header {header}"
    return found[0]


def plain(cell):
    return cell.replace("**", "").replace("`", "").strip()


def assert_shown(shown, value, what):
    """`shown` (e.g. "8.12", "7,977,342") is `value` rounded to the digits it shows."""
    shown = plain(shown).replace(",", "")
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    assert f"{value:.{decimals}f}" == shown, f"{what}: shown {shown}, result file {value!r}"


def load_json(name):
    return json.loads((RESULTS / name).read_text())


def bench_row(results, backend, model, **match):
    rows = [
        r
        for r in results["results"]
        if r["backend"] == backend
        and r["model"] == model
        and all(r.get(k) == v for k, v in match.items())
    ]
    assert len(rows) == 1, (backend, model, match, len(rows))
    return rows[0]


def preset_card(name):
    model = name.split("_indianpines")[0]
    return json.loads((PRESETS / model / "presets" / name / "preset.json").read_text())


# --------------------------------------------------------------------------- README tables


def test_readme_speed_table_equals_benchmark_results():
    forward = load_json("cpu_forward_allocator.json")
    train = load_json("cpu_train_default.json")
    jax_train = load_json("cpu_train_jax_conv_default.json")
    table = table_starting(README, "", "official", "TF (XLA forward, graph training)")
    backends = ["tensorflow", "torch", "jax"]
    rows = {row[0].split(" (")[0]: row[1:] for row in table[1:]}
    assert list(rows) == [
        "HSSDCT forward",
        "HSSDCT training step",
        "MSST-Net forward",
        "MSST-Net training step",
    ]
    for label, cells in rows.items():
        model = "hssdct" if label.startswith("HSSDCT") else "msst_net"
        results = forward if "forward" in label else train
        mode = "forward" if "forward" in label else "train"
        official = bench_row(results, "official-torch", model, mode=mode, allocator="tuned")
        assert_shown(cells[0].removesuffix(" s"), official["median_s"], f"{label} official")
        for backend, cell in zip(backends, cells[1:]):
            what = f"{label} {backend}"
            if backend == "jax" and mode == "train":
                # The JAX step after its kernel-gradient change, timed in a later run.
                row = bench_row(jax_train, "jax", model, mode=mode)
                assert_shown(re.fullmatch(r"([\d.]+)×†", cell)[1], row["vs_official"], what)
                continue
            row = bench_row(results, backend, model, mode=mode, allocator="tuned")
            seconds, ratio = re.fullmatch(r"\**([\d.]+) s \(([\d.]+)×\)\**", cell).groups()
            assert_shown(seconds, row["median_s"], what)
            assert_shown(ratio, row["vs_official"], what)


def test_readme_preset_table_equals_preset_cards():
    cards = {name: preset_card(name) for name in PRESET_NAMES}
    hssdct, msst = cards.values()
    # Both cards score the same classical methods on the same region.
    assert hssdct["metrics"]["poly_detail_injection"] == msst["metrics"]["poly_detail_injection"]
    table = table_starting(README, "method", "PSNR (dB) ↑", "SAM (°) ↓")
    assert len(table) == 6
    for row in table[1:]:
        kind, name = plain(row[0]).split(" ")
        card = cards[name] if kind == "preset" else hssdct
        metrics = card["metrics"]["model" if kind == "preset" else name]
        for key, cell in zip(("psnr", "sam", "ergas", "ssim"), row[1:5]):
            assert_shown(cell, metrics[key], f"{name} {key}")
        assert_shown(row[5], card["params"] if kind == "preset" else 0, f"{name} params")
    unrounded = re.search(
        r"unrounded: MSST-Net ([\d.]+), HSSDCT ([\d.]+), `poly_detail_injection` ([\d.]+) dB",
        README,
    )
    assert unrounded, "the unrounded PSNR line under the preset table"
    assert_shown(unrounded[1], msst["metrics"]["model"]["psnr"], "MSST-Net unrounded")
    assert_shown(unrounded[2], hssdct["metrics"]["model"]["psnr"], "HSSDCT unrounded")
    assert_shown(unrounded[3], hssdct["metrics"]["poly_detail_injection"]["psnr"], "poly")


def test_readme_preset_paragraph_equals_cards():
    hssdct, msst = (preset_card(name) for name in PRESET_NAMES)
    epochs = re.search(r"HSSDCT (\d+) of (\d+), MSST-Net (\d+) of (\d+)", README)
    assert epochs, "the best-epoch sentence"
    assert [int(g) for g in epochs.groups()] == [
        hssdct["best_epoch"],
        hssdct["epochs"],
        msst["best_epoch"],
        msst["epochs"],
    ]
    steps = re.search(r"\(([\d,]+) and ([\d,]+) steps\)", README)
    assert [int(g.replace(",", "")) for g in steps.groups()] == [hssdct["steps"], msst["steps"]]
    costs = [
        card["metrics"]["poly_detail_injection"]["psnr"] - card["metrics"]["model"]["psnr"]
        for card in (hssdct, msst)
    ]
    low, high = re.search(r"residual costs\s+([\d.]+)-([\d.]+) dB", README).groups()
    assert_shown(low, min(costs), "smallest residual cost")
    assert_shown(high, max(costs), "largest residual cost")


ROBUSTNESS_ROWS = {
    "training: FWHM 4, no noise": "psf4",
    "FWHM 2": "psf2",
    "FWHM 7": "psf7",
    "LR 15 dB, MSI 40 dB": "lr15_msi40",
    "LR 25 dB, MSI 40 dB": "lr25_msi40",
    "LR 35 dB, MSI 40 dB": "lr35_msi40",
    "LR 45 dB, MSI 25 dB": "lr45_msi25",
    "band-dependent, LR 25 dB, MSI 40 dB": "lr25_msi40_sensor10",
}


def test_readme_robustness_table_equals_sweep_results():
    rows = load_json("robustness_indianpines_s2_x4.json")["rows"]
    scores = {(r["condition"], r["method"]): r for r in rows}
    table = table_starting(README, "condition", "bicubic", "`poly_detail_injection`")
    columns = [plain(c) for c in table[0][1:]]
    assert columns[2].startswith("presets (MSST-Net; HSSDCT within 0.01)")
    columns[2] = "msst_net_indianpines_s2_x4"
    assert {r["method"] for r in rows} >= set(columns)
    assert [row[0] for row in table[1:]] == list(ROBUSTNESS_ROWS)
    for row in table[1:]:
        condition = ROBUSTNESS_ROWS[row[0]]
        scored = [r for r in rows if r["condition"] == condition]
        assert len(scored) == 12  # "best of all 12 methods in bold"
        best = {
            "psnr": max(round(r["psnr"], 2) for r in scored),
            "sam": min(round(r["sam"], 2) for r in scored),
        }
        for method, cell in zip(columns, row[1:]):
            result = scores[condition, method]
            for key, part in zip(("psnr", "sam"), cell.split(" / ")):
                what = f"{row[0]}, {method}, {key}"
                assert_shown(part, result[key], what)
                assert ("**" in part) == (float(plain(part)) == best[key]), f"{what}: bold"
        hssdct = scores[condition, "hssdct_indianpines_s2_x4"]["psnr"]
        assert abs(hssdct - scores[condition, "msst_net_indianpines_s2_x4"]["psnr"]) <= 0.01


def test_readme_baseline_table_equals_result_file():
    result = load_json("baselines_indianpines_s2_x4.json")
    table = table_starting(README, "method", "PSNR dB", "SAM deg")
    keys = ("psnr", "sam", "ergas", "ssim", "region_s", "full_scene_s")
    assert [row[0] for row in table[1:]] == [r["method"] for r in result["rows"]]
    for row, values in zip(table[1:], result["rows"]):
        for key, cell in zip(keys, row[1:]):
            assert_shown(cell, values[key], f"{row[0]} {key}")
    # The result file's own markdown table says the same.
    md = table_starting((RESULTS / "baselines_indianpines_s2_x4.md").read_text(), "method")
    assert md == table


# --------------------------------------------------------------------------- inline figures


def test_readme_memory_range_equals_benchmark():
    rows = [
        r
        for r in load_json("cpu_forward_allocator.json")["results"]
        if r["model"] == "msst_net"
        and r["allocator"] == "tuned"
        and r["backend"] != "official-torch"
    ]
    assert len(rows) == 3
    gib = [r["peak_memory_bytes"] / 2**30 for r in rows]
    found = re.search(r"MSST-Net peak memory[^.]*?([\d.]+)–([\d.]+) GiB", README, re.S)
    assert found, "the MSST-Net memory sentence"
    assert "cpu_forward_allocator.md" in README[found.start() : found.end() + 200]
    assert_shown(found[1], min(gib), "lowest MSST-Net peak")
    assert_shown(found[2], max(gib), "highest MSST-Net peak")


def test_readme_flops_equal_benchmark():
    results = load_json("cpu_forward_allocator.json")
    for model, label in (("hssdct", "HSSDCT"), ("msst_net", "MSST-Net")):
        shown = re.search(rf"{label} ([\d.]+) GFLOPs", README)[1]
        gflops = {r["gflops_per_step"] for r in results["results"] if r["model"] == model}
        assert len(gflops) == 1
        assert_shown(shown, gflops.pop(), f"{label} GFLOPs")


def test_readme_conv_gradient_ratio_equals_kernel_benchmark():
    table = table_starting(
        (RESULTS / "jax_conv_kernel_gradient.md").read_text(), "shape", "forward"
    )
    ours, torch = table[0].index("kernel grad, ours"), table[0].index("torch (oneDNN)")

    def ms(cell):
        return float(cell.split(" ms")[0])

    ratios = [ms(row[ours]) / ms(row[torch]) for row in table[1:]]
    found = re.search(r"\(([\d.]+)–([\d.]+)× slower than oneDNN", README)
    assert found, "the oneDNN sentence"
    assert "jax_conv_kernel_gradient.md" in README[found.end() : found.end() + 200]
    assert_shown(found[1], min(ratios), "fastest kernel-gradient ratio")
    assert_shown(found[2], max(ratios), "slowest kernel-gradient ratio")


def test_training_doc_makes_no_unsourced_correction_claim():
    # The "+0.5 dB linear correction" had no script or result file behind it.
    for path in (ROOT / "README.md", ROOT / "docs" / "training.md"):
        assert "+0.5 dB" not in path.read_text(), path


# --------------------------------------------------------------------------- cited files


def _cited_result_files():
    """(doc, file name) of every `benchmarks/results/...` file and every bare result-file name
    (`cpu_train_default.md`) that README.md and docs/*.md mention; `{a,b}` expands."""
    known = {p.name for p in RESULTS.iterdir()}
    stems = {name.rsplit(".", 1)[0] for name in known}
    cited = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text().replace("`\n  `", "").replace("`benchmarks/results/`\n", "")
        for match in re.finditer(r"benchmarks/results/([\w.{},*-]+\.(?:md|json|png|txt))", text):
            cited.extend((doc.name, name) for name in _expand(match[1]))
        for match in re.finditer(r"(?<![\w/])([a-z][\w{},]*\.(?:md|json|png|txt))\b", text):
            names = _expand(match[1])
            if any(name.rsplit(".", 1)[0] in stems for name in names):
                cited.extend((doc.name, name) for name in names)
    return sorted(set(cited))


def _expand(name):
    braces = re.search(r"\{([^}]*)\}", name)
    if not braces:
        return [name]
    head, tail = name[: braces.start()], name[braces.end() :]
    return [n for part in braces[1].split(",") for n in _expand(head + part + tail)]


def test_every_cited_result_file_is_committed():
    cited = _cited_result_files()
    assert len(cited) > 20  # the scan finds the citations
    missing = [
        (doc, name)
        for doc, name in cited
        if "*" not in name and name not in NOT_WRITTEN_YET and not (RESULTS / name).is_file()
    ]
    assert not missing, f"cited but not in benchmarks/results: {missing}"


def test_result_file_scan_expands_braces():
    assert _expand("layer_profile_hssdct_small_{jax,torch}.txt") == [
        "layer_profile_hssdct_small_jax.txt",
        "layer_profile_hssdct_small_torch.txt",
    ]


def test_readme_adapt_figures_equal_adapt_results():
    clean = {r["method"]: r for r in load_json("adapt_indianpines_l8_x4_clean.json")["rows"]}
    noisy = {r["method"]: r for r in load_json("adapt_indianpines_l8_x4_noisy.json")["rows"]}
    found = re.search(r"clean pair \(([\d.]+) dB, `poly_detail_injection` ([\d.]+)\)", README)
    assert found, "the adapt sentence"
    assert_shown(found[1], clean["adapt"]["psnr"], "adapted HSSDCT, clean pair")
    assert_shown(found[2], clean["poly_detail_injection"]["psnr"], "poly, clean pair")
    behind = re.search(r"is ([\d.]+) dB behind CNMF on a noisy", README)[1]
    assert_shown(behind, noisy["cnmf"]["psnr"] - noisy["adapt"]["psnr"], "adapt vs CNMF, noisy")


def test_msst_memory_doc_quotes_the_benchmark():
    text = (ROOT / "docs" / "msst_memory.md").read_text().replace("\n", " ")
    for allocator, pattern in (
        ("tuned", r"([\d.]+)-([\d.]+) GiB with the tuned allocator"),
        ("default", r"([\d.]+)-([\d.]+) GiB under glibc's defaults"),
    ):
        gib = [
            r["peak_memory_bytes"] / 2**30
            for r in load_json("cpu_forward_allocator.json")["results"]
            if r["model"] == "msst_net"
            and r["allocator"] == allocator
            and r["backend"] != "official-torch"
        ]
        low, high = re.search(pattern, text).groups()
        assert_shown(low, min(gib), f"lowest MSST-Net peak, {allocator}")
        assert_shown(high, max(gib), f"highest MSST-Net peak, {allocator}")
