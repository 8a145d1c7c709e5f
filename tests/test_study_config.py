"""study.yaml: parsing, validation, grid expansion, each cell's mdrl.train config, the packaged presets,
and the `mdrl study` command on them (dry run)."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from mdrl.cli import app
from mdrl.commands.study import preset_path, study_presets
from mdrl.study import StudyConfig, StudyConfigError, subsets
from mdrl.study.config import config_hash

MINIMAL = {"models": ["Qwen/Qwen2.5-7B", "Qwen/Qwen2.5-7B-Instruct"], "mixtures": ["math"], "suites": ["math500"]}


def config(**changes) -> StudyConfig:
    return StudyConfig.from_mapping({**MINIMAL, **changes})


def test_subsets_are_singles_pairs_then_the_triple():
    names = [m.name for m in subsets(["math", "code", "puzzle"])]
    assert names == ["math", "code", "puzzle", "math+code", "math+puzzle", "code+puzzle", "math+code+puzzle"]
    assert [m.name for m in subsets(["a", "b", "c"], [2])] == ["a+b", "a+c", "b+c"]
    assert config(mixtures={"subsets_of": ["math", "puzzle"]}).mixtures[2].mix == "math:1,puzzle:1"


def test_grid_size_templates_and_ids():
    study = config(mixtures={"subsets_of": ["math", "code"]}, seeds=[0, 1, 2], curriculum=[False, True],
                   rewards=["default", "proportional"])
    cells = study.cells()
    assert len(cells) == 2 * 3 * 3 * 2 * 2          # models x mixtures x seeds x curricula x rewards
    assert {(c.model.kind, c.template) for c in cells} == {("base", "r1-base"), ("instruct", "chat")}
    assert {c.curriculum for c in cells} == {"none", "difficulty"}
    assert len({c.cell_id for c in cells}) == len(cells)
    assert [b.cell_id for b in study.baselines()] == ["Qwen2.5-7B__r1-base__en", "Qwen2.5-7B-Instruct__chat__en"]
    assert config(baseline=False).baselines() == []


def test_weighted_mixtures_and_rewards():
    study = config(mixtures=["math:2+code:1", {"name": "mostly-kk", "mix": {"knights_knaves": 3, "zebra": 1}}],
                   rewards=["default", "proportional", {"name": "fmt", "format_weight": 0.1}])
    assert [m.mix for m in study.mixtures] == ["math:2,code:1", "knights_knaves:3,zebra:1"]
    assert study.mixtures[1].name == "mostly-kk"
    default, proportional, fmt = study.rewards
    assert default.reward_config() is None
    assert proportional.reward_config().mode == "proportional"
    assert (fmt.reward_config().mode, fmt.reward_config().format_weight) == ("binary", 0.1)


@pytest.mark.parametrize("changes,message", [
    ({"suits": ["x"]}, "did you mean 'suites'"),
    ({"templates": ["r2"]}, "templates"),
    ({"seeds": [0, 0]}, "repeated"),
    ({"curriculum": ["sometimes"]}, "curriculum"),
    ({"rewards": [{"name": "x", "mode": "partial"}]}, "reward 'x'"),
    ({"mixtures": ["math:-1"]}, "mixture"),
    ({"templates": ["auto", "r1-base", "chat"]}, "names some cells twice"),
    ({"eval": {"sampling": {"temprature": 0.5}}}, "did you mean 'temperature'"),
    ({"eval": {"sampling": {"n": 4}}}, "temperature"),   # n > 1 needs sampling
    ({"data": {"weighting": "natural", "sources": ["paper:kk"]}}, "mapping"),
    ({"suites": []}, "suites"),
    ({"design": "fractional"}, "design"),
    ({"eval": {"templates": ["chat", "r2"]}}, "eval.templates"),
])
def test_bad_configs_say_what_is_wrong(changes, message):
    with pytest.raises(StudyConfigError, match=message):
        config(**changes)


def test_cell_train_config_lays_the_cell_over_the_train_section():
    study = config(mixtures=["math+puzzle"], rewards=[{"name": "prop", "mode": "proportional"}], seeds=[3],
                   data={"weighting": "natural", "n": 100,
                         "sources": {"math": ["paper:deepscaler", "paper:countdown"], "puzzle": ["paper:kk"],
                                     "code": ["paper:code"]}},
                   train={"engine": "verl", "grpo": {"learning_rate": 1e-6, "seed": 99}, "reward": {"workers": 4}})
    base, instruct = study.cells()
    settings = study.train_settings(instruct)
    assert settings["engine"] == "verl" and settings["name"] == instruct.cell_id
    assert settings["model"] == {"path": "Qwen/Qwen2.5-7B-Instruct"}
    assert settings["grpo"] == {"learning_rate": 1e-6, "seed": 3}            # the cell's seed wins
    assert settings["reward"] == {"workers": 4, "mode": "proportional", "format_weight": 0.0}
    assert settings["data"] == {"sources": ["paper:deepscaler", "paper:countdown", "paper:kk"], "mix": None,
                                "n": 100, "template": "chat", "lang": "en", "curriculum": "none", "seed": 3}
    assert study.train_settings(base)["data"]["template"] == "r1-base"
    equal = config(mixtures=["math+puzzle"], data={"sources": ["paper:kk", {"kind": "generate", "domain": "zebra"}]})
    data = equal.train_settings(equal.cells()[0])["data"]
    assert data["mix"] == "math:1,puzzle:1" and data["sources"] == ["paper:kk", "gen:zebra"]


def test_a_reward_variant_replaces_the_train_sections_per_domain_rewards():
    train = {"reward": {"domains": {"knights_knaves": {"mode": "proportional"}}, "workers": 2}}
    study = config(rewards=["default", "binary"], train=train)
    by_reward = {cell.reward.name: study.train_settings(cell)["reward"] for cell in study.cells()}
    assert by_reward["default"] == train["reward"]
    assert by_reward["binary"] == {"workers": 2, "mode": "binary", "format_weight": 0.0}


def test_config_hash_follows_settings():
    study = config()
    cell = study.cells()[0]
    assert config_hash(study.train_settings(cell)) == config_hash(config().train_settings(config().cells()[0]))
    changed = config(train={"grpo": {"learning_rate": 2e-6}})
    assert config_hash(study.train_settings(cell)) != config_hash(changed.train_settings(changed.cells()[0]))


def test_paper_preset_mirrors_the_study():
    study = StudyConfig.from_yaml(preset_path("paper"))
    assert {(m.path, m.kind) for m in study.models} == {("Qwen/Qwen2.5-7B", "base"),
                                                         ("Qwen/Qwen2.5-7B-Instruct", "instruct")}
    assert [m.name for m in study.mixtures] == ["math", "code", "puzzle", "math+code", "math+puzzle",
                                                "code+puzzle", "math+code+puzzle"]
    assert list(study.suites) == ["math500", "aime24", "countdown", "humaneval", "mbpp", "kk", "zebra"]
    assert len(study.cells()) == 14 and len(study.baselines()) == 2
    settings = study.train_settings(next(c for c in study.cells() if c.mixture.name == "math+code"))
    assert settings["engine"] == "verl"
    grpo = settings["grpo"]
    assert (grpo["learning_rate"], grpo["train_batch_size"], grpo["num_generations"], grpo["epochs"]) == \
        (1e-6, 256, 5, 10)
    assert (grpo["beta"], grpo["max_prompt_length"], grpo["max_completion_length"]) == (0.001, 512, 8192)
    assert settings["data"]["mix"] is None   # whole files, as the study concatenated them
    assert settings["data"]["sources"] == ["paper:deepscaler?on_error=skip", "paper:countdown", "paper:code"]


@pytest.mark.parametrize("name", ["paper", "tiny", "tiny-factors"])
def test_every_cell_of_the_presets_is_a_valid_train_config(name):
    train_config = pytest.importorskip("mdrl.train.config")
    study = StudyConfig.from_yaml(preset_path(name))
    for cell in study.cells():
        parsed = train_config.TrainConfig.from_dict(study.train_settings(cell))
        assert parsed.data.template == cell.template and parsed.grpo.seed == cell.seed


def test_presets_are_listed():
    assert {"paper", "tiny"} <= set(study_presets())


def test_cli_dry_run_on_the_paper_preset(tmp_path, monkeypatch):
    # the shared data holds the released test files but not every train file (or is absent, on a fresh
    # clone): the dry run says which
    monkeypatch.delenv("MDRL_SHARED_DATA", raising=False)
    result = CliRunner().invoke(app, ["study", "--preset", "paper", "--dry-run", "--out", str(tmp_path / "p")])
    if result.exit_code != 0:
        assert ("no study file" in result.output and "train.parquet" in result.output) or \
            "data folder was not found" in result.output, result.output
    # with every train file present, the dry run lists the grid
    fake = tmp_path / "shared"
    for folder in ("countdown", "deepscaler", "kk", "zebra", "code-r1-12k"):
        (fake / "paper" / folder).mkdir(parents=True)
        (fake / "paper" / folder / "train.parquet").write_bytes(b"")
    monkeypatch.setenv("MDRL_SHARED_DATA", str(fake))
    result = CliRunner().invoke(app, ["study", "--preset", "paper", "--dry-run", "--out", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    assert "paper: 16 jobs" in result.output
    assert "skipped 0 finished cells, running 16 (2 baseline evaluations)" in result.output
    assert result.output.count("run       cell") == 14
    assert not (tmp_path / "p").exists()  # a dry run writes nothing


def test_cli_rejects_a_bad_config(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**MINIMAL, "mixtures": ["math+chemistry"]}))
    result = CliRunner().invoke(app, ["study", "--config", str(path), "--dry-run", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    bad_train = tmp_path / "train.yaml"
    bad_train.write_text(yaml.safe_dump({**MINIMAL, "train": {"grpo": {"learning_rat": 1e-6}}}))
    result = CliRunner().invoke(app, ["study", "--config", str(bad_train), "--dry-run", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "grpo.learning_rate" in result.output


def test_a_zero_weight_drops_a_key_from_the_mixture():
    """"math:1,countdown:0" trains on the math domain alone: the synergy matrix must see one key."""
    config = StudyConfig.from_mapping({"models": ["m"], "suites": ["math500"],
                                       "mixtures": [{"name": "math", "mix": "math:1,countdown:0"}]})
    [mixture] = config.mixtures
    assert mixture.keys == ("math",) and mixture.mix == "math:1,countdown:0"


def test_train_settings_pass_nproc_through_to_every_cell(tmp_path):
    from mdrl.study.runner import train_config

    study = config(train={"engine": "trl", "run": {"nproc": 2}})
    for cell in study.cells():
        settings = study.train_settings(cell)
        assert train_config(settings, "some/model", tmp_path).run.nproc == 2


def test_one_at_a_time_varies_each_factor_alone_from_the_reference():
    study = config(design="one-at-a-time", mixtures=["math", "code"], seeds=[0, 1], curriculum=["none", "difficulty"],
                   rewards=["default", "binary", "proportional"], langs=["en", "zh"])
    cells = study.cells()
    # per mixture and seed: the reference, the other model, 2 other rewards, the curriculum, zh
    assert len(cells) == 2 * 2 * (1 + 1 + 2 + 1 + 1)
    reference = ("Qwen2.5-7B", "default", "none", "en")
    for cell in cells:
        moved = [a for a, b in zip((cell.model.name, cell.reward.name, cell.curriculum, cell.lang), reference) if a != b]
        assert len(moved) <= 1, cell.cell_id
    assert {(b.model.name, b.template, b.lang) for b in study.baselines()} == {
        ("Qwen2.5-7B", "r1-base", "en"), ("Qwen2.5-7B", "r1-base", "zh"), ("Qwen2.5-7B-Instruct", "chat", "en")}
    assert len(config(mixtures=["math", "code"], seeds=[0, 1], curriculum=["none", "difficulty"],
                      rewards=["default", "binary", "proportional"], langs=["en", "zh"]).cells()) == 2 * 2 * 2 * 3 * 2 * 2


def test_eval_templates_add_baselines_but_not_cells_or_eval_keys():
    plain = config()
    wide = config(eval={"templates": ["auto", "plain"]})
    assert len(wide.cells()) == len(plain.cells())
    assert {(b.model.kind, b.template) for b in wide.baselines()} == {
        ("base", "r1-base"), ("base", "plain"), ("instruct", "chat"), ("instruct", "plain")}
    base_cell = next(c for c in wide.cells() if c.model.kind == "base")
    assert wide.eval_templates(base_cell) == ["plain"]   # auto is the cell's own template
    # adding an evaluation template keeps every finished evaluation: it is planned on its own
    assert wide.eval_settings("chat", "en") == plain.eval_settings("chat", "en")


def test_cli_dry_run_lists_the_five_factor_axes(tmp_path):
    result = CliRunner().invoke(app, ["study", "--preset", "tiny-factors", "--dry-run", "--out", str(tmp_path / "f")])
    assert result.exit_code == 0, result.output
    assert "design: one-at-a-time, 24 cells, 6 baselines" in result.output
    for axis in ("SFT (starting model):", "template (eval):", "curriculum:", "reward:", "language:"):
        assert axis in result.output
    assert "instruct__code__default__chat__none__zh__seed10 (+ eval templates: r1-base)" in result.output
    assert result.output.count("run       cell") == 24
