"""The shared contract: extraction, reward shaping, registry routing, templates, and compute_score."""

from __future__ import annotations

import pytest

import mdrl
from mdrl.domains import all_domains, domain_for_source, get_domain
from mdrl.domains.base import Domain, Problem, SuiteDef
from mdrl.domains.registry import register_domain
from mdrl.templates import Template
from mdrl.verify import extract
from mdrl.verify.result import Verdict
from mdrl.verify.shaping import RewardConfig, shape


@pytest.fixture(autouse=True)
def _isolated_registry():
    """Domains registered by a test here must not leak into other test files' view of the registry."""
    from mdrl.domains import registry

    registry._ensure_loaded()
    domains, sources = dict(registry._DOMAINS), dict(registry._SOURCES)
    yield
    registry._DOMAINS.clear()
    registry._DOMAINS.update(domains)
    registry._SOURCES.clear()
    registry._SOURCES.update(sources)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("<answer>42</answer>", "42"),
        ("<think>a</think>\n<answer>\n(1) A is a knight\n(2) B is a knave\n</answer>", "\n(1) A is a knight\n(2) B is a knave\n"),
        ("<answer>1</answer> then <answer>2</answer>", "2"),
        ("<ANSWER>x</ANSWER>", "x"),
        ("<answer>unclosed", None),
        ("no tags at all", None),
    ],
)
def test_last_answer_tag(text, expected):
    assert extract.last_answer_tag(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        (r"\boxed{1} and \boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed {x^{2}}", "x^{2}"),
        (r"\boxed{unbalanced", None),
        (r"\fbox{7}", "7"),
        ("nothing", None),
    ],
)
def test_last_boxed(text, expected):
    assert extract.last_boxed(text) == expected


@pytest.mark.parametrize(
    "solution,expected",
    [
        ("User: q\nAssistant: <think>x</think><answer>1</answer>", "<think>x</think><answer>1</answer>"),
        ("<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\nhi<|im_end|>", "hi"),
        ("just a response", "just a response"),
    ],
)
def test_assistant_turn_accepts_prompt_plus_response(solution, expected):
    assert extract.assistant_turn(solution) == expected


def test_assistant_turn_bounds_huge_responses():
    huge = "x" * 5_000_000 + "<answer>1</answer>"
    assert len(extract.assistant_turn(huge)) == extract.MAX_RESPONSE_CHARS
    assert extract.last_answer_tag(extract.assistant_turn(huge)) == "1"


@pytest.mark.parametrize(
    "solution,reason",
    [(None, "response is not text"), ("   ", "empty response"), ("<answer>", "unclosed <answer> tag"),
     ("text", "no <answer> tag"), ("<answer> </answer>", "empty <answer>"), (b"\xff\xfe<answer>1</answer>", "ok")],
)
def test_answer_block_reasons(solution, reason):
    assert extract.answer_block(solution)[1] == reason


def test_format_reward_is_separate_and_weighted():
    verdict = Verdict.partial(0.5, "1/2 right")
    good = "<think>r</think> <answer>a</answer>"
    assert shape(verdict, good, RewardConfig("binary"))["score"] == 0.0
    assert shape(verdict, good, RewardConfig("proportional"))["score"] == 0.5
    shaped = shape(verdict, good, RewardConfig("proportional", format_weight=0.2))
    assert shaped["format"] == 1.0 and shaped["score"] == pytest.approx(0.8 * 0.5 + 0.2)
    assert shape(verdict, "<answer>a</answer>", RewardConfig("proportional", 0.2))["format"] == 0.0
    # the r1 template's prompt ends with <think>, so the response alone starts inside the thought
    assert shape(verdict, "r</think><answer>a</answer>", RewardConfig("proportional", 0.2))["format"] == 1.0


@pytest.mark.parametrize("bad", [{"mode": "partial"}, {"format_weight": 2.0}, {"weight": 1}, {"format_weight": "abc"},
                                 {"format_weight": [1]}, {"format_weight": True}, {"format_weight": float("nan")},
                                 "partial"])
def test_reward_config_rejects_bad_options(bad):
    with pytest.raises(ValueError):
        RewardConfig.from_mapping(bad)


def test_reasons_are_bounded():
    result = mdrl.compute_score("countdown", "<answer>1+2</answer>", {"numbers": [1, 2], "target": int("9" * 4000)})
    assert result["reason"].startswith("value 3 != target 999") and len(result["reason"]) <= 303


def test_reward_config_from_a_mode_name():
    assert RewardConfig.from_mapping("proportional") == RewardConfig("proportional")
    gt = {"numbers": [30, 71, 88, 2], "target": 45}
    assert mdrl.compute_score("countdown", "<answer>(88 - 71 + 30) - 2</answer>", gt, reward="proportional")["acc"]


