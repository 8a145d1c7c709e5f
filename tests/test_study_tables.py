"""The study's arithmetic on hand-computed inputs: mean and standard error over seeds, deltas against the
starting model, the avg column, and the synergy/conflict matrix."""

from __future__ import annotations

import math
import statistics

import pytest

from mdrl.study.tables import (
    cell_text,
    factor_markdown,
    factor_tables,
    key_suites,
    mean_se,
    results_markdown,
    results_tables,
    suite_domain,
    synergy,
    synergy_markdown,
)

VARIANT = ["base", "default", "r1-base", "none", "en"]
SUITES = ["math500", "countdown", "kk"]


def cell(mixture: str, seed: int, math500: float, countdown: float, kk: float) -> dict:
    return {"variant": VARIANT, "mixture_keys": mixture.split("+"),
            "axes": {"model": "base", "mixture": mixture, "seed": seed},
            "scores": {"math500": {"accuracy": math500}, "countdown": {"accuracy": countdown},
                       "kk": {"accuracy": kk}}}


BASELINE = {"axes": {"model": "base", "template": "r1-base", "lang": "en"},
            "scores": {"math500": {"accuracy": 0.20}, "countdown": {"accuracy": 0.30}, "kk": {"accuracy": 0.10}}}
CELLS = [
    cell("math", 0, 0.40, 0.60, 0.10), cell("math", 1, 0.50, 0.70, 0.20),
    cell("puzzle", 0, 0.20, 0.30, 0.50), cell("puzzle", 1, 0.30, 0.30, 0.70),
    cell("math+puzzle", 1, 0.45, 0.60, 0.60), cell("math+puzzle", 0, 0.45, 0.50, 0.60),  # seeds out of order
]


@pytest.mark.parametrize("values,mean,se", [
    ([0.4, 0.5], 0.45, 0.05),                        # sd = 0.0707, se = sd / sqrt(2)
    ([0.2, 0.4, 0.9], 0.5, math.sqrt(0.13 / 3)),     # sd^2 = (0.09 + 0.01 + 0.16) / 2
    ([0.3, 0.3], 0.3, 0.0),
    ([0.7], 0.7, None),                              # one seed: no error bar
    ([], None, None),
])
def test_mean_se(values, mean, se):
    got_mean, got_se = mean_se(values)
    assert got_mean == pytest.approx(mean) if mean is not None else got_mean is None
    assert got_se == pytest.approx(se) if se is not None else got_se is None


def table():
    [only] = results_tables(CELLS, [BASELINE], SUITES, mixture_order=["math", "puzzle", "math+puzzle"])
    return only


def test_results_table_means_ses_and_deltas():
    result = table()
    assert [row["mixture"] for row in result["rows"]] == ["math", "puzzle", "math+puzzle"]
    rows = {row["mixture"]: row for row in result["rows"]}
    math_row = rows["math"]["suites"]
    assert math_row["math500"]["mean"] == pytest.approx(0.45)
    assert math_row["math500"]["se"] == pytest.approx(0.05)
    assert math_row["math500"]["delta"] == pytest.approx(0.25)
    assert math_row["countdown"]["delta"] == pytest.approx(0.35)
    assert math_row["kk"]["delta"] == pytest.approx(0.05)
    assert rows["puzzle"]["suites"]["countdown"]["se"] == pytest.approx(0.0)
    assert rows["puzzle"]["suites"]["kk"]["mean"] == pytest.approx(0.6)
    assert rows["math+puzzle"]["seeds"] == [0, 1]
    assert rows["math+puzzle"]["suites"]["countdown"]["values"] == [0.50, 0.60]


