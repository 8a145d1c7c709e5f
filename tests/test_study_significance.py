"""Paired standard errors (mdrl.study.significance), checked by hand."""

from __future__ import annotations

import math

import pytest

from mdrl.study.significance import (
    clustered_se,
    combine_seeds,
    effect,
    item_accuracies,
    joint_se_items,
    paired_delta,
)


def test_clustered_se_is_the_plain_se_for_singletons_and_widens_for_repeats():
    diffs = [1.0, 0.0, 0.0, 1.0]
    plain = math.sqrt(1 / 3) / 2  # sd(ddof=1) / sqrt(n)
    assert clustered_se(diffs, ["a", "b", "c", "d"]) == pytest.approx(plain)
    # the two 1s ask one question, the two 0s another: C = 2, cluster sums +1 and -1
    assert clustered_se(diffs, ["q1", "q0", "q0", "q1"]) == pytest.approx(math.sqrt(2 / 1 * 2) / 4)
    assert clustered_se(diffs, ["q"] * 4) is None and clustered_se([], []) is None


def test_paired_delta_pairs_items_and_keeps_the_differences():
    trained = {"a": 1.0, "b": 1.0, "c": 0.0, "d": 0.5}
    start = {"a": 0.0, "b": 1.0, "c": 0.0, "d": 0.0, "e": 1.0}
    numbers = paired_delta(trained, start, ["a", "b", "c", "d"], {i: i for i in "abcde"})
    assert numbers["diffs"] == {"a": 1.0, "b": 0.0, "c": 0.0, "d": 0.5}
    assert numbers["delta"] == pytest.approx(0.375) and numbers["n_paired"] == 4
    assert numbers["trained_acc"] == pytest.approx(0.625) and numbers["baseline_acc"] == pytest.approx(0.25)
    sd = math.sqrt(sum((d - 0.375) ** 2 for d in (1.0, 0.0, 0.0, 0.5)) / 3)
    assert numbers["se_items"] == pytest.approx(sd / 2) == pytest.approx(numbers["se_items_unclustered"])


def test_seeds_combine_with_the_items_error_counted_once():
    seed_a = {"x": 1.0, "y": 0.0, "z": 1.0}
    seed_b = {"x": 0.0, "y": 0.0, "z": 1.0, "w": 1.0}  # w: not answered by every seed, left out
    joint = joint_se_items([seed_a, seed_b], {"x": "x", "y": "y", "z": "z", "w": "w"})
    means = [0.5, 0.0, 1.0]
    assert joint == pytest.approx(math.sqrt(sum((m - 0.5) ** 2 for m in means) / 2) / math.sqrt(3))
    two = combine_seeds([0.1, 0.3], 0.1)
    assert two["delta"] == pytest.approx(0.2) and two["se_seeds"] == pytest.approx(0.1)
    assert two["se"] == pytest.approx(math.sqrt(0.02)) and two["z"] == pytest.approx(0.2 / math.sqrt(0.02))
    assert two["se_used"] == "combined" and two["above_2se"] is False
    one = combine_seeds([0.3], 0.1)
    assert one["se_seeds"] is None and one["se"] == pytest.approx(0.1) and one["se_used"] == "items"
    assert one["above_2se"] is True and one["z"] == pytest.approx(3.0)
    assert combine_seeds([], None) == {"delta": None, "se_seeds": None, "se_items": None, "se": None,
                                       "se_used": None, "z": None, "above_2se": None}


def test_item_accuracies_average_samples_and_cluster_by_fingerprint():
    samples = [{"item_id": "s/0", "acc": True, "fingerprint": "q"}, {"item_id": "s/0", "acc": False, "fingerprint": "q"},
               {"item_id": "s/1", "acc": True, "fingerprint": "q"}, {"item_id": "s/2", "acc": "yes"}]
    assert item_accuracies(samples) == {"s/0": [0.5, "q"], "s/1": [1.0, "q"], "s/2": [1.0, "s/2"]}


