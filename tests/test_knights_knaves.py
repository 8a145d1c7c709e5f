"""knights_knaves: verifier tables (Math-Verify style), solver, generator and the study's KK test set."""

from __future__ import annotations

import itertools
import json
import random

import pytest

import mdrl
from mdrl.domains import DataError, domain_for_source, get_domain
from mdrl.domains import knights_knaves as kk

STATEMENTS3 = ("(('or', ('lying', 1), ('telling-truth', 1)), ('and', ('telling-truth', 2), ('telling-truth', 1)), "
               "('and', ('telling-truth', 1), ('lying', 1)))")
GOLD3 = {"solution_text_format": "(1) Aurora is a knight\n(2) Logan is a knave\n(3) Henry is a knave",
         "statements": STATEMENTS3}
# a study-format ground truth as a JSON string, with names that contain one another
GOLD_JACK = json.dumps({"solution_text_format": "(1) Jackson is a knight\n(2) Jack is a knave\n(3) Ava is a knight"
                                                "\n(4) Avery is a knave"})
GOLD_ZH = {"solution_text_format": "(1) 张伟 is a knight\n(2) 王芳 is a knave\n(3) 李娜 is a knight"}
# names that are not one Latin word, and a CJK name inside another
GOLD_ODD = {"solution_text_format": "(1) Mary Ann is a knight\n(2) O'Neil is a knave\n(3) 张伟 is a knave"
                                    "\n(4) 张伟华 is a knight"}

OK3 = "(1) Aurora is a knight\n(2) Logan is a knave\n(3) Henry is a knave"
THINK = "<think>Assume Aurora is a knight. Then Logan's claim is false...</think>\n"


def ans(body: str) -> str:
    return f"{THINK}<answer> {body} </answer>"


