"""pass@k against hand-computed values and the closed form; suite aggregation on hand-made records."""

from __future__ import annotations

import math

import pytest

from mdrl.eval.metrics import aggregate, default_ks, pass_at_k


@pytest.mark.parametrize(
    "n,c,k,expected",
    [
        (5, 2, 1, 0.4),  # c/n
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (5, 2, 3, 0.9),  # 1 - C(3,3)/C(5,3) = 1 - 1/10
        (5, 2, 4, 1.0),  # n - c < k: every 4-subset holds a pass
        (10, 0, 1, 0.0),
        (10, 0, 10, 0.0),
        (10, 10, 1, 1.0),
        (10, 10, 10, 1.0),
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (16, 3, 8, 1 - 1287 / 12870),  # 1 - C(13,8)/C(16,8)
    ],
)
def test_pass_at_k_hand_computed(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_matches_binomial_closed_form_on_a_grid():
    for n in range(1, 25):
        for c in range(n + 1):
            for k in range(1, n + 1):
                closed = 1.0 - (math.comb(n - c, k) / math.comb(n, k))
                assert pass_at_k(n, c, k) == pytest.approx(closed, abs=1e-12), (n, c, k)


def test_pass_at_k_is_stable_for_large_n():
    # C(1000, 500) overflows floats; the product form does not need it.
    value = pass_at_k(1000, 3, 500)
    assert value == pytest.approx(1 - (500 * 499 * 498) / (1000 * 999 * 998), rel=1e-9)
    assert 0.0 <= pass_at_k(1000, 1, 1) <= 1.0


@pytest.mark.parametrize("n,c,k", [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_default_ks():
    assert default_ks(1) == [1]
    assert default_ks(5) == [1, 2, 4, 5]
    assert default_ks(8) == [1, 2, 4, 8]


def _record(item, index, acc, group=None, fmt_error=False, tokens=10, flexible=None, strict=None):
    return {
        "item_id": item,
        "sample_index": index,
        "acc": acc,
        "score": float(acc),
        "acc_strict": acc if strict is None else strict,
        "acc_flexible": acc if flexible is None else flexible,
        "format_error": fmt_error,
        "n_tokens": tokens,
        "n_chars": 4 * (tokens or 0),
        "length_unit": "tokens" if tokens is not None else "chars",
        "group": group,
        "reason": "ok" if acc else "wrong answer",
    }


def test_aggregate_mean_at_n_pass_at_k_and_breakdown():
    # item a: 2 of 4 right (group x); item b: 0 of 4 (group y); item c: 4 of 4 (group y)
    records = (
        [_record("a", i, i < 2, "x") for i in range(4)]
        + [_record("b", i, False, "y", fmt_error=True) for i in range(4)]
        + [_record("c", i, True, "y") for i in range(4)]
    )
    summary = aggregate(records)
    assert summary["n_items"] == 3 and summary["n_samples"] == 12
    assert summary["accuracy"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert summary["pass@1"] == pytest.approx(summary["accuracy"])
    assert summary["pass@2"] == pytest.approx((pass_at_k(4, 2, 2) + 0 + 1) / 3)
    assert summary["pass@4"] == pytest.approx((1 + 0 + 1) / 3)
    assert summary["format_error_rate"] == pytest.approx(4 / 12)
    assert summary["mean_length"] == 10 and summary["length_unit"] == "tokens"
    assert summary["fail_reasons"] == {"wrong answer": 6}
    assert list(summary["breakdown"]) == ["x", "y"]
    assert summary["breakdown"]["x"]["accuracy"] == pytest.approx(0.5)
    assert summary["breakdown"]["y"]["accuracy"] == pytest.approx(0.5)
    assert summary["breakdown"]["y"]["n_items"] == 2


def test_aggregate_weights_items_not_samples_and_reports_strict_flexible():
    records = [_record("a", 0, False, flexible=True, strict=False), _record("b", 0, True, strict=False)]
    summary = aggregate(records)
    assert summary["accuracy"] == 0.5
    assert summary["acc_strict"] == 0.0
    assert summary["acc_flexible"] == 1.0


def test_aggregate_falls_back_to_characters_when_any_token_count_is_missing():
    records = [_record("a", 0, True, tokens=5), _record("b", 0, True, tokens=None)]
    summary = aggregate(records)
    assert summary["length_unit"] == "chars"
    assert summary["mean_length"] == pytest.approx((20 + 0) / 2)


def test_breakdown_groups_sort_naturally():
    records = [_record(f"i{g}", 0, True, group=f"{g}ppl") for g in (10, 3, 8)]
    assert list(aggregate(records)["breakdown"]) == ["3ppl", "8ppl", "10ppl"]