def test_avg_column_is_per_seed_mean_then_mean_over_seeds():
    result = table()
    assert result["baseline"]["avg"] == pytest.approx(0.2)
    avg = result["rows"][0]["avg"]  # math: seed 0 (0.4+0.6+0.1)/3, seed 1 (0.5+0.7+0.2)/3
    assert avg["values"] == pytest.approx([1.1 / 3, 1.4 / 3])
    assert avg["mean"] == pytest.approx(1.25 / 3)
    assert avg["se"] == pytest.approx(0.05)
    assert avg["delta"] == pytest.approx(1.25 / 3 - 0.2)


def test_no_baseline_means_no_delta():
    [result] = results_tables(CELLS, [], SUITES)
    assert result["baseline"] is None
    assert all(stats["delta"] is None for row in result["rows"] for stats in row["suites"].values())


def test_synergy_matrix_by_hand():
    result = synergy(table())
    assert result["keys"] == ["math", "puzzle"]
    # math's own suites are math500 and countdown (the math group holds the math and countdown domains)
    add_puzzle_to_math = result["matrix"]["math"]["puzzle"]
    assert add_puzzle_to_math["suites"] == ["math500", "countdown"]
    # on math+puzzle per seed: (0.45+0.5)/2, (0.45+0.6)/2 -> 0.5 +- 0.025; on math: 0.5, 0.6 -> 0.55 +- 0.05
    assert add_puzzle_to_math["mixed"] == pytest.approx(0.5)
    assert add_puzzle_to_math["single"] == pytest.approx(0.55)
    assert add_puzzle_to_math["delta"] == pytest.approx(-0.05)  # a conflict
    # both trained seeds 0 and 1: the seed part is paired, per seed 0.475 - 0.5 and 0.525 - 0.6
    assert add_puzzle_to_math["se"] == pytest.approx(statistics.stdev([-0.025, -0.075]) / math.sqrt(2))
    add_math_to_puzzle = result["matrix"]["puzzle"]["math"]
    assert add_math_to_puzzle["suites"] == ["kk"]
    assert add_math_to_puzzle["delta"] == pytest.approx(0.0)    # kk 0.6 on both
    assert add_math_to_puzzle["se"] == pytest.approx(0.1)       # per seed 0.5 - 0.6 and 0.7 - 0.6
    assert "math" not in result["matrix"]["math"]                # no diagonal


def test_synergy_with_a_triple_reports_pairs_in_the_matrix_and_the_triple_as_an_effect():
    cells = [
        {"variant": VARIANT, "mixture_keys": keys.split("+"), "axes": {"model": "base", "mixture": keys, "seed": 0},
         "scores": {"math500": {"accuracy": a}, "humaneval": {"accuracy": b}, "kk": {"accuracy": c}}}
        for keys, a, b, c in [("math", 0.5, 0.1, 0.1), ("code", 0.2, 0.4, 0.1), ("puzzle", 0.2, 0.1, 0.3),
                              ("math+code", 0.6, 0.3, 0.1), ("math+code+puzzle", 0.55, 0.45, 0.4)]
    ]
    [result_table] = results_tables(cells, [], ["math500", "humaneval", "kk"])
    result = synergy(result_table)
    assert result["matrix"]["math"]["code"]["delta"] == pytest.approx(0.1)
    assert result["matrix"]["code"]["math"]["delta"] == pytest.approx(-0.1)
    assert result["matrix"]["math"]["code"]["se"] is None       # one seed
    assert "puzzle" not in result["matrix"]                      # no puzzle pair was trained
    triple = {(e["target"], tuple(e["added"])): e["delta"] for e in result["effects"] if len(e["added"]) == 2}
    assert triple[("math", ("code", "puzzle"))] == pytest.approx(0.05)
    assert triple[("code", ("math", "puzzle"))] == pytest.approx(0.05)
    assert triple[("puzzle", ("math", "code"))] == pytest.approx(0.1)


@pytest.mark.parametrize("suite,domain", [
    ("math500", "math"), ("aime24", "math"), ("countdown", "countdown"), ("humaneval", "code"),
    ("mbpp=/data/my_mbpp.jsonl", "code"), ("kk", "knights_knaves"), ("zebra", "zebra"),
    ("gen:knights_knaves:3-5:50", "knights_knaves"), ("my_suite", None),
])
def test_suite_domain(suite, domain):
    assert suite_domain(suite) == domain