# (gold, pred, expected (binary score, proportional score))
CASES = [
    # the study's own format, and the study's bug: extra knight/knave words after a correct list
    (GOLD3, ans(OK3), (1, 1)),
    (GOLD3, ans(OK3 + "\nSo there are 1 knight and 2 knaves."), (1, 1)),
    (GOLD3, ans(OK3 + "\n\nSo there are 2 knights."), (1, 1)),
    (GOLD3, ans(OK3 + "\nKnights always tell the truth and knaves always lie."), (1, 1)),
    # order and case do not matter: people are matched by name
    (GOLD3, ans("(1) Henry is a knave\n(2) Aurora is a knight\n(3) Logan is a knave"), (1, 1)),
    (GOLD3, ans("(1) AURORA is a KNIGHT\n(2) logan is a knave\n(3) Henry Is A Knave"), (1, 1)),
    # loose phrasings
    (GOLD3, ans("Aurora is a knight, Logan is a knave, and Henry is a knave."), (1, 1)),
    (GOLD3, ans("Aurora: knight\nLogan: knave\nHenry: knave"), (1, 1)),
    (GOLD3, ans("Aurora — knight; Logan – knave; Henry - Knave"), (1, 1)),
    (GOLD3, ans("**Aurora** is a **knight**\n- **Logan**: Knave\n- **Henry**: Knave"), (1, 1)),
    (GOLD3, ans("| Name | Role |\n|---|---|\n| Aurora | Knight |\n| Logan | Knave |\n| Henry | Knave |"), (1, 1)),
    (GOLD3, ans('{"Aurora": "knight", "Logan": "knave", "Henry": "knave"}'), (1, 1)),
    (GOLD3, ans("1. Aurora: Knight 2. Logan: Knave 3. Henry: Knave"), (1, 1)),
    (GOLD3, ans("Aurora is a truth-teller; Logan and Henry are liars."), (1, 1)),
    (GOLD3, ans("Aurora is not a knave, Logan is not a knight, and Henry isn't a knight."), (1, 1)),
    (GOLD3, ans("Aurora is a knight, while Logan and Henry are both knaves."), (1, 1)),
    (GOLD3, ans("Knights: Aurora\nKnaves: Logan, Henry"), (1, 1)),
    (GOLD3, ans("The knight is Aurora. The knaves are Logan and Henry."), (1, 1)),
    (GOLD3, ans("So there are 2 knaves: Logan and Henry, and Aurora is a knight."), (1, 1)),
    # explanations inside the answer: cited statements, hypotheticals and reported speech claim nothing
    (GOLD3, ans('Aurora is a knight because her statement "Logan is a knave or Logan is a knight" is always '
                'true. Logan is a knave. Henry is a knave.'), (1, 1)),
    (GOLD3, ans("Logan is a knave, because if he were a knight, Henry would be a knight. Henry is a knave. "
                "Aurora is a knight."), (1, 1)),
    (GOLD3, ans("Aurora is a knight. Logan is a knave since his claim that Henry is a knight is false. "
                "Henry is a knave."), (1, 1)),
    (GOLD3, ans("From the statements we conclude Aurora is a knight, Logan is a knave, Henry is a knave."), (1, 1)),
    (GOLD3, ans("Suppose Aurora is a knave; that contradicts her statement. So Aurora is a knight, Logan is a "
                "knave, Henry is a knave."), (1, 1)),
    # Chinese
    (GOLD3, ans("Aurora是骑士，因为她说“Logan是无赖或者Logan是骑士”为真。Logan是说谎者而Henry是无赖。"), (1, 1)),
    (GOLD3, ans("(1) Aurora是骑士\n(2) Logan是无赖\n(3) Henry是骗子"), (1, 1)),
    (GOLD3, ans("Aurora 是 骑士，Logan 是 恶棍，Henry 不是骑士。"), (1, 1)),
    (GOLD_ZH, ans("(1) 张伟是骑士\n(2) 王芳是无赖\n(3) 李娜是骑士"), (1, 1)),
    (GOLD_ZH, ans("骑士：张伟、李娜\n无赖：王芳"), (1, 1)),
    (GOLD_ZH, ans("张伟和李娜都是骑士，王芳是说谎者。"), (1, 1)),
    (GOLD_ZH, ans("(1) 张伟是骑士\n(2) 王芳是骑士\n(3) 李娜是骑士"), (0, 2 / 3)),
    # names that contain one another are told apart
    (GOLD_JACK, ans("Jackson is a knight, Jack is a knave, Ava is a knight, Avery is a knave."), (1, 1)),
    (GOLD_JACK, ans("Jack is a knight, Jackson is a knave, Avery is a knight, Ava is a knave."), (0, 0)),
    (GOLD_ODD, ans("Mary Ann is a knight, O'Neil is a knave, 张伟华是骑士，张伟是无赖。"), (1, 1)),
    (GOLD_ODD, ans("(1) mary ann: knight\n(2) o'neil: knave\n(3) 张伟: 无赖\n(4) 张伟华: 骑士"), (1, 1)),
    (GOLD_ODD, ans("Mary is a knight, Neil is a knave, 张伟华是无赖，张伟是骑士。"), (0, 0)),
    # prompt + response, as some veRL reward managers pass it
    (GOLD3, "User: Now the user asks you ... for example, <answer> (1) Zoey is a knight\n(2) Oliver is a knight"
            "\n(3)... </answer>.\nAssistant: " + ans(OK3), (1, 1)),
    # wrong, missing, extra, contradictory
    (GOLD3, ans("(1) Aurora is a knight\n(2) Logan is a knight\n(3) Henry is a knave"), (0, 2 / 3)),
    (GOLD3, ans("(1) Aurora is a knave\n(2) Logan is a knight\n(3) Henry is a knight"), (0, 0)),
    (GOLD3, ans("(1) Aurora is a knight\n(2) Logan is a knave"), (0, 2 / 3)),
    (GOLD3, ans("(1) Aurora is a knight\n(2) Logan is a knave\n(3) Harry is a knave"), (0, 2 / 3)),
    (GOLD3, ans(OK3 + "\n(4) Zoey is a knight\n(5) Oliver is a knave"), (1, 1)),
    # a JSON list of quoted sentences reads like cited statements: no claims (a documented trade-off)
    (GOLD3, ans('["Aurora is a knight", "Logan is a knave", "Henry is a knave"]'), (0, 0)),
    (GOLD3, ans("(1) Aurora is a knight\n(2) Logan is a knave\n(3) Henry is a knave or a knight"), (0, 2 / 3)),
    (GOLD3, ans("Aurora: knight/knave\nLogan: knight/knave\nHenry: knight/knave"), (0, 0)),
    (GOLD3, ans(OK3 + "\n(1) Aurora is a knave\n(2) Logan is a knight\n(3) Henry is a knight"), (0, 0)),
    (GOLD3, ans("Aurora is a knight. Logan is a knight. Wait, no: Logan is a knave. Henry is a knave."), (0, 2 / 3)),
    (GOLD3, ans("(1) knight\n(2) knave\n(3) knave"), (0, 0)),  # roles without names: no positional matching
    # tags and garbage
    (GOLD3, f"{THINK}<answer></answer>", (0, 0)),
    (GOLD3, f"{THINK}<answer> {OK3}", (0, 0)),
    (GOLD3, f"{THINK}{OK3}", (0, 0)),
    (GOLD3, "<think>" + OK3 + "</think>\n<answer>I am not sure.</answer>", (0, 0)),
    (GOLD3, None, (0, 0)),
    (GOLD3, b"\xff\xfe\x00\x81 knight knave \xc3", (0, 0)),
    (GOLD3, 12345, (0, 0)),
    (GOLD3, "", (0, 0)),
    # many <answer> blocks: the last one counts
    (GOLD3, ans("(1) Aurora is a knave\n(2) Logan is a knight\n(3) Henry is a knight") + "\n" + ans(OK3), (1, 1)),
    (GOLD3, ans(OK3) * 50 + ans("(1) Aurora is a knave"), (0, 0)),
    # long inputs built to make regexes backtrack: they must fail fast, not hang
    (GOLD3, ans("Aurora and " * 5000), (0, 0)),
    (GOLD3, ans("Knights: " + "Aurora, " * 7000), (0, 1 / 3)),
    (GOLD3, ans("Aurora" + " " * 20_000 + "," + " " * 20_000 + "x"), (0, 0)),
    (GOLD3, ans("Aurora is a knight or a knave " * 2000), (0, 0)),
    # a multi-megabyte response
    (GOLD3, "<think>" + "Logan is a knight? " * 200_000 + "</think>\n<answer>" + OK3 + "</answer>", (1, 1)),
]


