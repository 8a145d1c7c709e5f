"""The data layer: loaders, generated sources, mixtures, curricula, export and the `mdrl data` CLI.

Most tests run on small fake domains registered by a module fixture (and removed afterwards, so other
test modules see the registry as they expect). Tests on the study's files and real domains skip until
the domain is registered or when the shared data is absent.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mdrl
from mdrl.data import (
    BuildConfig,
    SourceSpec,
    build_dataset,
    curriculum_keys,
    interleave,
    is_curriculum_file,
    is_non_decreasing,
    largest_remainder,
    load_source,
    max_prefix_deviation,
    paper_file,
    parse_levels,
    parse_mix,
    problem_from_row,
    read_verl_parquet,
    resolve_mix,
    to_hf_dataset,
    to_python,
    write_build,
    write_verl_parquet,
)
from mdrl.domains import all_domains, registry
from mdrl.domains.base import DataError, Domain, Problem
from mdrl.verify.result import parse_json_field
from mdrl.verify.extract import last_answer_tag
from mdrl.verify.result import Verdict

SUM, GRID, WORD = "mdrltest_sum", "mdrltest_grid", "mdrltest_word"


# ---------------------------------------------------------------- fake domains


def _sum_problem(index: int, seed: int, difficulty: int, lang: str) -> Problem:
    rng = random.Random(f"{SUM}-{seed}-{difficulty}-{index}")
    a, b = (rng.randrange(10 ** (difficulty - 1), 10**difficulty) for _ in range(2))
    return Problem(
        domain=SUM,
        data_source=SUM,
        question=f"What is {a} + {b}?",
        ground_truth=str(a + b),
        difficulty=difficulty,
        lang=lang,
        reference=f"<think>add</think>\n<answer>{a + b}</answer>",
        extra_info={"index": index, "operands": [a, b]},
    )


def _grid_problem(index: int, seed: int, difficulty: int, lang: str) -> Problem:
    rng = random.Random(f"{GRID}-{seed}-{difficulty}-{index}")
    cells = [rng.randrange(10) for _ in range(difficulty)]
    return Problem(
        domain=GRID,
        data_source=GRID,
        question=f"Copy the row {cells}.",
        ground_truth={"cells": cells, "size": difficulty},
        difficulty=difficulty,
        lang=lang,
        reference=f"<think>copy</think><answer>{','.join(map(str, cells))}</answer>",
        extra_info={"seed": seed},
    )


def _word_problem(index: int, seed: int, difficulty: int, lang: str) -> Problem:
    rng = random.Random(f"{WORD}-{seed}-{difficulty}-{index}")
    word = "".join(rng.choice("abcdef") for _ in range(difficulty))
    return Problem(
        domain=WORD,
        data_source=WORD,
        question=f"Reverse {word!r}.",
        ground_truth=word[::-1],
        difficulty=difficulty,
        lang=lang,
        reference=f"<answer>{word[::-1]}</answer>",
        extra_info={"index": str(index)},
    )  # a str "index": clashes in type with SUM's int


def _verify(response: str, ground_truth: Any, extra_info: Mapping[str, Any] | None) -> Verdict:
    answer = last_answer_tag(response)
    if answer is None:
        return Verdict.fail("no <answer> tag")
    gold = parse_json_field(ground_truth, "ground_truth")
    expected = ",".join(map(str, gold["cells"])) if isinstance(gold, dict) else str(gold)
    return Verdict.ok() if answer.strip() == expected else Verdict.fail("wrong answer")


def _load_fake_row(row: Mapping[str, Any], where: str) -> Problem:
    """Study-style rows of the fake domains: the question follows 'User: ' in the single prompt message."""
    content = row["prompt"][-1]["content"]
    question = content.split("User: ", 1)[1].split("\nAssistant:", 1)[0]
    ground_truth = parse_json_field(row["reward_model"]["ground_truth"], "ground_truth")
    domain = registry.domain_for_source(row["data_source"]).name
    difficulty = len(ground_truth["cells"]) if isinstance(ground_truth, dict) else len(str(ground_truth))
    return Problem(
        domain=domain,
        data_source=row["data_source"],
        question=question,
        ground_truth=ground_truth,
        difficulty=difficulty,
        extra_info=dict(row.get("extra_info") or {}),
    )


def _fake(name: str, group: str, generate, difficulties: tuple[int, ...]) -> Domain:
    return Domain(
        name=name,
        group=group,
        data_sources=(f"{name}_alias",),
        verify=_verify,
        instructions={"en": "Answer in <answer> </answer>.", "zh": "答案写在 <answer> </answer> 中。"},
        difficulties=difficulties,
        generate=generate,
        load_row=_load_fake_row,
        description="test-only domain",
    )


@pytest.fixture(scope="module", autouse=True)
def fake_domains():
    """Register the fake domains for this module, then remove exactly what was added."""
    fakes = [
        _fake(SUM, "math", _sum_problem, (1, 2, 3)),
        _fake(GRID, "puzzle", _grid_problem, (2, 3, 4)),
        _fake(WORD, "code", _word_problem, (3, 5)),
    ]
    registry._ensure_loaded()
    for fake in fakes:
        if fake.name not in registry._DOMAINS:
            registry.register_domain(fake)
    yield {fake.name: fake for fake in fakes}
    for fake in fakes:
        registry._DOMAINS.pop(fake.name, None)
        for key in [k for k, owner in registry._SOURCES.items() if owner == fake.name]:
            del registry._SOURCES[key]


def _study_row(data_source: str, question: str, ground_truth: Any, index: int) -> dict[str, Any]:
    prompt = f"Preamble.\nUser: {question}\nAssistant: <think>"
    return {
        "data_source": data_source,
        "prompt": [{"content": prompt, "role": "user"}],
        "ability": "math",
        "reward_model": {"ground_truth": ground_truth, "style": "rule"},
        "extra_info": {"index": index, "split": "test"},
    }


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


# ---------------------------------------------------------------- specs and parsing


@pytest.mark.parametrize(
    "text,expected",
    [
        ("3-4", (3, 4)),
        ("3,5,7", (3, 5, 7)),
        ("3-5,7", (3, 4, 5, 7)),
        ("4", (4,)),
        (4, (4,)),
        ([5, 3], (3, 5)),
        (None, ()),
        ("", ()),
    ],
)
def test_parse_levels(text, expected):
    assert parse_levels(text) == expected


@pytest.mark.parametrize("text", ["4-3", "three", "3-x"])
def test_parse_levels_rejects(text):
    with pytest.raises(ValueError, match="difficulty"):
        parse_levels(text)


@pytest.mark.parametrize(
    "text,fields",
    [
        ("paper:countdown", {"kind": "paper", "path": "countdown", "split": "train"}),
        ("paper:kk/test", {"kind": "paper", "path": "kk/test"}),
        (
            "jsonl:/d/rows.jsonl?domain=countdown",
            {"kind": "jsonl", "path": "/d/rows.jsonl", "domain": "countdown"},
        ),
        (
            "hf:./saved?split=test&col.question=problem&col.ground_truth=answer&data_source=math500",
            {
                "kind": "hf",
                "split": "test",
                "domain": "math500",
                "columns": (("question", "problem"), ("ground_truth", "answer")),
            },
        ),
        ("mbpp", {"kind": "mbpp", "path": None}),
        ("humaneval", {"kind": "humaneval"}),
        (
            f"generate:{SUM}:1-2?n=7&seed=3",
            {"kind": "generate", "domain": SUM, "difficulties": (1, 2), "n": 7, "seed": 3},
        ),
        (f"{SUM}:2?lang=zh", {"kind": "generate", "domain": SUM, "difficulties": (2,), "lang": "zh"}),
        (SUM, {"kind": "generate", "domain": SUM, "difficulties": ()}),
    ],
)
def test_source_spec_parse_and_describe_round_trip(text, fields):
    spec = SourceSpec.parse(text)
    for name, value in fields.items():
        assert getattr(spec, name) == value, name
    assert SourceSpec.parse(spec.describe()) == spec


@pytest.mark.parametrize(
    "text,match",
    [
        ("nosuchkind:x", "cannot read source"),
        ("paper:countdown?bogus=1", "unknown option"),
        ("parquet:", "needs a path"),
        ("hf:x?col.nonsense=y", "unknown mapped field"),
    ],
)
def test_source_spec_rejects(text, match):
    with pytest.raises(ValueError, match=match):
        SourceSpec.parse(text)


def test_source_spec_from_mapping():
    spec = SourceSpec.from_mapping(
        {"kind": "hf", "path": "p", "difficulty": "2-3", "columns": {"question": "problem"}}
    )
    assert spec.difficulties == (2, 3) and spec.columns == (("question", "problem"),)
    with pytest.raises(ValueError, match="unknown source field"):
        SourceSpec.from_mapping({"kind": "hf", "path": "p", "colums": {}})


# ---------------------------------------------------------------- generated sources


def test_generated_source_is_deterministic_and_spread_over_levels():
    first = load_source(f"{SUM}:1-3?n=10&seed=3")
    assert first == load_source(f"{SUM}:1-3?n=10&seed=3")
    assert first != load_source(f"{SUM}:1-3?n=10&seed=4")
    assert Counter(p.difficulty for p in first) == {1: 4, 2: 3, 3: 3}
    assert all(p.domain == SUM for p in first)


def test_generating_an_unknown_level_or_without_n_fails():
    with pytest.raises(DataError, match="no difficulty"):
        load_source(f"{SUM}:9?n=3")
    with pytest.raises(DataError, match="needs n"):
        load_source(f"{SUM}:1")


# ---------------------------------------------------------------- loaders and malformed rows


def test_parquet_loader_routes_rows_and_names_the_bad_row(tmp_path):
    grid_truth = json.dumps({"cells": [1, 2], "size": 2})  # parquet: one type per column
    good = [
        _study_row(SUM, "What is 1 + 2?", "3", 0),
        _study_row(f"{GRID}_ALIAS", "Copy [1, 2].", grid_truth, 1),
    ]
    path = _write_parquet(tmp_path / "ok.parquet", good)
    problems = load_source(f"parquet:{path}")
    assert [p.domain for p in problems] == [SUM, GRID]
    assert problems[0].question == "What is 1 + 2?" and problems[1].ground_truth == {
        "cells": [1, 2],
        "size": 2,
    }

    missing = good + [_study_row(SUM, "What is 2 + 2?", None, 2)]
    path = _write_parquet(tmp_path / "missing.parquet", missing)
    with pytest.raises(DataError, match=r"missing\.parquet:2: missing ground_truth"):
        load_source(f"parquet:{path}")

    unknown = good + [_study_row(SUM, "x", "1", 2), _study_row("no_such_source", "x", "1", 3)]
    path = _write_parquet(tmp_path / "unknown.parquet", unknown)
    with pytest.raises(DataError, match=r"unknown\.parquet:3: unknown data_source 'no_such_source'"):
        load_source(f"parquet:{path}")


def test_skipping_bad_rows_is_opt_in_and_reported(tmp_path):
    rows = [
        _study_row(SUM, "What is 1 + 2?", "3", 0),
        _study_row(SUM, "q", None, 1),
        _study_row("no_such_source", "q", "1", 2),
        _study_row(SUM, "What is 2 + 2?", "4", 3),
    ]
    path = _write_parquet(tmp_path / "some_bad.parquet", rows)
    skipped: list[str] = []
    problems = load_source(f"parquet:{path}?on_error=skip", skipped=skipped)
    assert [p.question for p in problems] == ["What is 1 + 2?", "What is 2 + 2?"]
    assert [error.split(": ")[0] for error in skipped] == [f"{path}:1", f"{path}:2"]
    result = build_dataset(BuildConfig(sources=(SourceSpec.parse(f"parquet:{path}"),), skip_bad_rows=True))
    assert len(result.problems) == 2 and result.manifest()["skipped_rows"]["count"] == 2
    with pytest.raises(DataError, match=r"some_bad\.parquet:1"):
        build_dataset(BuildConfig(sources=(SourceSpec.parse(f"parquet:{path}"),)))


def test_a_loader_crash_on_a_row_becomes_a_data_error_naming_it(tmp_path):
    row = _study_row(SUM, "q", "1", 0)
    row["prompt"] = [{"content": "no user marker here", "role": "user"}]  # the fake loader's split fails
    path = _write_parquet(tmp_path / "odd.parquet", [_study_row(SUM, "q", "1", 0), row])
    with pytest.raises(DataError, match=r"odd\.parquet:1: malformed mdrltest_sum row: IndexError"):
        load_source(f"parquet:{path}")


def test_numpy_values_become_python():
    row = {
        "data_source": np.str_(GRID),
        "prompt": np.array([{"content": "User: q\nAssistant:", "role": "user"}]),
        "reward_model": {
            "ground_truth": {"cells": np.array([1, 2], dtype=np.int64), "size": np.int64(2)},
            "style": "rule",
        },
        "extra_info": {"index": np.int64(5)},
    }
    problem = problem_from_row(row, "mem:0")
    assert problem.ground_truth == {"cells": [1, 2], "size": 2}
    assert type(problem.ground_truth["cells"]) is list and type(problem.ground_truth["size"]) is int
    assert type(problem.extra_info["index"]) is int
    assert to_python((np.float32(0.5), [np.bool_(True)])) == [0.5, [True]]


def test_jsonl_loader_reads_both_row_shapes_and_names_bad_lines(tmp_path):
    path = tmp_path / "rows.jsonl"
    lines = [
        {"data_source": SUM, "question": "What is 2 + 2?", "ground_truth": "4", "difficulty": 1},
        _study_row(GRID, "Copy [3].", {"cells": [3], "size": 1}, 1),
        {"data_source": SUM, "prompt": [{"role": "user", "content": "What is 1 + 1?"}], "ground_truth": "2"},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    problems = load_source(f"jsonl:{path}")
    assert [(p.domain, p.question, p.ground_truth) for p in problems] == [
        (SUM, "What is 2 + 2?", "4"),
        (GRID, "Copy [3].", {"cells": [3], "size": 1}),
        (SUM, "What is 1 + 1?", "2"),
    ]
    assert problems[0].difficulty == 1

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(lines[0]) + "\n" + json.dumps({"data_source": SUM, "question": "q"}) + "\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:2: missing ground_truth"):
        load_source(f"jsonl:{bad}")
    bad.write_text("{not json\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:1: not valid JSON"):
        load_source(f"jsonl:{bad}")


def test_loader_filters_difficulty_and_caps_n(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(
        "".join(
            json.dumps({"data_source": SUM, "question": f"q{i}", "ground_truth": str(i), "difficulty": i % 3})
            + "\n"
            for i in range(30)
        )
    )
    kept = load_source(f"jsonl:{path}?difficulty=1,2&n=5")
    assert len(kept) == 5 and {p.difficulty for p in kept} <= {1, 2}
    assert [p.question for p in kept] == ["q1", "q2", "q4", "q5", "q7"]


def test_hf_source_from_a_saved_dataset_with_a_column_mapping(tmp_path):
    datasets = pytest.importorskip("datasets")
    saved = tmp_path / "math_like"
    datasets.Dataset.from_dict(
        {"problem": ["What is 1 + 1?", "What is 3 + 4?"], "answer": ["2", "7"], "level": [1, 1]}
    ).save_to_disk(str(saved))
    spec = SourceSpec(
        kind="hf",
        path=str(saved),
        domain=SUM,
        columns=(("question", "problem"), ("ground_truth", "answer"), ("difficulty", "level")),
    )
    problems = load_source(spec)
    assert [(p.domain, p.data_source, p.question, p.ground_truth, p.difficulty) for p in problems] == [
        (SUM, SUM, "What is 1 + 1?", "2", 1),
        (SUM, SUM, "What is 3 + 4?", "7", 1),
    ]
    with pytest.raises(DataError, match=r"math_like\[train\]:0: mapped column 'nope'"):
        load_source(SourceSpec(kind="hf", path=str(saved), domain=SUM, columns=(("question", "nope"),)))
    # A local data file goes through datasets' own readers; the same mapping applies (string form).
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"problem": "What is 5 + 5?", "answer": "10"}) + "\n")
    loaded = load_source(f"hf:{rows}?domain={SUM}&col.question=problem&col.ground_truth=answer")
    assert [(p.question, p.ground_truth) for p in loaded] == [("What is 5 + 5?", "10")]
    with pytest.raises(DataError, match="cannot load HF dataset"):
        load_source(f"hf:{tmp_path / 'no_such_dataset'}")


# ---------------------------------------------------------------- mixtures


@pytest.mark.parametrize(
    "weights,n",
    [
        ({"a": 1, "b": 1}, 7),
        ({"a": 1, "b": 2, "c": 7}, 1000),
        ({"a": 0.3, "b": 0.3, "c": 0.4}, 10),
        ({"a": 5}, 3),
    ],
)
def test_largest_remainder_sums_and_stays_within_one_of_the_quota(weights, n):
    counts = largest_remainder(weights, n)
    assert sum(counts.values()) == n
    total = sum(weights.values())
    assert all(abs(counts[k] - n * w / total) < 1 for k, w in weights.items())


def test_interleave_emits_exact_counts_and_keeps_every_prefix_close():
    counts = {"a": 500, "b": 300, "c": 200}
    order = interleave(counts)
    assert Counter(order) == counts
    for length in range(1, len(order) + 1):
        seen = Counter(order[:length])
        assert all(abs(seen[k] - length * c / 1000) < 1.0 + 1e-9 for k, c in counts.items()), length


@pytest.mark.parametrize(
    "mix,expected",
    [
        ("math:1,puzzle:1", {"math": 0.25, "countdown": 0.25, "knights_knaves": 0.25, "zebra": 0.25}),
        ("math:1,countdown:1", {"math": 0.5, "countdown": 0.5}),
        ("math:1,countdown:0,puzzle:1", {"math": 0.5, "knights_knaves": 0.25, "zebra": 0.25}),
        ("puzzle:3,code:1", {"knights_knaves": 0.375, "zebra": 0.375, "code": 0.25}),
        ({"knights_knaves": 2, "countdown": 1}, {"knights_knaves": 2 / 3, "countdown": 1 / 3}),
    ],
)
def test_group_expansion(mix, expected):
    def fake(name, group):
        return Domain(
            name=name, group=group, data_sources=(), verify=_verify, instructions={"en": "", "zh": ""}
        )

    domains = {
        d.name: d
        for d in [
            fake("math", "math"),
            fake("countdown", "math"),
            fake("knights_knaves", "puzzle"),
            fake("zebra", "puzzle"),
            fake("code", "code"),
        ]
    }
    assert resolve_mix(mix, usable=domains, domains=domains) == pytest.approx(expected)
    # A group stands only for its usable members.
    if mix == "math:1,puzzle:1":
        usable = {"math", "knights_knaves"}
        assert resolve_mix(mix, usable=usable, domains=domains) == pytest.approx(
            {"math": 0.5, "knights_knaves": 0.5}
        )


@pytest.mark.parametrize(
    "mix,match",
    [
        ("mdrltest_sun:1", "Did you mean 'mdrltest_sum'"),
        ("a:1,a:2", "more than once"),
        ("a:-1", ">= 0"),
        ("a:0", "no positive"),
        ("a:x", "bad mixture weight"),
    ],
)
def test_bad_mixtures_are_rejected(mix, match):
    with pytest.raises(ValueError, match=match):
        resolve_mix(mix, usable=all_domains())


@pytest.mark.parametrize(
    "mix",
    [
        f"{SUM}:1,{GRID}:1",
        f"{SUM}:1,{GRID}:3",
        f"{SUM}:7,{GRID}:2,{WORD}:1",
        f"{SUM}:0.45,{GRID}:0.35,{WORD}:0.2",
        f"{SUM}:1,{WORD}:9",
    ],
)
def test_mixture_proportions_within_two_percent_over_the_epoch_and_its_prefixes(mix):
    result = build_dataset(BuildConfig(mix=mix, n=1000, seed=1))
    target = {name: weight / sum(w for _, w in parse_mix(mix)) for name, weight in parse_mix(mix)}
    realised = Counter(p.domain for p in result.problems)
    assert len(result.problems) == 1000
    for name, share in target.items():
        assert abs(realised[name] / 1000 - share) <= 0.02
    assert max_prefix_deviation([p.domain for p in result.problems], target, min_prefix=50) <= 0.02
    manifest = result.manifest()
    assert manifest["max_abs_deviation"] <= 0.02 and manifest["counts"] == dict(sorted(realised.items()))


def test_mixture_from_finite_pools_uses_the_largest_feasible_n_and_fails_when_short(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"data_source": SUM if i < 30 else GRID, "question": f"q{i}", "ground_truth": str(i)})
            + "\n"
            for i in range(40)
        )
    )
    result = build_dataset(BuildConfig(sources=(SourceSpec.parse(f"jsonl:{rows}"),), mix=f"{SUM}:1,{GRID}:1"))
    assert Counter(p.domain for p in result.problems) == {SUM: 10, GRID: 10}
    with pytest.raises(DataError, match=f"domain '{GRID}' has 10 items but the mixture needs 15"):
        build_dataset(
            BuildConfig(sources=(SourceSpec.parse(f"jsonl:{rows}"),), mix=f"{SUM}:1,{GRID}:1", n=30)
        )
    repeated = build_dataset(
        BuildConfig(
            sources=(SourceSpec.parse(f"jsonl:{rows}"),), mix=f"{SUM}:1,{GRID}:1", n=30, allow_repeat=True
        )
    )
    assert Counter(p.domain for p in repeated.problems) == {SUM: 15, GRID: 15}
    # A generator source tops up a short pool instead.
    topped = build_dataset(
        BuildConfig(
            sources=(SourceSpec.parse(f"jsonl:{rows}"), SourceSpec.parse(f"{GRID}:2")),
            mix=f"{SUM}:1,{GRID}:1",
            n=30,
        )
    )
    grid = [p for p in topped.problems if p.domain == GRID]
    assert len(grid) == 15 and sum(isinstance(p.ground_truth, dict) for p in grid) == 5


def test_group_keys_in_a_build_report_per_key_proportions():
    sources = tuple(SourceSpec.parse(text) for text in (f"{SUM}:1", f"{GRID}:2-3", f"{WORD}:3"))
    result = build_dataset(BuildConfig(sources=sources, mix="math:2,puzzle:1,code:1", n=400))
    assert Counter(p.domain for p in result.problems) == {SUM: 200, GRID: 100, WORD: 100}
    mix = result.manifest()["mix"]
    assert mix["math"] == {"target": 0.5, "realised": 0.5, "domains": [SUM]}
    assert mix["puzzle"]["domains"] == [GRID] and mix["code"]["realised"] == 0.25
    with pytest.raises(ValueError, match="mixture group 'math'"):
        build_dataset(BuildConfig(sources=sources[1:], mix="math:1,puzzle:1", n=10))


def test_without_a_mixture_the_sources_keep_their_sizes(tmp_path):
    result = build_dataset(
        BuildConfig(sources=(SourceSpec.parse(f"{SUM}:1?n=12"), SourceSpec.parse(f"{GRID}?n=4")))
    )
    assert Counter(p.domain for p in result.problems) == {SUM: 12, GRID: 4}


def test_builds_are_deterministic_in_the_seed():
    config = BuildConfig(mix=f"{SUM}:1,{GRID}:1", n=60)
    assert build_dataset(config).problems == build_dataset(config).problems
    other = build_dataset(BuildConfig(mix=f"{SUM}:1,{GRID}:1", n=60, seed=5)).problems
    assert other != build_dataset(config).problems


# ---------------------------------------------------------------- curricula


@pytest.mark.parametrize("by", ["difficulty", "relative"])
def test_curriculum_orders_easy_to_hard_within_a_mixture(by):
    result = build_dataset(BuildConfig(mix=f"{SUM}:1,{GRID}:1,{WORD}:1", n=300, curriculum=by))
    problems = result.problems
    assert result.is_curriculum and is_non_decreasing(problems, by)
    for name in (SUM, GRID, WORD):
        levels = [p.difficulty for p in problems if p.domain == name]
        assert levels == sorted(levels) and len(set(levels)) > 1
    assert not build_dataset(BuildConfig(mix=f"{SUM}:1,{GRID}:1", n=300)).is_curriculum


def test_relative_curriculum_keeps_the_mixture_in_every_quarter():
    problems = build_dataset(
        BuildConfig(
            mix=f"{SUM}:1,{GRID}:1",
            n=400,
            curriculum="relative",
            difficulty=((SUM, (1, 2)), (GRID, (2, 3, 4))),
        )
    ).problems
    for quarter in range(4):
        chunk = Counter(p.domain for p in problems[quarter * 100 : (quarter + 1) * 100])
        assert chunk[SUM] > 0 and chunk[GRID] > 0, quarter
    assert (
        curriculum_keys(problems, "relative")[0] == 0.0 and curriculum_keys(problems, "relative")[-1] == 1.0
    )


def test_difficulty_setting_restricts_generated_levels():
    result = build_dataset(BuildConfig(mix=f"{SUM}:1,{GRID}:1", n=100, difficulty=((GRID, (3, 4)),)))
    assert {p.difficulty for p in result.problems if p.domain == GRID} == {3, 4}
    assert {p.difficulty for p in result.problems if p.domain == SUM} == {1, 2, 3}


# ---------------------------------------------------------------- export


def test_verl_export_round_trip_single_domain_keeps_struct_ground_truth(tmp_path):
    problems = load_source(f"{GRID}:2-4?n=9")
    path = write_verl_parquet(problems, tmp_path / "grid.parquet", template="r1-base")
    table = pq.read_table(path)
    assert table.column_names == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    reward_type = table.schema.field("reward_model").type
    assert pa.types.is_struct(reward_type.field("ground_truth").type)
    assert reward_type.field("style").type == pa.string()
    prompt_type = table.schema.field("prompt").type
    assert [f.name for f in prompt_type.value_type] == ["content", "role"]
    assert read_verl_parquet(path) == problems
    first = table.slice(0, 1).to_pylist()[0]
    assert first["reward_model"] == {"ground_truth": problems[0].ground_truth, "style": "rule"}
    assert first["prompt"][0]["content"].endswith("Assistant: <think>")
    assert problems[0].question in first["prompt"][0]["content"]


@pytest.mark.parametrize("template,lang", [("r1-base", "en"), ("chat", "zh"), ("plain", "en")])
def test_verl_export_round_trip_mixed_domains_scores_references(tmp_path, template, lang):
    problems = build_dataset(BuildConfig(mix=f"{SUM}:1,{GRID}:1,{WORD}:1", n=30, lang=lang)).problems
    path = write_verl_parquet(problems, tmp_path / "mixed.parquet", template=template, split="test")
    table = pq.read_table(path)
    assert table.schema.field("reward_model").type.field("ground_truth").type == pa.string()
    rows = table.to_pylist()
    assert [row["extra_info"]["index"] for row in rows] == list(range(30))
    assert {row["extra_info"]["split"] for row in rows} == {"test"}
    assert all(row["extra_info"]["ground_truth_is_json"] == (row["data_source"] == GRID) for row in rows)
    assert read_verl_parquet(path) == problems  # including the WORD items' clashing str "index"
    for row in rows:
        result = mdrl.compute_score(
            row["data_source"],
            row["extra_info"]["reference"],
            row["reward_model"]["ground_truth"],
            row["extra_info"],
        )
        assert result["acc"] and result["score"] == 1.0
        wrong = mdrl.compute_score(
            row["data_source"], "<answer>nope</answer>", row["reward_model"]["ground_truth"]
        )
        assert not wrong["acc"]
    if template == "chat":
        assert rows[0]["prompt"][0]["role"] == "system" and rows[0]["prompt"][1]["role"] == "user"


def test_hf_dataset_export_and_read_back(tmp_path):
    pytest.importorskip("datasets")
    problems = build_dataset(BuildConfig(mix=f"{SUM}:1,{GRID}:1", n=20)).problems
    dataset = to_hf_dataset(problems, template="r1-base")
    assert set(dataset.column_names) >= {
        "prompt",
        "data_source",
        "ground_truth",
        "domain",
        "difficulty",
        "extra_info",
    }
    assert len(dataset) == 20 and isinstance(dataset[0]["prompt"], str)
    assert dataset[0]["prompt"].endswith("Assistant: <think>")
    assert all(isinstance(gt, str) for gt in dataset["ground_truth"])
    row = dataset[[p.domain for p in problems].index(GRID)]
    assert json.loads(row["ground_truth"])["cells"] and json.loads(row["extra_info"])["domain"] == GRID
    chat = to_hf_dataset(problems, template="chat")
    assert [m["role"] for m in chat[0]["prompt"]] == ["system", "user"]
    dataset.save_to_disk(str(tmp_path / "hf"))
    assert load_source(f"hf:{tmp_path / 'hf'}") == problems


# ---------------------------------------------------------------- CLI


def _cli(args: list[str]):
    from typer.testing import CliRunner

    from mdrl.cli import app

    return CliRunner().invoke(app, args)


def test_cli_build_end_to_end(tmp_path):
    out = tmp_path / "built"
    result = _cli(
        [
            "data",
            "build",
            "--mix",
            f"{SUM}:1,{GRID}:1",
            "--n",
            "200",
            "--difficulty",
            f"{GRID}=2-3",
            "--template",
            "r1-base",
            "--lang",
            "en",
            "--curriculum",
            "--seed",
            "0",
            "--out",
            str(out),
            "--hf-dataset",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "200 items, curriculum by difficulty" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n"] == 200 and manifest["counts"] == {GRID: 100, SUM: 100}
    assert manifest["is_curriculum"] and manifest["config"]["difficulty"] == {GRID: [2, 3]}
    assert manifest["realised_proportions"] == {GRID: 0.5, SUM: 0.5}
    assert set(manifest["counts_by_difficulty"][GRID]) == {"2", "3"}
    problems = read_verl_parquet(out / "train.parquet")
    assert len(problems) == 200 and is_non_decreasing(problems) and is_curriculum_file(out / "train.parquet")
    assert (out / "hf").is_dir()

    inspected = _cli(["data", "inspect", str(out / "train.parquet"), "--json"])
    assert inspected.exit_code == 0, inspected.output
    report = json.loads(inspected.output)
    assert (
        report["rows"] == 200
        and report["domain"] == {GRID: 100, SUM: 100}
        and report["curriculum"] == "difficulty"
    )


def test_cli_build_from_config_with_overrides_and_errors(tmp_path):
    config = tmp_path / "data.yaml"
    config.write_text(
        f"mix: {{{SUM}: 3, {GRID}: 1}}\nn: 40\nsources: ['{SUM}:2', {{kind: generate, domain: {GRID}}}]\n"
        f"out: {tmp_path / 'from_yaml'}\ncurriculum: false\n"
    )
    result = _cli(["data", "build", "--config", str(config), "--n", "80"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "from_yaml" / "manifest.json").read_text())
    assert manifest["counts"] == {GRID: 20, SUM: 60} and not manifest["is_curriculum"]
    assert manifest["counts_by_difficulty"][SUM] == {"2": 60}
    assert not is_curriculum_file(tmp_path / "from_yaml" / "train.parquet")

    bad = _cli(["data", "build", "--mix", "mdrltest_sun:1", "--n", "5", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "Did you mean" in bad.output


# ---------------------------------------------------------------- the study's files and real domains

STUDY_FILES = [  # (file, domain that must be registered, rows, rows per data_source)
    ("countdown/test.parquet", "countdown", 1024, {"countdown": 1024}),
    ("deepscaler/test.parquet", "math", 530, {"math500": 500, "AIME": 30}),
    ("kk/test.parquet", "knights_knaves", 600, {"kk_logic": 600}),
    ("zebra/test.parquet", "zebra", 276, {"zebra": 276}),
    ("code-r1-12k/test.parquet", "code", 712, {"code": 712}),
]


def _require(domain: str) -> None:
    if domain not in all_domains():
        pytest.skip(f"domain {domain!r} is not registered yet")


@pytest.mark.parametrize(
    "name,domain,rows,by_source", STUDY_FILES, ids=[f[0].split("/")[0] for f in STUDY_FILES]
)
def test_study_test_files_load_with_the_right_counts(paper_data, name, domain, rows, by_source):
    _require(domain)
    problems = load_source(f"parquet:{paper_data / name}")
    assert len(problems) == rows
    assert dict(Counter(p.data_source for p in problems)) == by_source
    assert {p.domain for p in problems} == {domain}
    assert all(p.question.strip() for p in problems)


@pytest.mark.parametrize(
    "name,domain",
    [
        ("countdown/test.parquet", "countdown"),
        ("kk/test.parquet", "knights_knaves"),
        ("zebra/test.parquet", "zebra"),
        ("deepscaler/test.parquet", "math"),
        ("code-r1-12k/test.parquet", "code"),
    ],
)
def test_study_rows_round_trip_through_mdrl_parquet_and_score(paper_data, tmp_path, name, domain):
    _require(domain)
    problems = load_source(f"parquet:{paper_data / name}?n={8 if domain == 'code' else 40}")  # code: sandbox
    path = write_verl_parquet(problems, tmp_path / "re.parquet")
    again = read_verl_parquet(path)
    assert again == problems
    scored = [
        mdrl.compute_score(
            row["data_source"], p.reference, row["reward_model"]["ground_truth"], row["extra_info"]
        )
        for row, p in zip(pq.read_table(path).to_pylist(), again)
        if p.reference
    ]
    assert scored and all(result["acc"] for result in scored)


def test_real_mixture_curriculum_round_trip_scores_references(tmp_path):
    for domain in ("countdown", "knights_knaves"):
        _require(domain)
    config = BuildConfig(
        mix="countdown:1,knights_knaves:1",
        n=60,
        difficulty=(("countdown", (3, 4)), ("knights_knaves", (3, 4, 5))),
        curriculum="difficulty",
    )
    paths = write_build(build_dataset(config), tmp_path)
    rows = pq.read_table(paths["parquet"]).to_pylist()
    problems = read_verl_parquet(paths["parquet"])
    assert is_non_decreasing(problems) and Counter(p.domain for p in problems) == {
        "countdown": 30,
        "knights_knaves": 30,
    }
    assert {p.difficulty for p in problems if p.domain == "countdown"} == {3, 4}
    for row, problem in zip(rows, problems):
        assert isinstance(row["reward_model"]["ground_truth"], str)  # two struct shapes -> JSON text
        result = mdrl.compute_score(
            row["data_source"], problem.reference, row["reward_model"]["ground_truth"], row["extra_info"]
        )
        assert result["acc"], (row["data_source"], result)


def test_paper_sources_resolve_study_names_and_splits(paper_data, monkeypatch):
    monkeypatch.setenv("MDRL_SHARED_DATA", str(paper_data.parent))
    assert paper_file("kk/test") == paper_data / "kk" / "test.parquet"
    assert paper_file("countdown") == paper_data / "countdown" / "train.parquet"
    assert paper_file("code", split="test") == paper_data / "code-r1-12k" / "test.parquet"
    with pytest.raises(DataError, match=r"no study file .*kk/train\.parquet; available: .*kk/test\.parquet"):
        paper_file("kk")
    _require("knights_knaves")
    problems = load_source("paper:kk/test?difficulty=3&n=7")
    assert len(problems) == 7 and {p.difficulty for p in problems} == {3}


def test_every_study_domain_in_one_mixed_file_scores_its_references(paper_data, tmp_path):
    """One parquet holding all five domains: ground truths become one string column (JSON where they
    were structs) and every domain's scorer must accept them back."""
    files = [(name, domain) for name, domain, _, _ in STUDY_FILES if domain in all_domains()]
    if len(files) < 2:
        pytest.skip("needs at least two real domains")
    sources = tuple(SourceSpec.parse(f"parquet:{paper_data / name}?n=6") for name, _ in files)
    result = build_dataset(BuildConfig(sources=sources, mix=",".join(f"{d}:1" for _, d in files), seed=3))
    paths = write_build(result, tmp_path)
    table = pq.read_table(paths["parquet"])
    assert table.schema.field("reward_model").type.field("ground_truth").type == pa.string()
    problems = read_verl_parquet(paths["parquet"])
    assert problems == result.problems and Counter(p.domain for p in problems) == {d: 6 for _, d in files}
    for row, problem in zip(table.to_pylist(), problems):
        assert problem.reference, problem.domain
        scored = mdrl.compute_score(
            row["data_source"], problem.reference, row["reward_model"]["ground_truth"], row["extra_info"]
        )
        assert scored["acc"], (problem.domain, scored)


