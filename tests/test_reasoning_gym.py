"""reasoning-gym's tasks as domains (`rg:<task>`): their references score 1 through mdrl.compute_score,
what a shortcut-seeking policy writes scores 0, and they work wherever a domain does (sources, suites,
mixtures, a study cell)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("reasoning_gym")

import mdrl
from mdrl.data import generate
from mdrl.domains import DataError, get_domain
from mdrl.domains.reasoning_gym import MAX_ANSWER_CHARS, TESTED_TASKS


@pytest.fixture(scope="module", params=TESTED_TASKS)
def items(request):
    task = f"rg:{request.param}"
    return task, generate(task, 100, seed=3)


def _score(problem, response, reward=None):
    return mdrl.compute_score(problem.data_source, response, problem.ground_truth, problem.extra_info, reward=reward)


def test_at_least_ten_tasks_are_checked():
    assert len(TESTED_TASKS) >= 10


def test_references_score_one_and_a_wrong_answer_does_not(items):
    task, problems = items
    assert len(problems) == 100 and {p.domain for p in problems} == {task}
    assert len({p.question for p in problems}) >= 50, "too few distinct questions"
    # propositional_logic's reference is its metadata's example answer, which reasoning-gym gets wrong for
    # ~1% of items: those have none; every other task has a reference for each item
    problems = [p for p in problems if p.reference is not None]
    assert len(problems) >= (97 if task == "rg:propositional_logic" else 100)
    scores = [_score(p, p.reference) for p in problems]
    assert all(s["score"] == 1.0 and s["acc"] for s in scores), [s for s in scores if not s["acc"]][:3]
    wrong = [_score(p, "<answer>certainly not this</answer>") for p in problems[:20]]
    assert all(s["score"] == 0.0 and not s["acc"] for s in wrong)
    # a near miss: the reference answer one character short (or one longer), on every item;
    # not for propositional_logic, where any implied formula is right, and ~1/4 of the items have
    # contradictory premises that imply every formula (see the module docstring)
    if task != "rg:propositional_logic":
        near = [_score(p, f"<answer>{_near_miss(_answer(p))}</answer>", reward="proportional") for p in problems]
        assert all(s["score"] < 1.0 and not s["acc"] for s in near), [s for s in near if s["acc"]][:3]


def _answer(problem):
    return problem.reference.removeprefix("<answer>").removesuffix("</answer>")


def _near_miss(answer):
    return answer[:-1] if len(answer) > 1 else answer + "7"


def test_shortcuts_score_zero(items):
    _, problems = items
    problems = [p for p in problems if p.reference is not None]
    problem = problems[0]
    answer = problem.reference.removeprefix("<answer>").removesuffix("</answer>")
    other = next(p for p in problems if p.reference != problem.reference)
    other_answer = other.reference.removeprefix("<answer>").removesuffix("</answer>")
    attempts = {
        "no tag": answer,
        "empty": "<answer></answer>",
        "unclosed": f"<answer>{answer}",
        # (another item's answer may be right here too: a colouring or a formula of many right ones)
        "right then wrong (the last answer counts)": f"<answer>{answer}</answer> <answer>not this</answer>",
        "every candidate at once": f"<answer>{answer} {other_answer} {answer}, {other_answer}</answer>",
        "huge": f"<answer>{answer}{' ' * max(MAX_ANSWER_CHARS, 4 * len(answer))}x</answer>",
        "code": "<answer>__import__('os').system('true')</answer>",
        "a Python object": f"<answer>{{'answer': {answer!r}, 'score': 1.0}}</answer>",
        "the answer outside the tag": f"{answer} <answer>?</answer>",
        "not text": None,
    }
    for name, response in attempts.items():
        result = _score(problem, response, reward="binary")
        assert result["score"] == 0.0 and not result["acc"], (name, result)
    # reasoning-gym's default scorer pays len(oracle)/len(answer) for any answer holding the oracle;
    # that credit is not passed on, so listing candidates earns nothing in proportional mode either
    from reasoning_gym.dataset import ProceduralDataset
    from reasoning_gym.factory import DATASETS

    if DATASETS[problem.domain.removeprefix("rg:")][0].score_answer is ProceduralDataset.score_answer:
        for name in ("every candidate at once", "huge"):
            result = _score(problem, attempts[name], reward="proportional")
            assert result["score"] == 0.0 and result["fraction"] == 0.0, (name, result)


def test_malformed_ground_truth_is_a_data_error():
    with pytest.raises(DataError):
        mdrl.compute_score("rg:gcd", "<answer>1</answer>", "not json")
    with pytest.raises(DataError):
        mdrl.compute_score("rg:gcd", "<answer>1</answer>", json.dumps({"task": "gcd"}))
    truth = json.loads(generate("rg:gcd", 1, seed=1)[0].ground_truth)
    for bad in ({"task": "lcm"}, {"level": 99}, {"level": "1"}, {"entry": {"answer": "3"}}, {"entry": None},
                {"entry": {"__tuple__": 5}}):
        with pytest.raises(DataError):
            mdrl.compute_score("rg:gcd", "<answer>1</answer>", json.dumps({**truth, **bad}))


def test_items_keep_their_types_through_the_ground_truth():
    """Scorers compare tuples (arc_agi's and rearc's boards) and read int keys: the JSON ground truth
    gives them back as they were."""
    from mdrl.domains.reasoning_gym import decode_entry, encode_entry

    item = {"question": "q", "answer": None, "metadata": {"board": ((1, 2), (3,)), "seen": {3, 1}, "by_id": {1: [2]},
                                                           "__tuple__": "a key like a tag", "x": [(1,)]}}
    assert decode_entry(json.loads(json.dumps(encode_entry(item)))) == item
    for problem in generate("rg:rearc", 3, seed=0, split="all"):
        assert _score(problem, problem.reference)["acc"]


def test_seeds_give_different_items():
    """reasoning-gym draws item i of dataset seed s from Random(s + i): seeding datasets with seed + index
    would make seed 4's items seed 3's shifted by one."""
    for task in ("rg:gcd", "rg:basic_arithmetic"):
        three, four = ([p.question for p in generate(task, 40, seed=seed, difficulties=[1], split="all")]
                       for seed in (3, 4))
        assert len(set(three) & set(four)) <= 2, task


def test_unknown_task_suggests_and_chinese_is_refused():
    with pytest.raises(KeyError, match="rg:gcd"):
        get_domain("rg:gcdd")
    with pytest.raises(DataError, match="English only"):
        generate("rg:gcd", 2, lang="zh")
    with pytest.raises(KeyError, match="composite"):
        get_domain("rg:composite")


def test_without_the_package_the_error_says_what_to_install():
    code = ("import sys; sys.modules['reasoning_gym'] = None\n"
            "import mdrl\n"
            "truth = {'numbers': [1, 2], 'target': 3}\n"
            "assert mdrl.compute_score('countdown', '<answer>1 + 2</answer>', truth)['acc']\n"
            "from mdrl.domains import get_domain\n"
            "get_domain('rg:gcd')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0 and "ImportError" in result.stderr and "pip install 'mdrl[rg]'" in result.stderr


def test_broken_curriculum_levels_are_cut():
    """reasoning-gym rejects its own configs at some curriculum levels: the domain stops before them
    (knight_swap's first level already fails: its default config is the one level)."""
    assert get_domain("rg:caesar_cipher").difficulties == (1, 2)
    assert get_domain("rg:knight_swap").difficulties == (1,)
    for task, n in (("rg:caesar_cipher", 4), ("rg:knight_swap", 1)):  # knight_swap: up to 2 s an item
        for problem in generate(task, n, seed=3, split="all"):
            assert _score(problem, problem.reference)["acc"]


def test_levels_follow_the_task_curriculum():
    domain = get_domain("rg:basic_arithmetic")
    assert domain.group == "reasoning_gym" and len(domain.difficulties) > 1
    easy, hard = (generate("rg:basic_arithmetic", 30, seed=0, difficulties=[level])
                  for level in (domain.difficulties[0], domain.difficulties[-1]))
    assert sum(len(p.question) for p in hard) > sum(len(p.question) for p in easy)
    assert [p.question for p in generate("rg:gcd", 5, seed=4)] == [p.question for p in generate("rg:gcd", 5, seed=4)]


def test_works_as_a_source_a_suite_and_in_a_mixture(tmp_path):
    from mdrl.data import BuildConfig, build_dataset, parse_mix, sources
    from mdrl.data.mixture import expand_mix, resolve_mix
    from mdrl.data.sources import SourceSpec
    from mdrl.eval.suites import load_suite

    spec = SourceSpec.parse("gen:rg:gcd:1-2?n=10&seed=2")
    assert (spec.domain, spec.difficulties, spec.n) == ("rg:gcd", (1, 2), 10)
    suite = load_suite("gen:rg:gcd:1:12:7")
    assert len(suite) == 12 and suite.name == "gen:rg:gcd:1:12:7"
    assert parse_mix("knights_knaves:1,rg:gcd") == (("knights_knaves", 1.0), ("rg:gcd", 1.0))
    assert parse_mix("math:1,rg:gcd") == (("math", 1.0), ("rg:gcd", 1.0))
    usable = {"math", "countdown", "rg:gcd"}
    assert resolve_mix("math:1,rg:gcd", usable) == {"math": 0.25, "countdown": 0.25, "rg:gcd": 0.5}
    assert [(key, sorted(members)) for key, _, members in expand_mix("math:1,rg:gcd", usable)] == [
        ("math", ["countdown", "math"]), ("rg:gcd", ["rg:gcd"])]
    direct = sources.generate("rg:basic_arithmetic", n=10, seed=5, difficulties=(1,))
    assert len(direct) == 10 and {(p.domain, p.data_source, p.difficulty, p.lang) for p in direct} == {
        ("rg:basic_arithmetic", "rg:basic_arithmetic", 1, "en")}
    assert not any(sources.is_heldout(p) for p in direct)
    assert parse_mix("rg:gcd:2") == (("rg:gcd", 2.0),)
    built = build_dataset(BuildConfig(mix="knights_knaves:1,rg:gcd:1", n=20))
    assert sorted({p.domain for p in built.problems}) == ["knights_knaves", "rg:gcd"]


def test_a_tiny_world_study_cell_trains_on_a_mixture_with_a_reasoning_gym_task(tmp_path):
    shipped = Path(mdrl.__file__).parent / "tiny" / "shipped" / "instruct"
    config = tmp_path / "study.yaml"
    config.write_text(textwrap.dedent(f"""
        name: rg-cell
        models: [{{name: instruct, path: "{shipped}", kind: instruct}}]
        mixtures: [{{name: kk+rg, mix: "knights_knaves:1,rg:basic_arithmetic:1"}}]
        seeds: [1]
        suites: ["gen:rg:basic_arithmetic:1:8:7", "gen:knights_knaves:2:8:7"]
        data: {{n: 8, difficulty: {{knights_knaves: "2", "rg:basic_arithmetic": "1"}}}}
        train:
          extends: tiny
          grpo: {{max_steps: 1, num_generations: 2, train_batch_size: 4, micro_batch_size: 4,
                  max_completion_length: 16, max_prompt_length: 512}}
          run: {{save_steps: 1, tensorboard: false}}
        eval:
          backend: hf
          backend_options: {{batch_size: 16, device: cpu}}
          sampling: {{temperature: 0.0, max_new_tokens: 16}}
          score_workers: 1
    """))
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "mdrl", "study", "-c", str(config), "-o", str(out), "--no-progress"],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ran 2, skipped 0, failed 0 of 2 cells" in result.stdout
    consumed = [json.loads(line) for path in out.rglob("consumed*.jsonl") for line in path.read_text().splitlines()]
    assert {"rg:basic_arithmetic", "knights_knaves"} <= {d for row in consumed for d in row["domains"]}
    results = json.loads((out / "results.json").read_text())
    assert "gen:rg:basic_arithmetic:1:8:7" in results["suites"]


def test_used_members_route_but_stay_out_of_the_listings():
    """What all_domains() and known_sources() list must not depend on which members a process used
    (the tiny model's tokenizer corpus and the server's /domains read them)."""
    from mdrl.domains import all_domains, domain_for_source, known_sources

    generate("rg:lcm", 1)
    assert domain_for_source("rg:lcm").name == "rg:lcm"
    assert "rg:lcm" not in all_domains() and "rg:lcm" not in known_sources()