def test_key_suites_by_group_domain_and_override():
    suites = ["math500", "countdown", "humaneval", "kk", "gen:zebra:2:8", "mine"]
    assert key_suites("math", suites) == ["math500", "countdown"]
    assert key_suites("countdown", suites) == ["countdown"]
    assert key_suites("puzzle", suites) == ["kk", "gen:zebra:2:8"]
    assert key_suites("code", suites, {"mine": "code"}) == ["humaneval", "mine"]


def test_markdown_renders_the_studys_layout():
    text = results_markdown(table(), "base")
    assert "| training data | math500 | countdown | kk | avg |" in text
    assert "| starting model | 20.0 | 30.0 | 10.0 | 20.0 |" in text
    # no per-item records here: the delta's se is the seeds' (0.05), and |z| = 5 > 2 is marked
    assert "| math (n=2) | 45.0 (+25.0 ± 5.0*) | 65.0 (+35.0 ± 5.0*) | 15.0 (+5.0 ± 5.0) |" in text
    assert cell_text({"mean": 0.5, "se": None, "delta": None}) == "50.0"
    assert cell_text({"mean": 0.5, "se": 0.1, "delta": None}) == "50.0 ± 10.0"
    syn = synergy_markdown(synergy(table()))
    assert "| math | · | -5.0 ± 2.5* |" in syn  # the seed part paired: both sides trained seeds 0 and 1
    assert "| puzzle | +0.0 ± 10.0 | · |" in syn


def test_factor_tables_compare_levels_with_the_other_parts_fixed():
    def instruct(record):
        return {**record, "variant": ["instruct", "default", "chat", "none", "en"],
                "axes": {**record["axes"], "model": "instruct"},
                "scores": {s: {"accuracy": v["accuracy"] + 0.1} for s, v in record["scores"].items()}}

    cells = CELLS + [instruct(c) for c in CELLS]
    binary = [{**c, "variant": ["base", "binary", "r1-base", "none", "en"]} for c in CELLS]
    tables = results_tables(cells + binary, [BASELINE], SUITES)
    found = {t["factor"]: t for t in factor_tables(cells + binary, tables)}
    assert set(found) == {"SFT (starting model)", "reward"}
    sft = found["SFT (starting model)"]      # the model varies with its own template
    assert sft["levels"] == ["base / r1-base", "instruct / chat"] and sft["fixed"] == ["default", "none", "en"]
    math_row = sft["rows"][0]
    assert math_row["mixture"] == "math"
    assert math_row["vs"]["instruct / chat"]["delta"] == pytest.approx(0.1)
    # the same seeds on both sides: per seed the difference is +0.1 each time, so the seed part is 0
    # (unpaired it would be both sides' spreads, 0.05 each: per-seed averages 0.367 and 0.467)
    assert math_row["vs"]["instruct / chat"]["se"] == pytest.approx(0.0, abs=1e-12)
    assert math_row["vs"]["instruct / chat"]["seeds_paired"] is True
    other_seeds = CELLS + [{**c, "axes": {**c["axes"], "seed": c["axes"]["seed"] + 2}} for c in map(instruct, CELLS)]
    unpaired = factor_tables(other_seeds, results_tables(other_seeds, [BASELINE], SUITES))[0]["rows"][0]
    assert unpaired["vs"]["instruct / chat"]["se"] == pytest.approx(math.hypot(0.05, 0.05))
    assert "seeds_paired" not in unpaired["vs"]["instruct / chat"]
    reward = found["reward"]
    assert reward["levels"] == ["default", "binary"] and reward["rows"][0]["vs"]["binary"]["delta"] == 0.0
    text = factor_markdown(reward, "reward")
    assert "| training data | default | binary | binary − default |" in text
