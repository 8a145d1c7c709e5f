"""Training config: presets, files, dotted overrides, validation, and the saved resolved config."""

from __future__ import annotations

import pytest
import yaml

from mdrl.specs import apply_overrides, describe_options, parse_override
from mdrl.train.config import (
    GRPOSettings,
    RewardSettings,
    TrainConfig,
    load_config,
    preset_names,
    read_preset,
)
from mdrl.train.run import config_differences
from mdrl.verify.shaping import RewardConfig


def test_presets_are_packaged_and_valid():
    names = preset_names()
    assert {"paper", "paper-instruct", "paper-curriculum", "tiny"} <= set(names)
    for name in names:
        assert load_config(name).name == name


def test_paper_preset_has_the_study_hyperparameters():
    config = load_config("paper")
    assert config.engine == "verl"
    assert config.model.path == "Qwen/Qwen2.5-7B"
    grpo = config.grpo
    assert (grpo.train_batch_size, grpo.num_generations, grpo.mini_batch_size) == (256, 5, 32)
    assert (grpo.max_prompt_length, grpo.max_completion_length, grpo.epochs) == (512, 8192, 10)
    assert grpo.learning_rate == pytest.approx(1e-6)
    assert grpo.beta == pytest.approx(0.001)  # kl_loss_coef, low_var_kl
    assert grpo.updates_per_rollout == 8
    assert (config.verl.n_gpus_per_node, config.verl.nnodes) == (8, 1)
    assert config.data.template == "r1-base" and config.data.shuffled


def test_extends_chain_merges_nested_sections():
    instruct = load_config("paper-instruct")
    assert instruct.model.path == "Qwen/Qwen2.5-7B-Instruct" and instruct.data.template == "chat"
    assert instruct.grpo.train_batch_size == 256  # inherited
    curriculum = load_config("paper-curriculum")
    assert curriculum.data.curriculum == "difficulty" and curriculum.data.shuffled is False
    assert curriculum.data.difficulty == {"knights_knaves": "3-7"}


@pytest.mark.parametrize(
    "text,path,value",
    [
        ("grpo.learning_rate=1e-5", ["grpo", "learning_rate"], "1e-5"),  # YAML 1.1: a string, coerced later
        ("grpo.epochs=3", ["grpo", "epochs"], 3),
        ("data.sources=[paper:kk, paper:zebra]", ["data", "sources"], ["paper:kk", "paper:zebra"]),
        ("data.mix=math:1,puzzle:1", ["data", "mix"], "math:1,puzzle:1"),
        ("data.shuffle=false", ["data", "shuffle"], False),
        ("grpo.max_steps=", ["grpo", "max_steps"], None),
    ],
)
def test_parse_override(text, path, value):
    assert parse_override(text) == (path, value)


def test_overrides_coerce_types_and_win_over_the_file(tmp_path):
    file = tmp_path / "run.yaml"
    file.write_text(yaml.safe_dump({"extends": "tiny", "grpo": {"learning_rate": 1e-4, "epochs": 2}}))
    config = load_config(
        config_file=file,
        overrides=["grpo.learning_rate=1e-5", "reward.workers=4", "data.difficulty.knights_knaves=3-4"],
    )
    assert config.grpo.learning_rate == pytest.approx(1e-5) and isinstance(config.grpo.learning_rate, float)
    assert config.grpo.epochs == 2  # from the file
    assert config.model.path == "tiny"  # from the preset it extends
    assert config.reward.workers == 4
    assert config.data.difficulty == {"knights_knaves": "3-4"}


@pytest.mark.parametrize(
    "override,message",
    [
        ("grpo.learnin_rate=1", "Did you mean grpo.learning_rate"),
        ("grpo.epochs=many", "expected an integer"),
        ("grpo.num_generations=1", "at least 2"),
        ("engine=deepspeed", "engine must be one of"),
        ("data.curriculum=hardest", "data.curriculum must be one of"),
        ("grpo.mini_batch_size=3", "multiple of"),
        ("reward.domains.knights_knaves.mode=partial", "binary"),
    ],
)
def test_bad_settings_fail_with_a_clear_message(override, message):
    with pytest.raises(ValueError, match=message):
        load_config("tiny", overrides=[override])


def test_curriculum_refuses_shuffling():
    with pytest.raises(ValueError, match="contradicts a curriculum"):
        load_config("tiny", overrides=["data.curriculum=difficulty", "data.shuffle=true"])
    assert load_config("tiny", overrides=["data.curriculum=difficulty"]).data.shuffled is False


def test_resolved_config_round_trips_through_yaml():
    config = load_config("paper", overrides=["grpo.learning_rate=2e-6", "reward.mode=proportional"])
    again = TrainConfig.from_dict(yaml.safe_load(config.to_yaml()))
    assert again == config
    assert config_differences(config.to_dict(), again.to_dict()) == []


def test_config_differences_ignore_settings_a_resume_may_change():
    a = load_config("tiny").to_dict()
    b = apply_overrides(a, ["run.resume=never", "run.logging_steps=5"])
    c = apply_overrides(a, ["grpo.learning_rate=0.5"])
    assert config_differences(a, b) == []
    assert config_differences(a, c) == ["grpo.learning_rate"]


def test_reward_settings_layer_default_runwide_and_domain():
    settings = RewardSettings(format_weight=0.1, domains={"knights_knaves": {"mode": "proportional"}})
    default = RewardConfig(mode="binary")
    assert settings.for_domain("knights_knaves", default) == RewardConfig("proportional", 0.1)
    assert settings.for_domain("countdown", default) == RewardConfig("binary", 0.1)


def test_every_setting_is_documented():
    rows = describe_options(TrainConfig)
    assert len(rows) > 60
    undocumented = [name for name, _, text in rows if not text.strip()]
    assert undocumented == []
    assert any(name == "grpo.beta" for name, _, _ in rows)


def test_batch_sizes_follow_verl_semantics():
    grpo = GRPOSettings(train_batch_size=256, mini_batch_size=32)
    assert grpo.updates_per_rollout == 8
    assert GRPOSettings(train_batch_size=8).updates_per_rollout == 1


def test_unknown_preset_suggests_a_name():
    with pytest.raises(ValueError, match="Did you mean"):
        read_preset("papr")
