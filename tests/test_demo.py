"""`mdrl tiny build` and `mdrl demo`: the recipe builds real (tiny, untrained in --fast) models, the demo wires
them into a study and prints the tables and the report path. The fast tests plug a recording CellRunner
(training and evaluation are covered by the train/eval/study tests); the slow test runs the real demo."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mdrl.cli import app
from mdrl.commands.demo import demo_config
from mdrl.study.config import StudyConfig
from mdrl.tiny.recipe import RECIPE_FILE, TinyRecipe, build_models, read_built

CALLS: list[tuple[str, str]] = []


class RecordingRunner:
    """Trains nothing: the checkpoint is the starting model; evaluation scores 0.5 after training, 0.25
    before, so the tables can be checked against what the runner was given."""

    def __init__(self, config: StudyConfig) -> None:
        self.config = config

    def model_path(self, model: Any, work_dir: Path) -> str:
        CALLS.append(("model", model.path))
        return model.path

    def train(self, cell: Any, model_path: str, settings: Any, work_dir: Path) -> dict[str, Any]:
        CALLS.append(("train", f"{cell.mixture.name}:{settings['data']['template']}"))
        work_dir.mkdir(parents=True, exist_ok=True)
        return {"checkpoint": str(work_dir)}

    def evaluate(self, model_path: str, suites: Any, template: str, lang: str, work_dir: Path) -> dict[str, Any]:
        trained = "/cells/" in model_path
        return {suite: {"accuracy": 0.5 if trained else 0.25, "n_items": 2} for suite in suites}


@pytest.fixture(scope="module")
def fast_models(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("tiny-cache")
    return out, build_models(out / "fast", TinyRecipe().fast())


def test_fast_recipe_writes_loadable_base_and_instruct_models(fast_models):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache, record = fast_models
    folder = cache / "fast"
    assert read_built(folder, TinyRecipe().fast()) == record
    assert read_built(folder, TinyRecipe()) is None  # another recipe is not a cache hit
    for flavour, template in (("base", "r1-base"), ("instruct", "chat")):
        model = AutoModelForCausalLM.from_pretrained(folder / flavour)
        tokenizer = AutoTokenizer.from_pretrained(folder / flavour)
        assert model.config.model_type == "qwen2"
        assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                             add_generation_prompt=True).endswith("<|im_start|>assistant\n")
        assert json.loads((folder / flavour / "mdrl_tiny.json").read_text())["template"] == template
        stored = json.loads((folder / flavour / RECIPE_FILE).read_text())
        assert TinyRecipe.from_dict(stored["recipe"]) == TinyRecipe().fast()
    for flavour in ("base", "instruct"):
        assert set(record["accuracy"][flavour]) == set(TinyRecipe().sources)
        for numbers in record["accuracy"][flavour].values():
            assert 0.0 <= numbers["greedy"] <= 1.0 and 0.0 <= numbers["t1"] <= 1.0
    # the instruct model is the base model trained further, not a copy
    base = (folder / "base" / "model.safetensors").read_bytes()
    assert base != (folder / "instruct" / "model.safetensors").read_bytes()


def test_saved_tokenizer_loads_back_with_the_same_tokens(fast_models):
    """transformers loads a Qwen2 folder's tokenizer as Qwen2Tokenizer whatever tokenizer.json says, so the
    builder must train its merges under Qwen2's own pre-tokenizer or training and use would disagree."""
    from transformers import AutoTokenizer

    from mdrl.tiny.builder import build_tokenizer
    from mdrl.tiny.recipe import tokenizer_corpus

    cache, _ = fast_models
    loaded = AutoTokenizer.from_pretrained(cache / "fast" / "base")
    built = build_tokenizer(tokenizer_corpus(TinyRecipe().fast()), TinyRecipe().fast().model.vocab_size)
    text = "User: Compute $12 \\times 15$. Elijah said, \"Ethan is a knave.\"\n<think> 12 x = 180 </think>"
    assert loaded(text)["input_ids"] == built(text)["input_ids"]


def test_shipped_models_are_the_default_recipe_and_small():
    """The committed models are what `mdrl tiny build` makes from the recipe in the repo (a changed recipe
    without a rebuild fails here), within the 10 MB budget, and `ready_models` serves them."""
    from mdrl.tiny.recipe import SHIPPED_DIR, ready_models

    record = read_built(SHIPPED_DIR, TinyRecipe())
    assert record is not None, "src/mdrl/tiny/shipped is stale: rebuild with `mdrl tiny build -o ...`"
    size = sum(f.stat().st_size for f in SHIPPED_DIR.rglob("*") if f.is_file())
    assert size <= 10_000_000, size
    folder, served = ready_models(build=lambda *_: pytest.fail("the shipped models must not be rebuilt"))
    assert folder == SHIPPED_DIR and served == record


def test_ready_models_builds_once_in_the_cache_for_another_recipe(tmp_path, fast_models):
    from mdrl.tiny.recipe import ready_models

    cache, record = fast_models
    calls = []
    folder, served = ready_models(cache / "fast", TinyRecipe().fast(),
                                  build=lambda where, recipe: calls.append(where) or build_models(where, recipe))
    assert folder == cache / "fast" and served == record and calls == [cache / "fast"]