def _echo_domain(name: str, sources: tuple[str, ...]) -> Domain:
    def verify(response, ground_truth, extra_info):
        answer, reason = extract.answer_block(response)
        if answer is None:
            return Verdict.fail(reason)
        return Verdict.ok() if answer.strip() == str(ground_truth) else Verdict.fail("wrong")

    return Domain(name=name, group="math", data_sources=sources, verify=verify,
                  instructions={"en": "Answer in <answer> tags.", "zh": "请把答案放在 <answer> 标签中。"})


def test_registry_rejects_duplicates_and_suggests_near_matches():
    register_domain(_echo_domain("echo_test_domain", ("echo_alias",)))
    with pytest.raises(ValueError, match="already registered"):
        register_domain(_echo_domain("echo_test_domain", ()))
    with pytest.raises(ValueError, match="already routes"):
        register_domain(_echo_domain("echo_other", ("ECHO_ALIAS",)))
    with pytest.raises(TypeError):
        register_domain("not a domain")  # type: ignore[arg-type]
    assert domain_for_source("Echo_Alias").name == "echo_test_domain"
    with pytest.raises(KeyError, match="Did you mean 'echo_alias'"):
        domain_for_source("echo_alis")
    with pytest.raises(KeyError, match="Known:"):
        get_domain("no-such-domain")
    result = mdrl.compute_score("echo_alias", "User: q\nAssistant: <answer> 7 </answer>", "7")
    assert result == {"score": 1.0, "acc": True, "reason": "ok", "fraction": 1.0}
    assert mdrl.compute_score("echo_alias", None, "7")["reason"] == "response is not text"


def test_domain_contract_is_checked():
    with pytest.raises(TypeError, match="instructions missing"):
        Domain(name="x", group="math", data_sources=(), verify=lambda *a: Verdict.ok(), instructions={"en": ""})
    # groups are open: a new one is just a name, but it must be a name
    assert Domain(name="x", group="poetry", data_sources=(), verify=lambda *a: Verdict.ok(),
                  instructions={"en": "", "zh": ""}).group == "poetry"
    for bad in ("", "two words", None, "math/"):
        with pytest.raises(TypeError, match="group"):
            Domain(name="x", group=bad, data_sources=(), verify=lambda *a: Verdict.ok(),
                   instructions={"en": "", "zh": ""})
    with pytest.raises(TypeError, match="reader"):
        Domain(name="x", group="g", data_sources=(), verify=lambda *a: Verdict.ok(),
               instructions={"en": "", "zh": ""}, suites=(SuiteDef("s", "", None, reader="nope"),))


STUDY_SOURCES = ["countdown", "kk_logic", "zebra", "code", "deepscaler", "math500", "AIME",
                 "HuggingFaceH4/MATH-500", "openai/gsm8k", "humaneval", "mbpp"]


@pytest.mark.parametrize("source", STUDY_SOURCES)
def test_study_sources_route_through_the_registry(source):
    domain = domain_for_source(source)
    assert domain.name in all_domains()


def test_every_domain_renders_prompts_in_both_languages():
    for domain in all_domains().values():
        if domain.generate is None:
            continue
        for lang in ("en", "zh"):
            problem = domain.generate(0, 0, domain.difficulties[0], lang)
            assert isinstance(problem, Problem) and problem.lang == lang
            prompt = Template("r1-base", lang).render(domain.render_question(problem))
            assert problem.question in prompt and domain.instructions[lang] in prompt


def test_templates():
    r1 = Template("r1-base", "en").render("Q?")
    assert r1.startswith("A conversation between User and Assistant.") and r1.endswith("User: Q?\nAssistant: <think>")
    assert "用户：Q?" in Template("r1-base", "zh").render("Q?")
    assert Template("plain").render("Q?") == "Q?\n"
    chat = Template("chat", "en").messages("Q?")
    assert [m["role"] for m in chat] == ["system", "user"] and chat[1]["content"] == "Q?"
    with pytest.raises(ValueError, match="tokenizer"):
        Template("chat").render("Q?")
    with pytest.raises(ValueError, match="unknown template"):
        Template("r2")


def test_unavailable_verifier_raises_instead_of_scoring_zero():
    from mdrl.domains.base import VerifierUnavailable

    def verify(response, ground_truth, extra_info):
        raise VerifierUnavailable("no sandbox layers")

    def buggy(response, ground_truth, extra_info):
        raise IndexError("bug")

    instructions = {"en": "", "zh": ""}
    register_domain(Domain(name="unavailable_test_domain", group="code", data_sources=(), verify=verify,
                           instructions=instructions))
    register_domain(Domain(name="buggy_test_domain", group="code", data_sources=(), verify=buggy,
                           instructions=instructions))
    with pytest.raises(VerifierUnavailable):
        mdrl.compute_score("unavailable_test_domain", "<answer>x</answer>", "x")
    result = mdrl.compute_score("buggy_test_domain", "<answer>x</answer>", "x")
    assert result["score"] == 0.0 and result["reason"] == "verifier error: IndexError"
