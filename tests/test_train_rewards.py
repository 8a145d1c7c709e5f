"""TRL reward adapter: one function per domain, None on other domains' rows, metrics and the ledger."""

from __future__ import annotations

import json

import pytest

from mdrl.data import generate, hf_records
from mdrl.train.rewards import BatchScorer, completion_text, make_reward_funcs, reward_configs
from mdrl.verify.shaping import RewardConfig

G = 2  # rollouts per prompt


def _batch():
    """Two KK prompts and one countdown prompt, each repeated G times as TRL's sampler does.

    Returns the problems and the columns TRL would pass (one entry per completion)."""
    problems = generate("knights_knaves", 2, seed=3, difficulties=[2]) + generate(
        "countdown", 1, seed=3, difficulties=[3]
    )
    records = hf_records(problems, template="plain")
    rows = [record for record in records for _ in range(G)]
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    columns["mdrl_row"] = [i // G for i in range(len(rows))]
    columns["mdrl_epoch"] = [0] * len(rows)
    return problems, columns


def _kk_wrong(reference: str) -> str:
    """The reference with every role swapped: well formed, every person wrong."""
    return reference.replace("knight", "KNAVE").replace("knave", "knight").replace("KNAVE", "knave")


def test_each_domain_scores_its_own_rows_and_returns_none_elsewhere():
    problems, columns = _batch()
    kk, cd = make_reward_funcs(["knights_knaves", "countdown"], num_generations=G)
    assert (kk.__name__, cd.__name__) == ("knights_knaves", "countdown")
    completions = []
    for i, problem in enumerate(problems):
        completions += [
            problem.reference,
            _kk_wrong(problem.reference)
            if problem.domain == "knights_knaves"
            else "<think>no idea</think>\n<answer> 1 + 1 </answer>",
        ]
    kk_scores = kk(completions, prompts=columns["prompt"], **columns)
    cd_scores = cd(completions, prompts=columns["prompt"], **columns)
    assert kk_scores == [1.0, 0.0, 1.0, 0.0, None, None]
    assert cd_scores == [None, None, None, None, 1.0, 0.0]


def test_batch_is_scored_once_and_metrics_are_logged():
    problems, columns = _batch()
    seen: list[list] = []
    funcs = make_reward_funcs(
        ["knights_knaves", "countdown"],
        num_generations=G,
        on_batch=lambda state, consumed: seen.append(consumed),
    )
    completions = [p.reference for p in problems for _ in range(G)]
    metrics: dict[str, float] = {}
    for func in funcs:
        func(
            completions,
            prompts=columns["prompt"],
            log_metric=lambda k, v: metrics.__setitem__(k, v),
            completion_ids=[[0] * (5 + i) for i in range(len(completions))],
            **columns,
        )
    assert len(seen) == 1  # shared scorer: one pass, one ledger record per rollout batch
    assert [c["row"] for c in seen[0]] == [0, 1, 2]
    assert [c["domain"] for c in seen[0]] == ["knights_knaves", "knights_knaves", "countdown"]
    assert metrics["rewards/knights_knaves/acc"] == 1.0 and metrics["rewards/countdown/acc"] == 1.0
    assert metrics["data/knights_knaves/prompts"] == 2.0 and metrics["data/countdown/prompts"] == 1.0
    assert metrics["rewards/knights_knaves/length"] == pytest.approx((5 + 6 + 7 + 8) / 4)
    assert metrics["rewards/knights_knaves/zero_std_groups"] == 1.0  # both rollouts right in each group


def test_zero_std_share_counts_only_flat_groups():
    problems, columns = _batch()
    kk, _ = make_reward_funcs(["knights_knaves", "countdown"], num_generations=G)
    metrics: dict[str, float] = {}
    completions = [problems[0].reference, "garbage", problems[1].reference, problems[1].reference, "x", "y"]
    kk(completions, prompts=columns["prompt"], log_metric=lambda k, v: metrics.__setitem__(k, v), **columns)
    assert metrics["rewards/knights_knaves/zero_std_groups"] == 0.5
    assert metrics["rewards/countdown/zero_std_groups"] == 1.0


def test_proportional_variant_gives_partial_credit():
    problems = generate("knights_knaves", 1, seed=11, difficulties=[3])
    record = hf_records(problems, template="plain")[0]
    lines = problems[0].reference
    # Swap the role of the first person only: 2 of 3 right.
    answer = lines[lines.index("<answer>") :]
    first = answer.splitlines()[0]
    flipped = first.replace("knight", "KNAVE").replace("knave", "knight").replace("KNAVE", "knave")
    partly = lines.replace(first, flipped)
    columns = {key: [value] for key, value in record.items()}
    binary = make_reward_funcs(["knights_knaves"])[0]
    proportional = make_reward_funcs(
        ["knights_knaves"], reward_configs(["knights_knaves"], mode="proportional")
    )[0]
    assert binary([partly], **columns) == [0.0]
    assert proportional([partly], **columns) == [pytest.approx(2 / 3)]


def test_conversational_completions_are_read_from_the_assistant_message():
    problems = generate("countdown", 1, seed=5, difficulties=[3])
    record = hf_records(problems, template="chat")[0]
    assert isinstance(record["prompt"], list)  # the chat template keeps messages for TRL
    columns = {key: [value] for key, value in record.items()}
    func = make_reward_funcs(["countdown"])[0]
    completion = [{"role": "assistant", "content": problems[0].reference}]
    assert completion_text(completion) == problems[0].reference
    assert func([completion], **columns) == [1.0]


def test_bad_model_output_never_crashes_or_earns_reward():
    _, columns = _batch()
    funcs = make_reward_funcs(["knights_knaves", "countdown"])
    junk = [None, "", "<answer>", "(1) Nobody is a knight", "\x00" * 50, "<answer> 30 ** 71 ** 88 </answer>"]
    totals = [sum(v for v in values if v is not None) for values in zip(*(f(junk, **columns) for f in funcs))]
    assert totals == [0.0] * len(junk)


def test_threaded_scoring_matches_serial():
    problems, columns = _batch()
    completions = [p.reference if i % 2 else "nope" for i, p in enumerate(problems) for _ in range(G)]
    configs = reward_configs(["knights_knaves", "countdown"])
    serial = BatchScorer(configs, G, workers=1).scores(completions, columns)
    threaded = BatchScorer(configs, G, workers=4).scores(completions, columns)
    assert serial == threaded


def test_extra_info_json_reaches_the_verifier():
    _, columns = _batch()
    assert json.loads(columns["extra_info"][0])["domain"] == "knights_knaves"
    assert reward_configs(["countdown"], format_weight=0.2)["countdown"] == RewardConfig("binary", 0.2)


def test_unknown_domain_is_rejected_with_a_suggestion():
    with pytest.raises(KeyError, match="Did you mean"):
        make_reward_funcs(["knight_knaves"])


def test_code_rows_go_through_the_domains_batch_path(paper_data):
    from mdrl.data import load_source

    problems = load_source("paper:code/test?n=2")
    records = hf_records(problems, template="plain")
    rows = [record for record in records for _ in range(G)]
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    func = make_reward_funcs(["code"], num_generations=G)[0]
    completions = []
    for problem in problems:
        completions += [
            problem.reference,
            "<think>x</think>\n<answer>\n```python\nimport sys\nsys.exit(0)\n```\n</answer>",
        ]
    assert func(completions, **columns) == [1.0, 0.0, 1.0, 0.0]


def test_a_domain_that_starts_with_flat_rewards_is_named_once(caplog):
    """KK always wrong and countdown half right over their first START_SAMPLES completions: only KK is
    flagged, once, and its starting reward is the mean of exactly those completions."""
    import logging

    from mdrl.train.rewards import START_SAMPLES

    problems, columns = _batch()
    configs = reward_configs(["knights_knaves", "countdown"])
    scorer = BatchScorer(configs, G)
    per_batch = len(columns["data_source"])
    with caplog.at_level(logging.WARNING, logger="mdrl.train.rewards"):
        for batch in range(2 * START_SAMPLES):
            completions = ["wrong" if i < 2 * G or (batch + i) % 2 else problems[2].reference
                           for i in range(per_batch)]
            scorer.scores(completions, columns)
    assert scorer.flat_start() == ["knights_knaves"]
    assert scorer.start_reward["knights_knaves"] == 0.0 and 0.3 < scorer.start_reward["countdown"] < 0.7
    assert caplog.text.count("no signal") == 1 and "knights_knaves: mean reward 0.000" in caplog.text