def test_recipe_round_trips_through_json():
    recipe = TinyRecipe()
    assert TinyRecipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe


def test_demo_config_points_tiny_models_at_the_cache(tmp_path):
    small = StudyConfig.from_mapping(demo_config(tmp_path))
    assert {m.path for m in small.models} <= {str(tmp_path / "base"), str(tmp_path / "instruct")}
    full = StudyConfig.from_mapping(demo_config(tmp_path, full=True))
    assert {m.path for m in full.models} == {str(tmp_path / "base"), str(tmp_path / "instruct")}
    assert {m.name for m in full.mixtures} == {"math", "code", "puzzle", "math+code", "math+puzzle",
                                               "code+puzzle", "math+code+puzzle"}
    assert len(full.cells()) == 2 * 7 * 3 and len(full.baselines()) == 2
    assert len(small.cells()) < len(full.cells())
    # --full retrains none of the default demo's cells; it re-evaluates them with two samples per item
    demo_training = {cell.cell_id: small.train_settings(cell) for cell in small.cells()}
    reused = [cell for cell in full.cells() if cell.cell_id in demo_training]
    assert len(reused) == len(small.cells())
    assert all(full.train_settings(cell) == demo_training[cell.cell_id] for cell in reused)
    assert (small.eval.sampling.get("n", 1), full.eval.sampling["n"]) == (1, 2)


def test_demo_cli_builds_once_runs_the_grid_and_prints_the_report(fast_models, tmp_path):
    cache, _ = fast_models
    CALLS.clear()
    args = ["demo", "--fast", "--cache-dir", str(cache), "--out", str(tmp_path / "study"), "--no-progress",
            "--runner", "test_demo:RecordingRunner", "--workers", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "reusing" in result.output  # the models built by the fixture are the cache
    assert ("model", str(cache / "fast" / "base")) in CALLS
    assert [c for c in CALLS if c[0] == "train"] == [("train", "math:r1-base")]
    report = Path(result.output.strip().splitlines()[-1].removeprefix("report: "))
    assert report.is_file() and report.suffix == ".html"
    results = json.loads((tmp_path / "study" / "results.json").read_text())
    assert "math" in json.dumps(results)
    assert "| base | math:0 |" in result.output  # the accuracy table of the tiny models

    CALLS.clear()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert not [c for c in CALLS if c[0] == "train"]  # resumed: the finished cell is skipped
    assert "skipped 2" in again.output


def test_tiny_build_cli_reuses_a_finished_build(fast_models):
    cache, record = fast_models
    result = CliRunner().invoke(app, ["tiny", "build", "--fast", "--out", str(cache / "fast"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "reusing" in result.output
    assert f"{record['parameters']:,} parameters" in result.output
    assert "| instruct | knights_knaves:2 |" in result.output


def test_fast_recipe_is_deterministic(fast_models, tmp_path):
    cache, _ = fast_models
    build_models(tmp_path / "again", TinyRecipe().fast())
    for flavour in ("base", "instruct"):
        assert (tmp_path / "again" / flavour / "model.safetensors").read_bytes() == \
            (cache / "fast" / flavour / "model.safetensors").read_bytes()


def test_a_new_instruct_stage_reuses_the_base_model_and_matches_a_full_build(fast_models, tmp_path):
    import shutil
    from dataclasses import replace

    from mdrl.tiny.recipe import finished_base

    cache, _ = fast_models
    recipe = TinyRecipe().fast()
    changed = replace(recipe, instruct=replace(recipe.instruct, steps=3, sources=("code:1",)))
    assert finished_base(cache / "fast", changed) is not None
    assert finished_base(cache / "fast", replace(recipe, base=replace(recipe.base, steps=3))) is None
    shutil.copytree(cache / "fast", tmp_path / "reused")
    base_file = tmp_path / "reused" / "base" / "model.safetensors"
    base_written = base_file.stat().st_mtime_ns
    steps: list[str] = []
    reused = build_models(tmp_path / "reused", changed, on_step=lambda stage, *_: steps.append(stage))
    assert steps == ["instruct"] * 3 and base_file.stat().st_mtime_ns == base_written
    scratch = build_models(tmp_path / "scratch", changed)
    assert (tmp_path / "reused" / "instruct" / "model.safetensors").read_bytes() == \
        (tmp_path / "scratch" / "instruct" / "model.safetensors").read_bytes()
    assert (reused["key"], reused["accuracy"]) == (scratch["key"], scratch["accuracy"])
    assert read_built(tmp_path / "reused", changed) is not None


@pytest.mark.slow
def test_real_demo_runs_end_to_end(tmp_path):
    """The real thing: the default demo grid on the tiny models, ending with the report path. Its time is a
    benchmark (README: `time mdrl demo`), not asserted here."""
    env = {**os.environ, "MDRL_CACHE_DIR": str(tmp_path / "cache")}
    result = CliRunner(env=env).invoke(app, ["demo", "--out", str(tmp_path / "study"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert Path(result.output.strip().splitlines()[-1].removeprefix("report: ")).is_file()
