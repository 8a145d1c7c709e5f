"""zebra: JSON-grid extraction, label-matched cell accuracy, the study's rows, and the generator."""

from __future__ import annotations

import itertools
import json

import pytest

import mdrl
from mdrl.domains import DataError, domain_for_source, get_domain, zebra
from mdrl.domains.zebra_solver import (
    KINDS,
    Clue,
    Grid,
    holds,
    solve,
)
from mdrl.verify.extract import answer_region, json_objects_from_end

DOMAIN = get_domain("zebra")

# A Logic Puzzle Baron grid from the study's test split (row 0), as its reward_model stores it.
GOLD = json.dumps({
    "House 1": {"Ages": "230,000 years", "Names": "Peanut", "Locations": "Scotland"},
    "House 2": {"Ages": "200,000 years", "Names": "Thumper", "Locations": "Siberia"},
    "House 3": {"Ages": "170,000 years", "Names": "Fang", "Locations": "Alaska"},
    "House 4": {"Ages": "140,000 years", "Names": "Snuffles", "Locations": "Norway"},
})
G = json.loads(GOLD)
# A generated Chinese grid (houses keep the study's "House k" keys; categories and values are Chinese).
GOLD_ZH = json.dumps({
    "House 1": {"姓名": "陈静", "水果": "桃子"},
    "House 2": {"姓名": "李娜", "水果": "樱桃"},
    "House 3": {"姓名": "张伟", "水果": "猕猴桃"},
}, ensure_ascii=False)
# Numbers as text, as in the study's score/jump-count categories.
GOLD_NUM = json.dumps({"House 1": {"Scores": "2", "Names": "Ira"}, "House 2": {"Scores": "9", "Names": "Leslie"},
                       "House 3": {"Scores": "26.5", "Names": "Dwayne"}})


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def wrapped(grid, reasoning="I matched the clues one by one.") -> str:
    """The study's requested shape inside an <answer> block, after a thought."""
    return f"Let me work through the clues.</think>\n<answer>{dumps({'reasoning': reasoning, 'solution': grid})}</answer>"


def with_cells(grid, **changes):
    """A deep copy of `grid` with changes given as house_category=value (spaces as underscores)."""
    out = json.loads(dumps(grid))
    for key, value in changes.items():
        house, category = key.split("__")
        out[house.replace("_", " ")][category.replace("_", " ")] = value
    return out


SHIFTED = {f"House {i % 4 + 1}": G[f"House {i}"] for i in range(1, 5)}          # every house moved right by one
NAMES_ROTATED = {h: {**row, "Names": G[f"House {i % 4 + 1}"]["Names"]} for i, (h, row) in enumerate(G.items(), 1)}
REORDERED_ATTRS = {h: {"Locations": r["Locations"], "Names": r["Names"], "Ages": r["Ages"]} for h, r in G.items()}
REORDERED_HOUSES = dict(reversed(list(G.items())))
ONE_SWAP = with_cells(G, House_1__Names="Thumper", House_2__Names="Peanut")
EXTRA = {**G, "House 5": {"Ages": "110,000 years", "Names": "Tusk", "Locations": "Yukon"}}
MISSING = {h: r for h, r in G.items() if h != "House 4"}
ALL_HOUSE_1 = {h: G["House 1"] for h in G}  # the study's matcher gave every copy credit
ZH_LABELS = {f"房子{i}": G[f"House {i}"] for i in range(1, 5)}
ZH_ORDINALS = {f"第{'一二三四'[i - 1]}栋房子": G[f"House {i}"] for i in range(1, 5)}
NUMERIC_LABELS = {str(i): G[f"House {i}"] for i in range(1, 5)}
MESSY = {f"  house  {i} ": {k.lower(): f"  {v.upper()} " for k, v in G[f"House {i}"].items()} for i in range(1, 5)}
PROMPT = ("A conversation between User and Assistant. ...\n\n# Puzzle to Solve\n\n...\n\n# Instruction\n\n"
          "Now please solve the above puzzle. Present your reasoning and solution in the following json "
          'format:\n\n{"reasoning": "___", "solution": {"House 1": {"Ages": "___", "Names": "___", '
          '"Locations": "___"}}}\n\nAssistant: <think>')


def case(gold, pred, expected, name):
    return pytest.param(gold, pred, expected, id=name)


WRAPPED = dumps({"reasoning": "r", "solution": G})


