"""The study's outputs: results.json, results.md, PNG plots, and a self-contained HTML report (checked
by parsing it, and by rendering it in headless Chromium where installed)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mdrl.study import StudyConfig
from mdrl.study.report import write_outputs

REPO = Path(__file__).resolve().parents[1]
SUITES = ["math500", "countdown", "kk"]
VARIANT = ["base", "default", "r1-base", "none", "en"]


def make_cells():
    values = {"math": (0.40, 0.60, 0.10), "puzzle": (0.20, 0.30, 0.50), "math+puzzle": (0.45, 0.60, 0.60)}
    cells = []
    for mixture, accs in values.items():
        for seed in (0, 1):
            cell_id = f"base__{mixture}__default__r1-base__none__en__seed{seed}"
            cells.append({
                "kind": "cell", "cell_id": cell_id, "variant": VARIANT, "mixture_keys": mixture.split("+"),
                "axes": {"model": "base", "mixture": mixture, "seed": seed},
                "scores": {s: {"accuracy": a + 0.05 * seed} for s, a in zip(SUITES, accs)},
                "checkpoint": f"/ckpt/{cell_id}", "seconds": {"train": 1.0, "eval": 0.5},
                "resolved_config": {"train": {"name": cell_id, "grpo": {"learning_rate": 1e-6}}},
            })
    return cells


BASELINE = {"kind": "baseline", "cell_id": "base__r1-base__en", "model_path": "Qwen/Qwen2.5-7B",
            "axes": {"model": "base", "template": "r1-base", "lang": "en"},
            "scores": {"math500": {"accuracy": 0.2}, "countdown": {"accuracy": 0.3}, "kk": {"accuracy": 0.1}},
            "resolved_config": {"model": {"path": "Qwen/Qwen2.5-7B"}}}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    config = StudyConfig.from_mapping({
        "name": "report <test>", "models": [{"name": "base", "path": "Qwen/Qwen2.5-7B"}],
        "mixtures": ["math", "puzzle", "math+puzzle"], "seeds": [0, 1], "suites": SUITES})
    failed = [{"cell_id": "base__code__x", "kind": "cell", "error": "RuntimeError: boom <b>", "traceback": "..."}]
    results, paths, markdown = write_outputs(config, out, make_cells(), [BASELINE],
                                             {"planned": 8, "ran": 7, "failed": 1}, failed)
    return out, results, paths, markdown


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.links, self.images, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "action"):
                self.links.append((tag, name, value or ""))
            if tag == "img" and name == "src":
                self.images.append(value or "")

    def handle_data(self, data):
        self.text.append(data)


def test_report_is_self_contained(outputs):
    _out, _results, paths, _ = outputs
    page = paths["report"].read_text(encoding="utf-8")
    parsed = Collector()
    parsed.feed(page)
    assert "script" not in parsed.tags and "link" not in parsed.tags and "iframe" not in parsed.tags
    assert "url(" not in page                      # no CSS fetches either
    assert len(parsed.images) == 3                 # heatmap, bars, synergy
    for tag, attribute, value in parsed.links:
        assert (tag, attribute) == ("img", "src") and value.startswith("data:image/png;base64,"), (tag, attribute)
    for src in parsed.images:
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_holds_tables_configs_and_failures(outputs):
    _out, _results, paths, _ = outputs
    parsed = Collector()
    parsed.feed(paths["report"].read_text(encoding="utf-8"))
    text = " ".join(parsed.text)
    assert "report <test>" in text                                    # escaped, then shown as written
    assert "RuntimeError: boom <b>" in text
    assert "starting model" in text and "math+puzzle" in text
    assert "42.5" in text and "+22.5 ± 2.5*" in text                   # math on math500: (0.40, 0.45), base 0.20
    assert "Synergy / conflict" in text
    for cell in make_cells():
        assert cell["cell_id"] in text and cell["checkpoint"] in text  # every run and its config
    assert text.count('"learning_rate": 1e-06') == 6


def test_results_json_and_markdown(outputs):
    out, results, paths, markdown = outputs
    stored = json.loads(paths["results_json"].read_text())
    assert stored["tables"] == json.loads(json.dumps(results["tables"]))
    [entry] = stored["tables"]
    math_row = entry["results"]["rows"][0]
    assert math_row["mixture"] == "math"
    assert math_row["suites"]["math500"]["mean"] == pytest.approx(0.425)
    assert math_row["suites"]["math500"]["se"] == pytest.approx(0.025)
    assert math_row["suites"]["math500"]["delta"] == pytest.approx(0.225)
    # adding puzzle to math on math's suites (math500, countdown), per seed:
    # math+puzzle (0.45+0.60)/2, (0.50+0.65)/2 -> 0.55; math (0.40+0.60)/2, (0.45+0.65)/2 -> 0.525
    assert entry["synergy"]["matrix"]["math"]["puzzle"]["delta"] == pytest.approx(0.025)
    assert stored["failed"] == [{"cell_id": "base__code__x", "kind": "cell", "error": "RuntimeError: boom <b>"}]
    assert (out / "results.md").read_text() == markdown
    assert "| math (n=2) | 42.5 (+22.5 ± 2.5*) |" in markdown
    numbers = math_row["suites"]["math500"]["effect"]                  # no items here: the seeds' spread alone
    assert numbers["se"] == pytest.approx(0.025) and numbers["z"] == pytest.approx(9.0)
    assert numbers["above_2se"] is True and numbers["se_items"] is None
    for row in entry["results"]["rows"]:                               # every delta has its se and z
        for stats in [*row["suites"].values(), row["avg"]]:
            assert stats["effect"]["se"] is not None and "z" in stats["effect"]
    syn = entry["synergy"]["matrix"]["math"]["puzzle"]
    assert syn["se"] is not None and "z" in syn and "above_2se" in syn


def test_paths_inside_the_study_folder_are_stored_relative_to_it(tmp_path):
    cells = make_cells()
    inside = tmp_path / "cells" / cells[0]["cell_id"] / "final"
    cells[0]["checkpoint"] = str(inside)
    cells[0]["scores"]["math500"]["samples_file"] = str(inside.parent / "eval" / "samples.jsonl")
    config = StudyConfig.from_mapping({"name": "paths", "models": [{"name": "base", "path": "Qwen/Qwen2.5-7B"}],
                                       "mixtures": ["math", "puzzle", "math+puzzle"], "seeds": [0, 1],
                                       "suites": SUITES})
    write_outputs(config, tmp_path, cells, [BASELINE], {"planned": 7}, [])
    stored = json.loads((tmp_path / "results.json").read_text())
    first = stored["cells"][0]
    assert first["checkpoint"] == f"cells/{cells[0]['cell_id']}/final"
    assert first["scores"]["math500"]["samples_file"] == f"cells/{cells[0]['cell_id']}/eval/samples.jsonl"
    assert stored["cells"][1]["checkpoint"] == cells[1]["checkpoint"]  # outside the folder: as recorded
    assert stored["baselines"][0]["model_path"] == "Qwen/Qwen2.5-7B"


def test_plots_are_real_pngs(outputs):
    from PIL import Image

    _out, _results, paths, _ = outputs
    plots = [path for key, path in paths.items() if key.startswith("plot:")]
    assert sorted(p.name.rsplit("-", 1)[1] for p in plots) == ["bars.png", "heatmap.png", "synergy.png"]
    for path in plots:
        image = Image.open(path).convert("L")
        assert image.width > 300 and image.height > 200
        lo, hi = image.getextrema()
        assert hi - lo > 100          # drawn, not blank


def test_empty_study_still_writes_a_report(tmp_path):
    config = StudyConfig.from_mapping({"models": ["m"], "mixtures": ["math"], "suites": ["math500"]})
    _results, paths, markdown = write_outputs(config, tmp_path, [], [], {"planned": 2}, [])
    assert "No finished cells yet" in paths["report"].read_text() and "No finished cells yet" in markdown


CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and Path(p).exists()), None)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)")
def test_chromium_renders_the_report(outputs):
    from PIL import Image, ImageStat

    out, _results, paths, _ = outputs
    png = out / "screenshot.png"
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "screenshot_report.py"), str(paths["report"]),
                           str(png), "--width", "1400", "--height", "2000"],
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    image = Image.open(png).convert("RGB")
    assert image.size == (1400, 2000)
    stat = ImageStat.Stat(image.convert("L"))
    assert stat.stddev[0] > 20                                   # not a blank page
    colours = image.resize((140, 200)).getcolors(maxcolors=100_000)
    assert colours is not None and len(colours) > 50             # text, tables and coloured plots
    # the heatmap's blues and reds are on the page, not just black text on white
    assert any(b > r + 60 for _count, (r, _g, b) in colours)


COMMITTED_REPORT = REPO / "docs" / "tiny-study" / "report.html"


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)")
def test_chromium_renders_the_committed_tiny_study_report(tmp_path):
    """docs/tiny-study/report.html (the `mdrl demo --full` run) is self-contained and renders its tables and
    plots in headless Chromium."""
    from PIL import Image, ImageStat

    html = COMMITTED_REPORT.read_text(encoding="utf-8")
    assert html.count("<table") >= 3 and html.count("data:image/png;base64,") >= 3
    assert "src=\"http" not in html and "href=\"http" not in html  # nothing to fetch
    png = tmp_path / "report.png"
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "screenshot_report.py"), str(COMMITTED_REPORT),
                           str(png), "--width", "1400", "--height", "3000"],
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    image = Image.open(png).convert("RGB")
    assert ImageStat.Stat(image.convert("L")).stddev[0] > 20
    colours = image.resize((140, 300)).getcolors(maxcolors=100_000)
    assert colours is not None and any(b > r + 60 for _count, (r, _g, b) in colours)


def test_item_level_errors_pair_cells_with_the_starting_model(tmp_path):
    """With per-item accuracies (as the study runner stores them), one seed still gets an se: the items'."""
    base_items = {f"math500/{i}": [1.0 if i < 10 else 0.0, f"q{i}"] for i in range(40)}     # 25%
    cell_items = {f"math500/{i}": [1.0 if i < 30 else 0.0, f"q{i}"] for i in range(40)}     # 75%
    baseline = {**BASELINE, "scores": {"math500": {"accuracy": 0.25, "items": base_items}}}
    cell = {"kind": "cell", "cell_id": "base__math__seed0", "variant": VARIANT, "mixture_keys": ["math"],
            "axes": {"model": "base", "mixture": "math", "seed": 0},
            "scores": {"math500": {"accuracy": 0.75, "items": cell_items}}, "checkpoint": "/ckpt/x",
            "template_scores": {"plain": {"math500": {"accuracy": 0.75, "items": cell_items}}}}
    config = StudyConfig.from_mapping({"name": "items", "models": [{"name": "base", "path": "Qwen/Qwen2.5-7B"}],
                                       "mixtures": ["math"], "suites": ["math500"]})
    results, paths, markdown = write_outputs(config, tmp_path, [cell], [baseline], {"planned": 2}, [])
    numbers = results["tables"][0]["results"]["rows"][0]["suites"]["math500"]["effect"]
    diffs = [1.0 if 10 <= i < 30 else 0.0 for i in range(40)]                            # d_i = 0.5 on average
    mean = sum(diffs) / 40
    expected = (sum((d - mean) ** 2 for d in diffs) / 39) ** 0.5 / 40 ** 0.5
    assert numbers["delta"] == pytest.approx(0.5) and numbers["se_seeds"] is None
    assert numbers["se_items"] == pytest.approx(expected) and numbers["se"] == pytest.approx(expected)
    assert numbers["above_2se"] is True and numbers["n_items"] == 40
    assert f"75.0 (+50.0 ± {100 * expected:.1f}*)" in markdown
    stored = json.loads(paths["results_json"].read_text())
    assert "items" not in stored["cells"][0]["scores"]["math500"]  # kept in the run's own result.json only
    assert stored["cells"][0]["template_scores"]["plain"]["math500"] == {"accuracy": 0.75}
