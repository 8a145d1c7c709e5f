"""One vocabulary for settings: each shared field is declared once (mdrl.specs), every command embeds
it, its CLI help is the field's, `--set` reaches it, and old spellings still work with a warning."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
from typer.testing import CliRunner

from mdrl.cli import app
from mdrl.commands import data as data_command
from mdrl.commands import eval as eval_command
from mdrl.commands import score as score_command
from mdrl.commands import serve as serve_command
from mdrl.commands import study as study_command
from mdrl.commands import train as train_command
from mdrl.commands.options import flag_of
from mdrl.data.build import BuildConfig
from mdrl.eval.runner import EvalOptions
from mdrl.specs import (BuildSpec, DataSpec, EvalSpec, RewardSpec, SamplingConfig, ServeConfig, difficulty_map,
                        field_help)
from mdrl.study.config import DataSettings as StudyData
from mdrl.study.config import EvalSettings as StudyEval
from mdrl.study.config import MixtureSpec, ModelSpec, RewardVariant, StudyConfig
from mdrl.train import config as train_config
from mdrl.train.config import DataSettings as TrainData
from mdrl.train.config import RewardSettings

runner = CliRunner()


def _help(cls, name):
    return next(f for f in dataclasses.fields(cls) if f.name == name).metadata["help"]


@pytest.mark.parametrize("cls, spec", [(BuildConfig, BuildSpec), (TrainData, DataSpec), (EvalOptions, EvalSpec),
                                       (StudyEval, EvalSpec)])
def test_commands_extend_the_specs_so_each_field_is_declared_once(cls, spec):
    assert issubclass(cls, spec)
    for field in dataclasses.fields(spec):
        assert _help(cls, field.name) == field.metadata["help"], field.name


@pytest.mark.parametrize("cls, spec, names", [(StudyData, DataSpec, ("n", "difficulty")),
                                              (RewardSettings, RewardSpec, ("mode", "format_weight")),
                                              (RewardVariant, RewardSpec, ("mode", "format_weight"))])
def test_settings_that_take_single_fields_reuse_their_declaration(cls, spec, names):
    for name in names:
        assert field_help(spec, name) in _help(cls, name)


def test_difficulty_has_one_form():
    expected = {"countdown": "3-4", "knights_knaves": "3,5"}
    for spelling in (expected, ["countdown=3-4", "knights_knaves=3,5"], [("countdown", "3-4"), ("knights_knaves", [3, 5])]):
        assert difficulty_map(spelling) == expected
    assert TrainData(difficulty={"countdown": "3-4"}).difficulty == BuildConfig(difficulty=["countdown=3-4"]).difficulty
    assert BuildConfig(difficulty=(("countdown", (3, 4)),)).levels_for("countdown") == (3, 4)
    with pytest.raises(ValueError, match="bad difficulty"):
        difficulty_map(["countdown=3-x"])


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("command, cls, names", [
    (["data", "build"], BuildSpec, ("mix", "n", "seed", "split", "skip_bad_rows")),
    (["eval", "run"], EvalSpec, ("limit", "gen_n", "data_root", "score_workers")),
    (["eval", "run"], SamplingConfig, ("temperature", "top_p", "max_new_tokens")),
    (["score"], RewardSpec, ("format_weight",)),
    (["serve"], ServeConfig, ("host", "chunk_size", "request_timeout_s", "data_source")),
])
def test_cli_help_is_the_field_help(command, cls, names):
    shown = _flat(runner.invoke(app, [*command, "--help"], terminal_width=10_000).output)
    for name in names:
        assert _flat(field_help(cls, name)) in shown, name


def test_set_overrides_reach_the_build_and_the_study(tmp_path):
    result = runner.invoke(app, ["data", "build", "--mix", "countdown:1", "--n", "4", "--set", "difficulty.countdown=3",
                                 "--set", "split=dev", "--out", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["config"]["difficulty"] == {"countdown": [3]} and (tmp_path / "d" / "dev.parquet").is_file()
    result = runner.invoke(app, ["study", "--preset", "tiny", "--dry-run", "--set", "seeds=[5]", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "seed5" in result.output and "seed10" not in result.output
    bad = runner.invoke(app, ["study", "--preset", "tiny", "--dry-run", "--set", "seedz=[5]", "--out", str(tmp_path / "s")])
    assert bad.exit_code != 0 and "seedz" in bad.output


def test_old_spellings_work_with_a_warning(tmp_path, caplog):
    from mdrl.data.sources import SourceSpec

    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"data_source": "countdown", "solution_str": "<think>.</think><answer>1+2</answer>",
                                "ground_truth": {"target": 3, "numbers": [1, 2]}}) + "\n")
    with caplog.at_level(logging.WARNING):
        old = runner.invoke(app, ["score", "-i", str(rows), "--format-reward", "0.5"])
    new = runner.invoke(app, ["score", "-i", str(rows), "--format-weight", "0.5"])
    assert old.exit_code == new.exit_code == 0
    def first_row(output: str) -> dict:
        return json.loads(next(line for line in output.splitlines() if line.startswith("{")))

    assert first_row(old.output) == first_row(new.output) and first_row(new.output)["format"] == 1.0
    assert "--format-reward is deprecated" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert SourceSpec.parse("generate:countdown:3?n=4") == SourceSpec.parse("gen:countdown:3?n=4")
    assert "deprecated" in caplog.text


# --------------------------------------------------------------------------- one declaration per field

SPECS = (DataSpec, BuildSpec, EvalSpec, RewardSpec, SamplingConfig)
#: Every settings class a command reads (train, study, data build, eval run, serve).
SETTINGS = (BuildConfig, train_config.TrainConfig, train_config.ModelSettings, train_config.WarmupConfig,
            TrainData, RewardSettings, train_config.GRPOSettings, train_config.RunSettings,
            train_config.VerlSettings, StudyConfig, ModelSpec, MixtureSpec, RewardVariant, StudyData, StudyEval,
            EvalOptions, ServeConfig)
#: Fields that share a spec field's name but are another setting (each says why).
OTHER_SETTINGS = {
    (StudyData, "sources"): "sources per mixture key (a mapping), turned into each cell's DataSpec.sources",
    (StudyConfig, "curriculum"): "a grid axis: the orders the cells cross",
    (train_config.GRPOSettings, "temperature"): "the rollout policy of training, not evaluation sampling",
    (train_config.GRPOSettings, "top_p"): "the rollout policy of training, not evaluation sampling",
    (train_config.GRPOSettings, "seed"): "the seed of training itself",
    (train_config.WarmupConfig, "template"): "the tiny model's supervised warm-up, not the GRPO data",
    (train_config.WarmupConfig, "lang"): "the tiny model's supervised warm-up, not the GRPO data",
    (train_config.WarmupConfig, "seed"): "the tiny model's supervised warm-up, not the GRPO data",
    (train_config.WarmupConfig, "temperature"): "the warm-up's success measurement",
    (train_config.WarmupConfig, "max_new_tokens"): "the warm-up's success measurement",
}


def _declared(cls):
    """The fields `cls` declares itself (not the ones it inherits from a spec)."""
    own = cls.__dict__.get("__annotations__", {})
    return [f for f in dataclasses.fields(cls) if f.name in own]


def test_each_spec_field_is_declared_once():
    assert len({f.name for f in dataclasses.fields(DataSpec)}) >= 9
    declared_by_specs: dict[str, list] = {}
    for spec in SPECS:
        for field in _declared(spec):
            assert field.metadata.get("help"), f"{spec.__name__}.{field.name} has no help"
            declared_by_specs.setdefault(field.name, []).append(field)
    # the data, evaluation and reward vocabularies share no name (sampling's n and seed are per prompt)
    shared = {name for name, found in declared_by_specs.items() if len(found) > 1}
    assert shared == {"n", "seed"}, shared
    for cls in SETTINGS:
        for field in _declared(cls):
            if field.name not in declared_by_specs or (cls, field.name) in OTHER_SETTINGS:
                continue
            # taken from the spec (spec_field) or an optional override of it that quotes its help
            text = field.metadata.get("help", "")
            assert any(spec_field.metadata["help"] in text for spec_field in declared_by_specs[field.name]), \
                f"{cls.__name__}.{field.name} declares the spec field {field.name} again"


def test_the_reward_vocabulary_is_one_class_under_both_names():
    import mdrl
    from mdrl.verify import RewardConfig

    assert RewardConfig is RewardSpec is mdrl.RewardSpec and RewardSpec.__name__ == "RewardSpec"
    row = ("countdown", "<think>.</think><answer>1+2</answer>", {"target": 3, "numbers": [1, 2]})
    as_spec = mdrl.compute_score(*row, reward=RewardSpec("proportional", 0.5))
    assert as_spec == mdrl.compute_score(*row, reward={"mode": "proportional", "format_weight": 0.5})
    assert mdrl.compute_score(*row, reward="proportional")["score"] == 1.0 and as_spec["format"] == 1.0


def test_difficulty_old_spellings_normalise_in_the_study():
    base = {"models": ["tiny:base"], "suites": ["gen:countdown:3:4:7"], "mixtures": ["countdown:1"]}
    for spelling in ({"countdown": [3, 4]}, {"countdown": "3-4"}, ["countdown=3-4"]):
        study = StudyConfig.from_mapping({**base, "data": {"difficulty": spelling}})
        data = study.train_settings(study.cells()[0])["data"]
        assert TrainData(**{k: v for k, v in data.items() if k != "mix"}).levels_for("countdown") == (3, 4)
    with pytest.raises(ValueError, match="per domain"):
        StudyConfig.from_mapping({**base, "data": {"difficulty": [3, 4]}})
    with pytest.raises(ValueError, match="data.extra"):
        StudyConfig.from_mapping({**base, "data": {"extra": {"allow_repeats": True}}})


# --------------------------------------------------------------------------- options from the fields

#: command -> (its function, the settings classes its options set)
COMMANDS = {
    "score": (score_command.score, (RewardSpec,)),
    "train": (train_command.train, (train_config.TrainConfig, train_config.ModelSettings, TrainData,
                                    train_config.GRPOSettings, train_config.RunSettings)),
    "serve": (serve_command.serve, (ServeConfig, RewardSpec)),
    "study": (study_command.study, ()),
    "data build": (data_command.build, (BuildSpec,)),
    "eval run": (eval_command.run, (EvalOptions, SamplingConfig, RewardSpec)),
}


def _click_command(path):
    import typer

    command = typer.main.get_command(app)
    for part in path.split():
        command = command.commands[part]
    return command


@pytest.mark.parametrize("name", COMMANDS)
def test_each_option_help_is_its_field_help(name):
    import inspect

    function, classes = COMMANDS[name]
    params = {p.name: p for p in _click_command(name).params}
    checked = 0
    for param_name, parameter in inspect.signature(function).parameters.items():
        info = parameter.default
        target = getattr(info, "mdrl_field", None)
        if target is None:
            # an option spelled like a field of the command's settings must be derived from it
            flags = getattr(info, "param_decls", ()) or ()
            for cls in classes:
                for field in dataclasses.fields(cls):
                    flag = flag_of(field.name)
                    assert flag not in flags, f"{name} {flag} is declared by hand"
            continue
        cls, field_name = target
        text = params[param_name].help
        assert field_help(cls, field_name) in text and text == info.help, (name, param_name)
        checked += 1
    assert checked or not classes
    shown = _flat(runner.invoke(app, [*name.split(), "--help"], terminal_width=10_000).output)
    for param_name, parameter in inspect.signature(function).parameters.items():
        if getattr(parameter.default, "mdrl_field", None) and not params[param_name].hidden:
            assert _flat(parameter.default.help) in shown, (name, param_name)


def test_set_reaches_train_eval_and_serve(tmp_path, monkeypatch):
    import yaml

    import mdrl.eval.runner
    import mdrl.serve

    result = runner.invoke(app, ["train", "-p", "tiny", "--dry-run", "--set", "data.seed=7",
                                 "--set", "data.difficulty.knights_knaves=[2, 3]",
                                 "--set", "reward.format_weight=0.1"])
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.output)
    assert resolved["data"]["seed"] == 7 and resolved["data"]["difficulty"] == {"knights_knaves": "2,3"}
    assert resolved["reward"]["format_weight"] == 0.1

    seen = {}
    monkeypatch.setattr(mdrl.eval.runner, "evaluate",
                        lambda *args, **kwargs: seen.update(args=args, **kwargs) or {"runs": [], "table": ""})
    result = runner.invoke(app, ["eval", "run", "-m", "m", "-s", "kk", "-o", str(tmp_path / "e"),
                                 "--limit", "3", "--temperature", "0.5", "--n", "2",
                                 "--set", "sampling.max_new_tokens=9",
                                 "--set", "reward=proportional", "--set", "gen_seed=11", "--set", "limit=4"])
    assert result.exit_code == 0, result.output
    options, (template, sampling) = seen["options"], seen["args"][2:4]
    assert (options.limit, options.gen_seed, options.reward) == (4, 11, RewardSpec("proportional"))
    assert (sampling.temperature, sampling.n, sampling.max_new_tokens, template) == (0.5, 2, 9, "r1-base")
    bad = runner.invoke(app, ["eval", "run", "-m", "m", "-s", "kk", "--set", "temperature=0.5"])
    assert bad.exit_code == 2 and "sampling.temperature" in bad.output

    configs = []
    monkeypatch.setattr(mdrl.serve, "serve", lambda config, on_bound=None: configs.append(config))
    result = runner.invoke(app, ["serve", "--port", "0", "--max-batch", "7", "--set", "chunk_size=3",
                                 "--set", "reward.format_weight=0.2", "--set", "request_timeout_s=5"])
    assert result.exit_code == 0, result.output
    config = configs[-1]
    assert (config.port, config.max_batch, config.chunk_size, config.request_timeout_s) == (0, 7, 3, 5.0)
    assert dict(config.reward) == {"format_weight": 0.2}
    result = runner.invoke(app, ["serve", "--set", "reward=proportional", "--set", "max_body_bytes=2048"])
    assert result.exit_code == 0, result.output
    assert dict(configs[-1].reward) == {"mode": "proportional", "format_weight": 0.0}
    assert configs[-1].max_body_bytes == 2048 and configs[-1].port == ServeConfig.port


def test_list_options_lists_every_field_without_the_required_options():
    for command, keys in ((["eval", "run"], ("limit", "sampling.temperature", "lang")),
                          (["data", "build"], ("difficulty", "mixed_language", "ground_truth_format")),
                          (["serve"], ("request_timeout_s", "reward")),
                          (["train"], ("data.difficulty", "reward.format_weight"))):
        result = runner.invoke(app, [*command, "--list-options"])
        assert result.exit_code == 0, result.output
        listed = {line.split()[0] for line in result.output.splitlines() if line.strip()}
        assert set(keys) <= listed, (command, keys)


def test_deprecated_options_warn_and_work(tmp_path, monkeypatch, caplog):
    import mdrl.eval.runner
    import mdrl.serve

    seen = {}
    monkeypatch.setattr(mdrl.eval.runner, "evaluate", lambda *args, **kwargs: seen.update(args=args) or
                        {"runs": [], "table": ""})
    with caplog.at_level(logging.WARNING):
        result = runner.invoke(app, ["eval", "run", "-m", "m", "-s", "kk", "-o", str(tmp_path / "e"),
                                     "--template-grid", "r1-base,plain"])
    assert result.exit_code == 0, result.output
    assert seen["args"][2] == "r1-base,plain" and "--template-grid is deprecated" in caplog.text
    both = runner.invoke(app, ["eval", "run", "-m", "m", "-s", "kk", "--template-grid", "plain",
                               "-t", "chat"])
    assert both.exit_code == 2 and "--template only" in _flat(both.output)

    configs = []
    monkeypatch.setattr(mdrl.serve, "serve", lambda config, on_bound=None: configs.append(config))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        result = runner.invoke(app, ["serve", "--format-reward", "0.3"])
    assert result.exit_code == 0, result.output
    assert dict(configs[-1].reward) == {"format_weight": 0.3}
    assert "--format-reward is deprecated" in caplog.text
    assert "--format-reward" not in runner.invoke(app, ["serve", "--help"]).output