@pytest.mark.parametrize(
    "gold,pred,expected",
    [
        # the right grid, in the shapes models actually write
        case(GOLD, wrapped(G), 1.0, "correct grid"),
        case(GOLD, f"<think>ok</think><answer>\n```json\n{json.dumps(json.loads(WRAPPED), indent=2)}\n```\n</answer>",
             1.0, "json fence in answer"),
        case(GOLD, f"After checking every clue:\n```json\n{WRAPPED}\n```", 1.0, "json fence, no tags"),
        case(GOLD, f"<answer>{dumps(G)}</answer>", 1.0, "bare grid"),
        case(GOLD, f"<answer>{WRAPPED}", 1.0, "unclosed answer tag"),
        case(GOLD, wrapped(G, reasoning="Peanut {is not} 170k; the set {Fang, Thumper"), 1.0,
             "unbalanced braces in reasoning"),
        case(GOLD, "<answer>" + WRAPPED.replace('"r"', '"line\none"') + "</answer>", 1.0, "raw newline in string"),
        case(GOLD, "<answer>" + WRAPPED[:-2] + ",},}</answer>", 1.0, "trailing commas"),
        case(GOLD, PROMPT + wrapped(G), 1.0, "prompt plus response"),
        # the study's two matching faults: these must score 1 ...
        case(GOLD, wrapped(REORDERED_ATTRS), 1.0, "attributes reordered"),
        case(GOLD, wrapped(REORDERED_HOUSES), 1.0, "houses reordered"),
        # ... and these must not
        case(GOLD, wrapped(SHIFTED), 0.0, "every house shifted"),
        case(GOLD, wrapped(NAMES_ROTATED), 8 / 12, "names column rotated"),
        case(GOLD, wrapped(ALL_HOUSE_1), 3 / 12, "every house a copy of house 1"),
        # partly right
        case(GOLD, wrapped(ONE_SWAP), 10 / 12, "one swap"),
        case(GOLD, wrapped(EXTRA), 12 / 15, "extra house"),
        case(GOLD, wrapped(MISSING), 9 / 12, "missing house"),
        case(GOLD, wrapped(with_cells(G, House_3__Locations=["Alaska", "Siberia"])), 11 / 12, "hedged list cell"),
        case(GOLD, wrapped(with_cells(G, House_3__Locations={"value": "Alaska"})), 11 / 12, "nested object cell"),
        case(GOLD, wrapped({**G, "House 2": {**G["House 2"], "names": "Fang"}}), 11 / 12, "category written twice"),
        # two grids: the last one counts
        case(GOLD, f"Draft: {dumps(ONE_SWAP)} ... final: {WRAPPED}", 1.0, "draft then final grid"),
        case(GOLD, f"<think>Draft {dumps(G)}</think><answer>{dumps({'solution': ONE_SWAP})}</answer>", 10 / 12,
             "right draft, wrong answer"),
        case(GOLD, f"<answer>{dumps(ONE_SWAP)}</answer> then <answer>{dumps(G)}</answer>", 1.0, "two answer blocks"),
        # labels and values written differently
        case(GOLD, wrapped(ZH_LABELS), 1.0, "chinese house labels"),
        case(GOLD, wrapped(ZH_ORDINALS), 1.0, "chinese ordinal labels"),
        case(GOLD, wrapped(NUMERIC_LABELS), 1.0, "numeric labels"),
        case(GOLD, wrapped(MESSY), 1.0, "case and spacing"),
        case(GOLD_NUM, wrapped({"House 1": {"Scores": 2, "Names": "Ira"}, "House 2": {"Scores": 9.0, "Names": "Leslie"},
                                "House 3": {"Scores": 26.5, "Names": "Dwayne"}}), 1.0, "numbers as json numbers"),
        case(GOLD_ZH, wrapped(json.loads(GOLD_ZH)), 1.0, "chinese grid"),
        case(GOLD_ZH, wrapped({f"{i}号房子": r for i, r in enumerate(json.loads(GOLD_ZH).values(), 1)}), 1.0,
             "chinese labels on chinese grid"),
        case(GOLD_ZH, wrapped({"House 1": {"Names": "Chen Jing", "Fruits": "peach"},
                               "House 2": {"Names": "Li Na", "Fruits": "cherry"},
                               "House 3": {"Names": "Zhang Wei", "Fruits": "kiwi"}}), 0.0, "wrong language"),
        # no usable answer
        case(GOLD, "<answer>" + WRAPPED[:-30] + "</answer>", 0.0, "invalid json"),
        case(GOLD, "<answer>" + str({"solution": G}) + "</answer>", 0.0, "python dict"),
        case(GOLD, "<answer></answer>", 0.0, "empty answer"),
        case(GOLD, f"<think>{dumps(G)}</think><answer>   </answer>", 0.0, "grid only in the thought"),
        case(GOLD, "<answer>House 1: 230,000 years, Peanut, Scotland; House 2: ...</answer>", 0.0, "prose answer"),
        case(GOLD, "| House | Ages | Names |\n|---|---|---|\n| 1 | 230,000 years | Peanut |", 0.0, "markdown table"),
        case(GOLD, "<answer>" + WRAPPED[:200], 0.0, "cut off mid-grid"),
        case(GOLD, PROMPT + "I could not solve it.", 0.0, "the prompt's template is not an answer"),
        case(GOLD, None, 0.0, "none"),
        case(GOLD, b"\x00\xff\xfe{\x81}\x9c" * 100, 0.0, "binary garbage"),
        case(GOLD, 12345, 0.0, "not text"),
        case(GOLD, "x" * 3_000_000 + wrapped(G), 1.0, "multi-megabyte prose"),
        case(GOLD, "{" * 3_000_000 + wrapped(G), 1.0, "multi-megabyte open braces"),
        case(GOLD, "{" * 3_000_000 + dumps({"solution": G}), 1.0, "open braces, no tags"),
        case(GOLD, wrapped(G) + "}{" * 1_500_000, 0.0, "megabytes of junk after the answer (only the tail is read)"),
        case(GOLD, "<answer>" * 200_000 + dumps(G), 1.0, "many unclosed answer tags"),
    ],
)
def test_zebra_verifier(gold, pred, expected):
    result = mdrl.compute_score("zebra", pred, gold)
    assert result["score"] == pytest.approx(expected)
    assert result["acc"] is (expected == 1.0)