@pytest.mark.parametrize("gold,pred,expected", CASES)
def test_verifier_table(gold, pred, expected):
    binary = mdrl.compute_score("kk_logic", pred, gold)
    proportional = mdrl.compute_score("kk_logic", pred, gold, reward={"mode": "proportional"})
    assert (binary["score"], proportional["score"]) == pytest.approx(expected), (binary, proportional)
    assert binary["acc"] is (expected[0] == 1)
    assert (binary["reason"] == "ok") is (expected[0] == 1)


@pytest.mark.parametrize("pred,reason", [
    (ans(OK3), "ok"),
    (OK3, "no <answer> tag"),
    (f"<answer> {OK3}", "unclosed <answer> tag"),
    (ans("(1) Aurora is a knight"), "missing roles for: Logan, Henry"),
    (ans("(1) Aurora is a knight\n(2) Logan is a knight\n(3) Henry is a knight"), "wrong: Logan, Henry"),
    (ans("Aurora is a knight. Logan is a knave. Henry is a knight or a knave."), "contradictory role for Henry"),
    (ans("Aurora is a knave or a knight. Logan is a knight."),
     "contradictory role for Aurora; missing roles for: Henry; wrong: Logan"),
])
def test_reasons(pred, reason):
    assert mdrl.compute_score("kk", pred, GOLD3)["reason"] == reason


def test_unknown_names_are_flagged_not_scored():
    verdict = kk.verify(ans(OK3 + "\n(4) Zoey is a knight"), GOLD3)
    assert verdict.acc and verdict.details["unknown_names"] == ["Zoey"]
    assert "unknown_names" not in kk.verify(ans(OK3), GOLD3).details


@pytest.mark.parametrize("source", ["kk_logic", "KK_LOGIC", "kk", "knights_knaves", "knights-and-knaves"])
def test_routing(source):
    assert domain_for_source(source).name == "knights_knaves"


@pytest.mark.parametrize("gold", [
    {"statements": STATEMENTS3},  # no solution_text_format
    {"solution_text_format": ""},
    {"solution_text_format": "Aurora is a knight, Logan is a knave"},
    {"solution_text_format": "(1) Aurora is a knight\n(2) Aurora is a knave"},  # a name twice
    {"solution_text_format": 7},
    '{"solution_text_format": "(1) Aurora is a knight"',  # broken JSON
    ["(1) Aurora is a knight"],
])
def test_malformed_ground_truth_is_a_data_error(gold):
    with pytest.raises(DataError):
        mdrl.compute_score("kk_logic", ans(OK3), gold)


