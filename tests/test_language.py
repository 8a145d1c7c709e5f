"""A build's language is its rows' language: English rows (the study's released files are English) in
a Chinese template fail with the reason, unless asked for; generated items come in the language asked."""

from __future__ import annotations

import json

import pytest

from mdrl.data import BuildConfig, build_dataset, generate
from mdrl.domains import DataError
from mdrl.study.config import StudyConfig, StudyConfigError
from mdrl.train.config import TrainConfig
from mdrl.train.run import config_differences


@pytest.fixture
def english_rows(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [problem for problem in generate("countdown", 6, seed=2)]
    path.write_text("".join(json.dumps({"data_source": "countdown", "question": p.question,
                                        "ground_truth": p.ground_truth}) + "\n" for p in rows))
    return path


def test_english_rows_in_a_chinese_build_fail_with_the_reason(english_rows):
    with pytest.raises(DataError, match="rows are in en, but the build's language is 'zh'.*mixed_language"):
        build_dataset(BuildConfig(sources=(f"jsonl:{english_rows}",), lang="zh"))
    built = build_dataset(BuildConfig(sources=(f"jsonl:{english_rows}",), lang="zh", mixed_language=True))
    assert len(built.problems) == 6
    assert len(build_dataset(BuildConfig(sources=(f"jsonl:{english_rows}",), lang="en")).problems) == 6


def test_generated_items_are_built_in_the_language_asked():
    built = build_dataset(BuildConfig(mix="countdown:1,knights_knaves:1", n=10, lang="zh"))
    assert {problem.lang for problem in built.problems} == {"zh"}
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in problem.question) for problem in built.problems)


def test_a_study_with_chinese_cells_on_released_data_is_refused_at_load():
    base = {"models": [{"name": "b", "path": "x", "kind": "base"}], "suites": ["gen:countdown:3:5:7"],
            "mixtures": ["countdown"], "langs": ["en", "zh"]}
    with pytest.raises(StudyConfigError, match="released data.*English"):
        StudyConfig.from_mapping({**base, "data": {"sources": ["paper:countdown"]}})
    opted_in = {**base, "data": {"sources": ["paper:countdown"], "extra": {"mixed_language": True}}}
    assert len(StudyConfig.from_mapping(opted_in).cells()) == 2
    assert {cell.lang for cell in StudyConfig.from_mapping(base).cells()} == {"en", "zh"}


def test_a_setting_added_later_at_its_default_does_not_block_a_resume():
    new = TrainConfig().to_dict()
    old = json.loads(json.dumps(new))
    del old["data"]["mixed_language"]
    assert config_differences(old, new) == []
    changed = json.loads(json.dumps(new))
    changed["data"]["mixed_language"] = True
    assert config_differences(old, changed) == ["data.mixed_language"]