@pytest.mark.parametrize(
    "pred,reason",
    [
        (wrapped(G), "ok"),
        ("The answer is Peanut.", "no JSON solution"),
        (wrapped(with_cells(G, House_1__Names="x", House_2__Names="y", House_3__Ages="z")), "3/12 cells wrong"),
        (wrapped(MISSING), "missing houses: House 4; 3/12 cells wrong"),
        (wrapped(EXTRA), "extra houses: House 5"),
        ("<answer></answer>", "empty <answer>"),
        (wrapped({"House 1": G["House 1"], "house 1": G["House 1"], **{h: G[h] for h in list(G)[1:]}}),
         "duplicate houses: House 1; 3/12 cells wrong"),
        (wrapped({"House 0": G["House 1"], **{h: G[h] for h in ("House 2", "House 3", "House 4")}}),
         "missing houses: House 1; extra houses: House 0; 3/12 cells wrong"),
    ],
)
def test_zebra_reasons(pred, reason):
    assert mdrl.compute_score("zebra", pred, GOLD)["reason"] == reason


def test_binary_reward_and_aliases():
    for source in ("zebra", "ZEBRA", "zebra_puzzle", "zebralogic", "zebra_logic", "logic_puzzle_baron"):
        assert domain_for_source(source) is DOMAIN
    assert DOMAIN.default_reward.mode == "proportional"  # the study's reward is cell accuracy
    binary = mdrl.compute_score("zebra", wrapped(ONE_SWAP), GOLD, reward={"mode": "binary"})
    assert binary["score"] == 0.0 and binary["fraction"] == pytest.approx(10 / 12)
    assert mdrl.compute_score("zebra", wrapped(G), json.loads(GOLD), reward={"mode": "binary"})["score"] == 1.0


def test_anchor_matching_is_opt_in():
    """Label-free matching (rows keyed by the gold's first category) for puzzles whose houses are
    only rows; with it a shifted grid is right, a swapped cell still is not."""
    anchor = {"zebra_match": "anchor"}
    assert mdrl.compute_score("zebra", wrapped(SHIFTED), GOLD, anchor)["acc"]
    assert mdrl.compute_score("zebra", wrapped(REORDERED_ATTRS), GOLD, anchor)["acc"]
    assert mdrl.compute_score("zebra", wrapped(ALL_HOUSE_1), GOLD, anchor)["score"] == pytest.approx(3 / 12)
    assert mdrl.compute_score("zebra", wrapped(ONE_SWAP), GOLD, anchor)["score"] == pytest.approx(10 / 12)
    assert not mdrl.compute_score("zebra", wrapped(SHIFTED), GOLD)["acc"]
    with pytest.raises(DataError, match="zebra_match"):
        mdrl.compute_score("zebra", wrapped(G), GOLD, {"zebra_match": "first-value"})