def test_mbpp_and_humaneval_sources(mbpp_path):
    from mdrl.domains import code

    if not hasattr(code, "load_mbpp"):
        pytest.skip("the code domain does not provide load_mbpp yet")
    lines = sum(1 for line in mbpp_path.read_text().splitlines() if line.strip())
    problems = load_source(f"mbpp:{mbpp_path}")
    assert len(problems) == lines == 974 and {p.domain for p in problems} == {"code"}
    assert all(p.question.strip() and p.ground_truth for p in problems)
    if hasattr(code, "load_humaneval"):
        assert len(load_source("humaneval")) == 164


@pytest.mark.parametrize("domain,level", [("code", 1), ("math", 1), ("knights_knaves", 2), ("countdown", 3)])
def test_generated_training_data_never_holds_a_held_out_question(domain, level):
    """Small item spaces (code level 1 has ~3,800 questions) repeat questions across seeds; the held-out
    split keeps every `gen:` suite question out of every generated training set, whatever the seeds."""
    from mdrl.data.sources import HELDOUT_EVERY, generate, is_heldout
    from mdrl.eval.suites import load_suite

    train = {p.question for seed in (0, 1, 2) for p in generate(domain, 600, seed, (level,))}
    suite = load_suite(f"gen:{domain}:{level}:200:7")
    held_out = {item.problem.question for item in suite.items}
    assert len(suite.items) == 200 and all(is_heldout(item.problem) for item in suite.items)
    assert not train & held_out
    every = generate(domain, 2000, 5, (level,), split="all")
    share = sum(map(is_heldout, every)) / len(every)
    assert abs(share - 1 / HELDOUT_EVERY) < 0.03, share  # the hash splits about one in ten


def test_generate_rejects_an_unknown_split():
    from mdrl.data.sources import generate

    with pytest.raises(DataError, match="split"):
        generate("math", 3, split="test")


def test_a_mixture_reads_only_the_sources_it_draws_on(tmp_path, monkeypatch):
    """The paper preset lists all five study folders; a mixture without puzzles must not need the
    Knights-and-Knaves file, and a missing file it does need is named with where it belongs."""
    monkeypatch.setenv("MDRL_SHARED_DATA", str(tmp_path))
    (tmp_path / "paper" / "countdown").mkdir(parents=True)
    sources = (SourceSpec.parse("paper:kk"), SourceSpec.parse("countdown:3?n=20"))
    result = build_dataset(BuildConfig(sources=sources, mix="countdown:1", n=20))
    assert len(result.problems) == 20 and {p.domain for p in result.problems} == {"countdown"}
    with pytest.raises(DataError, match=r"no study file .*kk/train.parquet.*MDRL_SHARED_DATA"):
        build_dataset(BuildConfig(sources=sources, mix="puzzle:1,countdown:1", n=20))