def test_effect_pairs_items_over_seeds_and_suites_by_hand():
    base = {"a": {"1": [0.0, "1"], "2": [1.0, "2"], "3": [0.0, "3"]},
            "b": {"1": [0.0, "1"], "2": [0.0, "2"]}}
    seed0 = {"a": {"1": [1.0, "1"], "2": [1.0, "2"], "3": [0.0, "3"]}, "b": {"1": [1.0, "1"], "2": [0.0, "2"]}}
    seed1 = {"a": {"1": [1.0, "1"], "2": [1.0, "2"], "3": [1.0, "3"]}, "b": {"1": [0.0, "1"], "2": [0.0, "2"]}}
    one_suite = effect({"a": [seed0["a"], seed1["a"]]}, {"a": [base["a"]]})
    # d_i = mean over seeds - base: (1, 0, 0.5); seed means 2/3 and 1 against 1/3
    assert one_suite["delta"] == pytest.approx(0.5)
    assert one_suite["se_items"] == pytest.approx(clustered_se([1.0, 0.0, 0.5], ["1", "2", "3"]))
    assert one_suite["se_seeds"] == pytest.approx(math.sqrt(((2 / 3 - 5 / 6) ** 2 + (1 - 5 / 6) ** 2) / 1) / math.sqrt(2))
    assert one_suite["se"] == pytest.approx(math.hypot(one_suite["se_items"], one_suite["se_seeds"]))
    both = effect({s: [seed0[s], seed1[s]] for s in "ab"}, {s: [base[s]] for s in "ab"})
    se_a = clustered_se([1.0, 0.0, 0.5], ["1", "2", "3"])
    se_b = clustered_se([0.5, 0.0], ["1", "2"])
    assert both["delta"] == pytest.approx((0.5 + 0.25) / 2)
    assert both["se_items"] == pytest.approx(math.hypot(se_a, se_b) / 2)
    # per-seed averages over the suites: (2/3 + 1/2)/2 and (1 + 0)/2
    assert both["se_seeds"] == pytest.approx(abs(7 / 12 - 1 / 2) / 2)
    assert both["n_items"] == 5
    # a side without an evaluation of some suite gives no effect
    assert effect({"a": [seed0["a"]]}, {"a": []}) is None


def test_effect_between_two_trained_sides_adds_both_seed_spreads():
    a0, a1 = {"x": [1.0, "x"], "y": [0.0, "y"]}, {"x": [1.0, "x"], "y": [1.0, "y"]}
    b0, b1 = {"x": [0.0, "x"], "y": [0.0, "y"]}, {"x": [1.0, "x"], "y": [0.0, "y"]}
    found = effect({"s": [a0, a1]}, {"s": [b0, b1]})
    assert found["delta"] == pytest.approx(0.75 - 0.25)
    spread = math.sqrt(0.125) / math.sqrt(2)  # sd of (0.5, 1.0) or (0.0, 0.5), over sqrt(2)
    assert found["se_seeds"] == pytest.approx(math.hypot(spread, spread))


def test_effect_pairs_seeds_when_both_sides_trained_the_same_seeds():
    a0, a1 = {"x": [1.0, "x"], "y": [0.0, "y"]}, {"x": [1.0, "x"], "y": [1.0, "y"]}
    b0, b1 = {"x": [0.0, "x"], "y": [0.0, "y"]}, {"x": [1.0, "x"], "y": [0.0, "y"]}
    # two identical trainings: 0 on every item and every seed, so 0 ± 0, not ± their unpaired spread
    same = effect({"s": [a0, a1]}, {"s": [a0, a1]}, paired_seeds=True)
    assert same["delta"] == 0 and same["se_seeds"] == 0 and same["se"] == 0 and not same["above_2se"]
    assert effect({"s": [a0, a1]}, {"s": [a0, a1]})["se_seeds"] > 0
    # seed j minus seed j: 0.5 - 0.0 and 1.0 - 0.5
    paired = effect({"s": [a0, a1]}, {"s": [b0, b1]}, paired_seeds=True)
    assert paired["delta"] == pytest.approx(0.5)
    assert paired["se_seeds"] == pytest.approx(0.0)  # both seeds differ by 0.5
    assert paired["seeds_paired"] is True
    # unequal run counts cannot be paired: the unpaired spreads are used
    fallback = effect({"s": [a0, a1]}, {"s": [b0]}, paired_seeds=True)
    assert "seeds_paired" not in fallback and fallback["se_seeds"] == pytest.approx(math.sqrt(0.125) / math.sqrt(2))