def test_ground_truth_forms():
    as_json = json.dumps(GOLD3)
    bare_text = GOLD3["solution_text_format"]
    for gold in (GOLD3, as_json, bare_text):
        assert mdrl.compute_score("kk_logic", ans(OK3), gold)["acc"]
    assert kk.parse_ground_truth(GOLD3) == kk.Solution(("Aurora", "Logan", "Henry"), ("knight", "knave", "knave"))


# --------------------------------------------------------------------------------------------------
# solver
# --------------------------------------------------------------------------------------------------


def naive_truth(node, assignment):
    """An independent, obvious evaluator of one statement under one assignment (True = knight)."""
    op, args = node[0], node[1:]
    if op == "telling-truth":
        return assignment[args[0]]
    if op == "lying":
        return not assignment[args[0]]
    values = [naive_truth(a, assignment) for a in args]
    return {"not": lambda: not values[0], "and": lambda: all(values), "or": lambda: any(values),
            "->": lambda: (not values[0]) or values[1], "<=>": lambda: values[0] == values[1]}[op]()


def naive_solve(statements):
    n = len(statements)
    return [a for a in itertools.product((False, True), repeat=n)
            if all(naive_truth(s, a) == a[i] for i, s in enumerate(statements))]


def test_solver_agrees_with_naive_enumeration():
    rng = random.Random(0)
    config = kk.GeneratorConfig(max_depth=3, max_width=3)
    for _ in range(300):
        n = rng.randint(1, 6)
        statements = tuple(kk._sample_statement(rng, n, 1, config) for _ in range(n))
        assert sorted(kk.solve(statements)) == sorted(naive_solve(statements))


@pytest.mark.parametrize("statements,solutions", [
    ("(('telling-truth', 0),)", [(False,), (True,)]),  # "I am a knight": no information
    ("(('lying', 0),)", []),  # "I am a knave": no one can say it
    ("(('lying', 1), ('lying', 0))", [(False, True), (True, False)]),
    # A: "A and B are knaves" can only be a knave's lie, so B is a knight, whose "A is a knave" holds
    ("(('and', ('lying', 0), ('lying', 1)), ('lying', 0))", [(False, True)]),
    # the same first claim, with B saying "A is a knight": nobody can be anything
    ("(('and', ('lying', 0), ('lying', 1)), ('telling-truth', 0))", []),
    # a knight A would make B a knave who truthfully says "A is not a knave": only both knaves work
    ("(('<=>', ('telling-truth', 0), ('lying', 1)), ('not', ('lying', 0)))", [(False, False)]),
])
def test_solver_small_cases(statements, solutions):
    assert sorted(kk.solve(statements)) == solutions


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')",
    "(('telling-truth', 3),)",  # person 3 of 1
    "(('xor', ('lying', 0), ('lying', 0)),)",
    "(('->', ('lying', 0)),)",
    "(('lying', True),)",
    "()",
    "not a tuple at all",
])
def test_statements_are_validated(text):
    with pytest.raises(DataError):
        kk.parse_statements(text)


# --------------------------------------------------------------------------------------------------
# the study's KK test set
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kk_rows(paper_data):
    pd = pytest.importorskip("pandas")
    return pd.read_parquet(paper_data / "kk" / "test.parquet").to_dict("records")


def test_study_puzzles_have_exactly_their_solution(kk_rows):
    assert len(kk_rows) == 600
    for row in kk_rows:
        assert kk.solve(row["statements"]) == [tuple(bool(x) for x in row["solution"])]


def test_study_references_score_one_and_flips_never(kk_rows):
    misses = []
    flips = 0
    for i, row in enumerate(kk_rows):
        problem = kk.load_row(row, f"test.parquet:{i}")
        assert problem.question == row["quiz"] and problem.difficulty == len(row["names"])
        gold = row["reward_model"]["ground_truth"]
        if not mdrl.compute_score(row["data_source"], problem.reference, gold)["acc"]:
            misses.append(i)
        # the study's prose form, and the list followed by a count (the study's own scorer gave 0)
        knights = sum(bool(x) for x in row["solution"])
        for body in (row["solution_text"], f"{row['solution_text_format']}\nSo there are {knights} knights."):
            assert mdrl.compute_score("kk_logic", ans(body), gold)["acc"], (i, body)
        solution = kk.parse_ground_truth(gold)
        n = len(solution.names)
        for k in range(n):
            roles = [("knave" if r == "knight" else "knight") if j == k else r for j, r in enumerate(solution.roles)]
            body = "\n".join(f"({j + 1}) {name} is a {r}" for j, (name, r) in enumerate(zip(solution.names, roles)))
            assert mdrl.compute_score("kk_logic", ans(body), gold)["score"] == 0.0
            proportional = mdrl.compute_score("kk_logic", ans(body), gold, reward={"mode": "proportional"})
            assert proportional["score"] == pytest.approx((n - 1) / n)
            flips += 1
    assert len(misses) <= 3, misses  # >= 99.5% of 600
    assert flips == sum(len(r["names"]) for r in kk_rows)