@pytest.mark.parametrize(
    "ground_truth",
    ["not json", "{\"House 1\": ", "[]", "{}", json.dumps({"Peanut": {"Ages": "1"}}),
     json.dumps({"House 1": "Peanut"}), json.dumps({"House 1": {"Ages": ["1"]}}),
     json.dumps({"House 1": {"A": "1"}, "house 1": {"A": "2"}}), 42],
)
def test_malformed_ground_truth_is_a_data_error(ground_truth):
    with pytest.raises(DataError):
        mdrl.compute_score("zebra", wrapped(G), ground_truth)


def test_ground_truth_as_reward_model_dict():
    reward_model = {"categories": ["Ages", "Names", "Locations"], "ground_truth": GOLD, "labels": []}
    assert mdrl.compute_score("zebra", wrapped(G), reward_model)["acc"]


@pytest.mark.parametrize(
    "label,number",
    [("House 1", 1), ("house1", 1), (" HOUSE_2 ", 2), ("3", 3), (4, 4), ("House #5", 5), ("1st house", 1),
     ("房子2", 2), ("2号房子", 2), ("第三栋房子", 3), ("第十二间", 12), ("House 0", 0),
     ("Peanut", None), ("House A", None), ("", None), (True, None), (None, None), ("十十", None)],
)
def test_house_labels(label, number):
    assert zebra.house_number(label) == number


def test_json_scan_is_bounded_and_skips_nested_objects():
    text = '{"a": {"b": 1}} junk {"c": 2}'
    assert list(json_objects_from_end(text)) == [{"c": 2}, {"a": {"b": 1}}]
    assert list(json_objects_from_end('{"a": 1,}')) == [{"a": 1}]
    # only a bounded number of parse attempts, however many candidate objects there are
    assert list(json_objects_from_end("{x}" * 100_000)) == []
    assert answer_region("a <answer>x</answer> <answer>y") == ("y", "unclosed <answer> tag")
    assert answer_region("<ANSWER>x</Answer>") == ("x", "ok")
    assert answer_region("none") == ("none", "no <answer> tag")


# --------------------------------------------------------------------------------------------------
# The study's rows
# --------------------------------------------------------------------------------------------------


def _rows(paper_data, split):
    import pandas as pd

    return pd.read_parquet(paper_data / "zebra" / f"{split}.parquet").to_dict("records")


@pytest.mark.parametrize("split", ["test", pytest.param("train", marks=pytest.mark.slow)])
def test_study_references_score_and_wrong_grids_do_not(paper_data, split):
    rows = _rows(paper_data, split)
    misses, wrong_hits = [], []
    for i, row in enumerate(rows):
        problem = DOMAIN.load_row(row, f"{split}.parquet:{i}")
        gt = row["reward_model"]["ground_truth"]
        if not mdrl.compute_score(row["data_source"], problem.reference, gt)["acc"]:
            misses.append(i)
        grid = json.loads(gt)
        houses = list(grid)
        category = list(grid[houses[0]])[i % len(grid[houses[0]])]
        swapped = json.loads(gt)
        a, b = houses[i % len(houses)], houses[(i + 1) % len(houses)]
        swapped[a][category], swapped[b][category] = swapped[b][category], swapped[a][category]
        shifted = {houses[(k + 1) % len(houses)]: grid[h] for k, h in enumerate(houses)}
        for wrong in (swapped, shifted):
            if mdrl.compute_score("zebra", wrapped(wrong), gt)["acc"]:
                wrong_hits.append(i)
    assert misses == [] and wrong_hits == []


def test_study_rows_whose_houses_do_not_follow_the_choices(paper_data):
    """In 13 of the study's 2,758 rows the gold's house order is not the order of the first category's
    Choices (e.g. test row 119). A grid written in Choices order is right as a matching but has the
    wrong house labels: default (label) matching calls it wrong; opt-in anchor matching accepts it."""
    row = _rows(paper_data, "test")[119]
    gt = row["reward_model"]["ground_truth"]
    gold = json.loads(gt)
    first = str(row["reward_model"]["categories"][0])
    choices = list(row["reward_model"]["labels"][0])
    by_first = {r[first]: r for r in gold.values()}
    assert [r[first] for r in gold.values()] != choices
    in_choice_order = {f"House {i}": by_first[v] for i, v in enumerate(choices, 1)}
    assert not mdrl.compute_score("zebra", wrapped(in_choice_order), gt)["acc"]
    assert mdrl.compute_score("zebra", wrapped(in_choice_order), gt, {"zebra_match": "anchor"})["acc"]


