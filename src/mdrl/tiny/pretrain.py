"""Supervised warm-up of the tiny model: plain causal-LM training on generated items' reference responses.

GRPO learns only from groups whose rewards differ, so a randomly initialised model (reward ~0 on every
sample) gives it nothing to work with. A short warm-up on easy items (KK with 2 people by default)
teaches the response format and a little of the task, which lifts sampled success into the band where
policy-gradient training has signal (15-60%). This is supervised pre-training, not RL: the loss is the
cross-entropy of the reference response given the prompt.

The warm-up stops as soon as sampled success (temperature 1, held-out items) reaches
`target_success`, so the result lands just inside the band instead of overshooting it.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from mdrl.tiny.builder import TinyModelConfig, build_tiny
from mdrl.train.config import WarmupConfig

log = logging.getLogger(__name__)

WARMUP_REPORT = "mdrl_warmup.json"
#: An unfinished warm-up's state, saved at every success measurement; removed when the warm-up ends.
WARMUP_CHECKPOINT = "mdrl_warmup_checkpoint.pt"



def sft_step(model, optimizer, scheduler, batch: list[tuple[list[int], list[int]]], pad: int) -> float:
    """One supervised step on (input ids, labels) pairs, right-padded; returns the loss."""
    import torch

    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in batch])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
    attention = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch])
    loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay to 10% of the peak."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

def _response_target(prompt: str, reference: str) -> str:
    # The r1 template ends the prompt with "<think>", so the model continues inside the thought.
    if prompt.rstrip().endswith("<think>") and reference.lstrip().startswith("<think>"):
        return reference.lstrip()[len("<think>") :]
    return reference


def _problems(source: str, n: int, seed: int) -> list[Any]:
    from dataclasses import replace

    from mdrl.data import SourceSpec, load_source

    spec = SourceSpec.parse(source)
    if spec.kind != "generate":
        raise ValueError(f"warm-up source must be a generator (domain:levels), got {source!r}")
    return load_source(replace(spec, n=n, seed=seed))


def render_prompts(problems: Sequence[Any], template: str, lang: str, tokenizer: Any) -> list[str]:
    from mdrl.domains import get_domain
    from mdrl.templates import Template

    chosen = Template(template, lang)
    return [chosen.render(get_domain(p.domain).render_question(p, lang), tokenizer) for p in problems]


def sampled_success(
    model: Any,
    tokenizer: Any,
    problems: Sequence[Any],
    prompts: Sequence[str],
    max_new_tokens: int,
    temperature: float,
    seed: int,
    batch_size: int = 16,
) -> float:
    """Share of held-out items whose single sampled response scores acc=True."""
    import torch

    from mdrl.reward import compute_score

    torch.manual_seed(seed)
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            batch = list(prompts[start : start + batch_size])
            encoded = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
            out = model.generate(
                **encoded,
                do_sample=True,
                temperature=temperature,
                top_p=1.0,
                top_k=0,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            texts = tokenizer.batch_decode(out[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
            for problem, text in zip(problems[start : start + batch_size], texts):
                result = compute_score(problem.data_source, text, problem.ground_truth, problem.extra_info)
                correct += bool(result["acc"])
    model.train()
    return correct / max(len(prompts), 1)


def _encode(tokenizer: Any, prompt: str, response: str, max_length: int) -> tuple[list[int], list[int]]:
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = (prompt_ids + response_ids)[:max_length]
    labels = ([-100] * len(prompt_ids) + response_ids)[:max_length]
    return ids, labels


def _save_checkpoint(path: Path, settings: dict, model, optimizer, scheduler, order_rng: random.Random,
                     state: dict) -> None:
    """Everything the warm-up needs to go on exactly where it was (written, then renamed into place)."""
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save({"settings": settings, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "order_rng": order_rng.getstate(),
                "torch_rng": torch.get_rng_state(), "state": state}, tmp)
    tmp.replace(path)


def _load_checkpoint(path: Path, settings: dict, model, optimizer, scheduler,
                     order_rng: random.Random) -> dict | None:
    """The saved state of an interrupted warm-up with the same settings, loaded into the objects; None
    when there is none (a checkpoint of other settings is ignored)."""
    import torch

    if not path.is_file():
        return None
    saved = torch.load(path, weights_only=False)
    if saved.get("settings") != settings:
        log.warning("ignoring the warm-up checkpoint in %s: it was made with other settings", path.parent)
        return None
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    order_rng.setstate(saved["order_rng"])
    torch.set_rng_state(saved["torch_rng"])
    return saved["state"]


def pretrain_tiny(
    out_dir: str | Path,
    warmup: WarmupConfig = WarmupConfig(),
    model_config: TinyModelConfig = TinyModelConfig(),
    corpus: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Build the tiny model in `out_dir` (unless one is there) and warm it up on reference responses.

    Returns the warm-up report (also written to `out_dir/mdrl_warmup.json`): steps run, final loss, and
    sampled success before and after. An `out_dir` that already holds a finished warm-up with the same
    settings is left as it is and its report returned, so callers can use this as a cache.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(out_dir)
    report_path = out / WARMUP_REPORT
    settings = {"warmup": asdict(warmup), "model": asdict(model_config)}
    if report_path.is_file():
        previous = json.loads(report_path.read_text(encoding="utf-8"))
        if previous.get("settings") == settings:
            log.info("tiny model at %s is already warmed up with these settings", out)
            return previous
    if not (out / "config.json").is_file() or report_path.is_file():
        build_tiny(out, model_config, corpus)
    tokenizer = AutoTokenizer.from_pretrained(out)
    tokenizer.padding_side = "left"  # batched generation of a decoder-only model pads on the left
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    model.train()

    train_items = _problems(warmup.source, warmup.n_items, warmup.seed)
    eval_items = _problems(warmup.source, warmup.eval_items, warmup.seed + 10_007)
    train_prompts = render_prompts(train_items, warmup.template, warmup.lang, tokenizer)
    eval_prompts = render_prompts(eval_items, warmup.template, warmup.lang, tokenizer)
    max_length = model.config.max_position_embeddings
    examples = [
        _encode(tokenizer, prompt, _response_target(prompt, p.reference or ""), max_length)
        for prompt, p in zip(train_prompts, train_items)
        if p.reference
    ]
    if not examples:
        raise ValueError(f"warm-up source {warmup.source!r} yields no items with a reference response")

    torch.manual_seed(warmup.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=warmup.learning_rate, weight_decay=0.01)

    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, warmup.warmup_steps, warmup.max_steps))
    order_rng = random.Random(f"mdrl-warmup-{warmup.seed}")
    checkpoint_path = out / WARMUP_CHECKPOINT
    state = _load_checkpoint(checkpoint_path, settings, model, optimizer, scheduler, order_rng)
    if state is None:
        initial = sampled_success(
            model, tokenizer, eval_items, eval_prompts, warmup.max_new_tokens, warmup.temperature, warmup.seed
        )
        state = {"step": 0, "order": [], "history": [], "initial": initial, "success": initial,
                 "loss": float("nan"), "seconds": 0.0}
    else:
        log.warning("resuming the tiny model's warm-up in %s at step %d of at most %d",
                    out, state["step"], warmup.max_steps)
    order, history = state["order"], state["history"]
    initial, success, loss_value = state["initial"], state["success"], state["loss"]
    started = time.time() - state["seconds"]
    step = state["step"]
    bar = tqdm(total=warmup.max_steps, initial=step, desc=f"warm-up {out.name}", unit="step", disable=None,
               leave=False)
    for step in range(state["step"] + 1, warmup.max_steps + 1):
        if len(order) < warmup.batch_size:
            fresh = list(range(len(examples)))
            order_rng.shuffle(fresh)
            order += fresh
        batch = [examples[i] for i in order[: warmup.batch_size]]
        del order[: warmup.batch_size]
        loss_value = sft_step(model, optimizer, scheduler, batch, tokenizer.pad_token_id)
        bar.update()
        if step % warmup.eval_every == 0 or step == warmup.max_steps:
            success = sampled_success(
                model,
                tokenizer,
                eval_items,
                eval_prompts,
                warmup.max_new_tokens,
                warmup.temperature,
                warmup.seed + step,
            )
            history.append({"step": step, "loss": round(loss_value, 4), "success": round(success, 4)})
            log.info("warm-up step %d: loss %.3f, sampled success %.1f%%", step, loss_value, 100 * success)
            bar.set_postfix(loss=f"{loss_value:.3f}", success=f"{100 * success:.0f}%")
            if warmup.target_success > 0 and success >= warmup.target_success:
                break
            _save_checkpoint(checkpoint_path, settings, model, optimizer, scheduler, order_rng, {
                "step": step, "order": order, "history": history, "initial": initial, "success": success,
                "loss": loss_value, "seconds": time.time() - started})
    bar.close()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    report = {
        "settings": settings,
        "steps": step,
        "final_loss": round(loss_value, 4),
        "initial_success": round(initial, 4),
        "final_success": round(success, 4),
        "history": history,
        "seconds": round(time.time() - started, 1),
    }
    report_path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    checkpoint_path.unlink(missing_ok=True)
    meta_path = out / "mdrl_tiny.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    meta.update(kind="warmed", warmup=asdict(warmup))
    meta_path.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return report