def test_load_row_rejects_broken_rows(kk_rows):
    row = dict(kk_rows[0])
    row["reward_model"] = {"ground_truth": {"solution_text_format": "garbage"}}
    with pytest.raises(DataError, match="test.parquet:0"):
        kk.load_row(row, "test.parquet:0")
    row = dict(kk_rows[0], names=["Someone", "Else", "Entirely"])
    with pytest.raises(DataError, match="differ"):
        kk.load_row(row, "test.parquet:0")


# --------------------------------------------------------------------------------------------------
# generator
# --------------------------------------------------------------------------------------------------


def check_generated(problem, lang):
    truth = kk.parse_ground_truth(problem.ground_truth)
    assert len(truth.names) == problem.difficulty and problem.lang == lang
    solutions = kk.solve(problem.ground_truth["statements"])
    assert solutions == [tuple(r == "knight" for r in truth.roles)]  # proven unique, and it is the answer
    assert all(name in problem.question for name in truth.names)
    exported = json.loads(json.dumps(problem.ground_truth))  # survives a veRL parquet round trip
    assert mdrl.compute_score(problem.data_source, problem.reference, exported)["score"] == 1.0


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("difficulty", kk.DIFFICULTIES)
def test_generated_items_are_unique_and_score_one(difficulty, lang):
    for index in range(30):
        check_generated(kk.generate(index, 7, difficulty, lang), lang)


@pytest.mark.slow
@pytest.mark.parametrize("difficulty", kk.DIFFICULTIES)
def test_generated_items_many(difficulty):
    for index in range(1000):
        check_generated(kk.generate(index, 11, difficulty, "en"), "en")
    for index in range(200):
        check_generated(kk.generate(index, 11, difficulty, "zh"), "zh")


def test_generator_is_deterministic():
    assert kk.generate(5, 3, 6, "en") == kk.generate(5, 3, 6, "en")
    questions = {kk.generate(i, 3, 6, "en").question for i in range(20)}
    assert len(questions) == 20
    assert kk.generate(5, 3, 6, "en").question != kk.generate(5, 4, 6, "en").question
    # one puzzle in two languages
    en, zh = kk.generate(5, 3, 6, "en"), kk.generate(5, 3, 6, "zh")
    assert en.ground_truth["statements"] == zh.ground_truth["statements"]
    assert "You meet 6 inhabitants" in en.question and "你遇到了6位居民" in zh.question


def test_generator_rejects_bad_arguments():
    with pytest.raises(ValueError):
        kk.generate(0, 0, 1, "en")
    with pytest.raises(ValueError):
        kk.generate(0, 0, 9, "en")
    with pytest.raises(ValueError):
        kk.generate(0, 0, 3, "fr")


def test_deeper_statements_render_and_solve():
    config = kk.GeneratorConfig(max_depth=3, max_width=3)
    problem = kk.generate(2, 0, 5, "en", config=config)
    check_generated(problem, "en")


@pytest.mark.parametrize("pool", [kk.NAMES_EN, kk.NAMES_ZH])
def test_name_pools_cannot_be_confused(pool):
    assert len(set(pool)) == len(pool) >= kk.MAX_PEOPLE
    for a, b in itertools.permutations(pool, 2):
        assert a.lower() not in b.lower()
    reserved = set("是不非骑士无赖骗子恶棍说谎者和与及都均为")
    assert not any(set(name) & reserved for name in pool)


def test_domain_contract():
    domain = get_domain("knights_knaves")
    assert domain.group == "puzzle" and domain.difficulties == tuple(range(2, 9))
    problem = domain.generate(0, 0, 3, "zh")
    assert domain.render_question(problem).endswith(kk.INSTRUCTIONS["zh"])
    assert "<answer>" in kk.INSTRUCTIONS["en"] and "<answer>" in kk.INSTRUCTIONS["zh"]