def test_load_row_fields(paper_data):
    row = _rows(paper_data, "test")[0]
    problem = DOMAIN.load_row(row, "test.parquet:0")
    assert problem.question.startswith("# Puzzle to Solve")
    assert problem.question.rstrip().endswith("}}}") and "Assistant:" not in problem.question
    assert "### Choices" in problem.question and "A conversation between" not in problem.question
    assert problem.ground_truth == row["reward_model"]["ground_truth"]
    assert problem.difficulty == 4 and problem.lang == "en" and problem.domain == "zebra"
    assert problem.extra_info["categories"] == ["Ages", "Names", "Locations"]
    assert problem.extra_info["labels"][1] == ["Fang", "Peanut", "Snuffles", "Thumper"]
    assert DOMAIN.instructions["en"] in DOMAIN.render_question(problem)


def test_load_row_rejects_bad_rows():
    good = {"data_source": "zebra", "prompt": [{"role": "user", "content": "# Puzzle to Solve\n\nx"}],
            "reward_model": {"ground_truth": GOLD}}
    assert DOMAIN.load_row(good, "f:0").difficulty == 4
    with pytest.raises(DataError, match="f:1"):
        DOMAIN.load_row({**good, "reward_model": {"ground_truth": "{broken"}}, "f:1")
    with pytest.raises(DataError, match="f:2"):
        DOMAIN.load_row({**good, "reward_model": None}, "f:2")
    with pytest.raises(DataError, match="f:3"):
        DOMAIN.load_row({**good, "prompt": None}, "f:3")


# --------------------------------------------------------------------------------------------------
# Solver and generator
# --------------------------------------------------------------------------------------------------


