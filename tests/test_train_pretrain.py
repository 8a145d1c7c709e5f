"""Supervised warm-up of the tiny model (mdrl.tiny.pretrain): it learns, reports, and caches."""

from __future__ import annotations

import json
import math

import pytest

from mdrl.tiny import TinyModelConfig
from mdrl.tiny.pretrain import WarmupConfig, pretrain_tiny

SMALL = TinyModelConfig(
    vocab_size=320,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    intermediate_size=64,
)
CORPUS = [
    "Solve it. <think> a </think> <answer> (1) Zoey is a knight </answer>",
    "A very special island is inhabited only by knights and knaves.",
] * 4


def test_warmup_lowers_the_loss_reports_and_is_cached(tmp_path):
    pytest.importorskip("torch")
    warmup = WarmupConfig(
        template="plain",
        n_items=16,
        max_steps=15,
        batch_size=4,
        eval_every=15,
        eval_items=4,
        max_new_tokens=8,
        target_success=0.0,
        learning_rate=3e-3,
        warmup_steps=2,
    )
    report = pretrain_tiny(tmp_path, warmup, SMALL, corpus=CORPUS)
    assert report["steps"] == 15
    assert report["final_loss"] < math.log(SMALL.vocab_size) - 1.0  # well below a uniform guess
    assert 0.0 <= report["final_success"] <= 1.0 and report["history"][-1]["step"] == 15
    meta = json.loads((tmp_path / "mdrl_tiny.json").read_text())
    assert meta["kind"] == "warmed" and meta["warmup"]["max_steps"] == 15
    weights = (tmp_path / "model.safetensors").stat().st_mtime_ns
    again = pretrain_tiny(tmp_path, warmup, SMALL, corpus=CORPUS)  # same settings: the cache answers
    assert again == report and (tmp_path / "model.safetensors").stat().st_mtime_ns == weights


def test_warmup_rejects_a_file_source():
    with pytest.raises(ValueError, match="generator"):
        from mdrl.tiny.pretrain import _problems

        _problems("paper:kk/test", 4, 0)


def test_an_interrupted_warmup_resumes_where_it_stopped(tmp_path, monkeypatch):
    """Interrupted after its step-5 checkpoint, the same call goes on from step 5 and ends with the
    weights and report of a warm-up that was never interrupted."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    import mdrl.tiny.pretrain as pretrain

    warmup = WarmupConfig(template="plain", n_items=16, max_steps=15, batch_size=4, eval_every=5, eval_items=4,
                          max_new_tokens=8, target_success=0.0, learning_rate=3e-3, warmup_steps=2)
    whole = pretrain_tiny(tmp_path / "whole", warmup, SMALL, corpus=CORPUS)

    real = pretrain.sampled_success

    def interrupted(*args):
        if args[-1] == warmup.seed + 10:  # the measurement after step 10: Ctrl-C
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(pretrain, "sampled_success", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pretrain_tiny(tmp_path / "cut", warmup, SMALL, corpus=CORPUS)
    assert (tmp_path / "cut" / pretrain.WARMUP_CHECKPOINT).is_file()
    monkeypatch.setattr(pretrain, "sampled_success", real)
    steps = []
    real_step = pretrain.sft_step
    monkeypatch.setattr(pretrain, "sft_step", lambda *a: steps.append(1) or real_step(*a))
    resumed = pretrain_tiny(tmp_path / "cut", warmup, SMALL, corpus=CORPUS)
    assert len(steps) == 10  # steps 6-15: the first five came from the checkpoint
    assert not (tmp_path / "cut" / pretrain.WARMUP_CHECKPOINT).exists()
    assert {k: v for k, v in resumed.items() if k != "seconds"} == {k: v for k, v in whole.items() if k != "seconds"}
    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