def _brute_force_count(grid: Grid, clues, limit: int = 2) -> int:
    """Solutions by plain enumeration, category by category (independent of the solver's propagation)."""
    n, m = grid.houses, grid.categories
    perms = list(itertools.permutations(range(n)))
    position = [-1] * grid.size
    checks = [[c for c in clues if max(c.a, c.b) // n == k] for k in range(m)]  # checkable once k is placed
    count = 0

    def place(k: int) -> None:
        nonlocal count
        if k == m:
            count += 1
            return
        for perm in perms:
            position[k * n:(k + 1) * n] = perm
            if all(holds(c, position) for c in checks[k]):
                place(k + 1)
                if count >= limit:
                    return
        position[k * n:(k + 1) * n] = [-1] * n

    place(0)
    return count


def test_solver_counts_solutions():
    grid = Grid(3, 2)
    assert len(solve(grid, [], limit=100)) == 36  # 3! * 3!
    assert solve(grid, [Clue("found", 0, house=5 % 3), Clue("found", 0, house=0)]) == []
    clues = [Clue("found", 0, house=0), Clue("left_of", 0, 1), Clue("same", 0, 3), Clue("next_to", 4, 2),
             Clue("somewhere_left", 3, 5)]
    solutions = solve(grid, clues, limit=10)
    assert len(solutions) == _brute_force_count(grid, clues, limit=10) == 1
    assert all(holds(c, solutions[0]) for c in clues)
    with pytest.raises(ValueError):
        Clue("same", 0)
    with pytest.raises(ValueError):
        Clue("everywhere", 0, 1)


@pytest.mark.parametrize("difficulty", [2, 3, 43, 4])
def test_generated_puzzles_are_unique_by_brute_force(difficulty):
    for index in range(10):
        built = zebra.build_puzzle(index, 7, difficulty)
        puzzle = built.puzzle
        assert all(holds(c, puzzle.position) for c in puzzle.clues)
        assert _brute_force_count(puzzle.grid, puzzle.clues) == 1
        # pruned: every clue is needed
        for i in range(len(puzzle.clues)):
            assert len(solve(puzzle.grid, puzzle.clues[:i] + puzzle.clues[i + 1:])) == 2


@pytest.mark.parametrize("difficulty", zebra.DIFFICULTIES)
def test_generated_items_score_with_their_references(difficulty):
    for index in range(20):
        lang = ("en", "zh")[index % 2]
        problem = DOMAIN.generate(index, 0, difficulty, lang)
        assert problem.lang == lang and problem.difficulty == difficulty and problem.domain == "zebra"
        result = mdrl.compute_score(problem.data_source, problem.reference, problem.ground_truth)
        assert result == {"score": 1.0, "acc": True, "reason": "ok", "fraction": 1.0}
        gold = json.loads(problem.ground_truth)
        assert list(gold) == [f"House {h}" for h in range(1, difficulty + 1)]
        assert list(gold["House 1"]) == problem.extra_info["categories"]
        template = json.loads(problem.question.rsplit("\n\n", 1)[1])
        assert {h: list(r) for h, r in template["solution"].items()} == {h: list(r) for h, r in gold.items()}
        clue_lines = problem.question.split("\n\n")[3].splitlines()
        assert len(clue_lines) == problem.extra_info["clues"]
        # a wrong grid does not pass: swap the first category's values of houses 1 and 2
        first = problem.extra_info["categories"][0]
        gold["House 1"][first], gold["House 2"][first] = gold["House 2"][first], gold["House 1"][first]
        assert not mdrl.compute_score("zebra", wrapped(gold), problem.ground_truth)["acc"]


def test_every_clue_kind_is_used():
    kinds = {c.kind for index in range(20) for c in zebra.build_puzzle(index, 0, 4).puzzle.clues}
    assert kinds == set(KINDS)


def test_generator_is_deterministic_and_languages_share_the_puzzle():
    a, b = DOMAIN.generate(3, 11, 5, "en"), DOMAIN.generate(3, 11, 5, "en")
    assert a == b
    assert DOMAIN.generate(4, 11, 5, "en").question != a.question
    assert DOMAIN.generate(3, 12, 5, "en").question != a.question
    zh = DOMAIN.generate(3, 11, 5, "zh")
    assert zh.question != a.question and "待解谜题" in zh.question
    assert zh.extra_info["clues"] == a.extra_info["clues"]
    # same hidden grid: each category's values sit in the same houses in both languages
    en_grid, zh_grid = json.loads(a.ground_truth), json.loads(zh.ground_truth)
    for en_name, zh_name in zip(a.extra_info["categories"], zh.extra_info["categories"]):
        pool = next(p for p in zebra.POOLS if p.name == en_name)
        assert pool.zh_name == zh_name
        for house in en_grid:
            assert pool.zh_values[pool.values.index(en_grid[house][en_name])] == zh_grid[house][zh_name]
    # an English answer to the Chinese puzzle is wrong
    assert not mdrl.compute_score("zebra", a.reference, zh.ground_truth)["acc"]


def test_difficulty_encoding():
    assert (zebra.grid_for_difficulty(4).houses, zebra.grid_for_difficulty(4).categories) == (4, 4)
    assert (zebra.grid_for_difficulty(53).houses, zebra.grid_for_difficulty(53).categories) == (5, 3)
    problem = DOMAIN.generate(0, 0, 43, "en")
    assert len(json.loads(problem.ground_truth)) == 4 and len(problem.extra_info["categories"]) == 3
    for bad in (0, 1, 7, 19, 91, 100):
        with pytest.raises(ValueError):
            zebra.grid_for_difficulty(bad)
    with pytest.raises(ValueError):
        DOMAIN.generate(0, 0, 3, "fr")


def test_value_pools_are_unambiguous():
    for attr in ("values", "zh_values"):
        every = [zebra.normalize_text(v) for p in zebra.POOLS for v in getattr(p, attr)]
        assert len(every) == len(set(every)), attr
    for pool in zebra.POOLS:
        assert len(pool.values) == len(pool.zh_values) >= max(zebra.DIFFICULTIES)
        assert "{v}" in pool.phrase and "{v}" in pool.zh_phrase
    assert len(zebra.POOLS) >= max(zebra.DIFFICULTIES)


@pytest.mark.slow
@pytest.mark.parametrize("difficulty", zebra.DIFFICULTIES)
def test_thousand_generated_items_score_with_their_references(difficulty):
    for index in range(1000):
        problem = DOMAIN.generate(index, 1, difficulty, "zh" if index % 2 else "en")
        result = mdrl.compute_score("zebra", problem.reference, problem.ground_truth)
        assert result["score"] == 1.0, (index, result)
