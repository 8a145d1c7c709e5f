"""The training plan: which prompt the trainer sees at every position of the run.

The data layer builds one epoch (mixture counts, interleaving, curriculum order). The plan repeats it
for the configured epochs and, unless it is a curriculum, draws each later epoch in a fresh seeded
order that keeps the data layer's interleaving of domains (see `epoch_order`). The result is a flat,
deterministic order that TRL walks without shuffling (`shuffle_dataset=False`), so resuming from a
checkpoint continues the exact same order: TRL's own sampler reshuffles from a fixed seed on every
restart (epoch by epoch), which after a restart would repeat or skip data.

Each row of the plan carries `mdrl_row` (its position), `mdrl_epoch` and `mdrl_item` (its index in
the built epoch); the reward adapter records them for every prompt it scores (consumed.jsonl).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from mdrl.train.config import DataSettings, GRPOSettings, TrainConfig

log = logging.getLogger(__name__)

ITEMS_FILE = "items.jsonl"
MANIFEST_FILE = "manifest.json"


@dataclass
class TrainingPlan:
    """One built epoch of HF records, and the order in which training consumes them."""

    items: list[dict[str, Any]]
    order: list[tuple[int, int]]  # (epoch, item index) per position
    manifest: dict[str, Any]

    @property
    def rollout_steps(self) -> int:
        return int(self.manifest["rollout_steps"])

    def records(self) -> list[dict[str, Any]]:
        """The rows TRL trains on, in order, with the bookkeeping columns."""
        return [
            {**self.items[item], "mdrl_row": position, "mdrl_epoch": epoch, "mdrl_item": item}
            for position, (epoch, item) in enumerate(self.order)
        ]


def build_config_for(
    data: DataSettings,
    split: str = "train",
    sources: Sequence[str] | None = None,
    n: int | None = None,
    seed: int | None = None,
) -> Any:
    """The data layer's BuildConfig for these settings."""
    from mdrl.data import BuildConfig

    return BuildConfig.from_mapping(
        {
            "sources": list(data.sources if sources is None else sources),
            "mix": data.mix,
            "n": data.n if n is None else n,
            "difficulty": dict(data.difficulty),
            "template": data.template,
            "lang": data.lang,
            "curriculum": data.curriculum,
            "seed": data.seed if seed is None else seed,
            "split": split,
            "allow_repeat": data.allow_repeat,
        }
    )


def epoch_order(domains: Sequence[str], epochs: int, shuffled: bool, seed: int) -> list[tuple[int, int]]:
    """(epoch, item) pairs for `epochs` passes over items of these domains (one entry per item).

    Epoch 0 is the built order. Unshuffled (curricula), every epoch repeats it. Shuffled, each later
    epoch draws every domain's items in a fresh order seeded by (seed, epoch, domain) and lays them out
    on the data layer's interleaving, so every rollout batch keeps the mixture's proportions (a plain
    permutation of the whole epoch would keep them only on average over the epoch).
    """
    from mdrl.data import interleave

    n_items = len(domains)
    by_domain: dict[str, list[int]] = {}
    for index, domain in enumerate(domains):
        by_domain.setdefault(domain, []).append(index)
    slots = interleave({domain: len(indices) for domain, indices in by_domain.items()})
    order = []
    for epoch in range(epochs):
        if epoch == 0 or not shuffled:
            order += [(epoch, item) for item in range(n_items)]
            continue
        queues = {}
        for domain, indices in by_domain.items():
            drawn = list(indices)
            random.Random(f"mdrl-epoch-{seed}-{epoch}-{domain}").shuffle(drawn)
            queues[domain] = iter(drawn)
        order += [(epoch, next(queues[domain])) for domain in slots]
    return order


def prompt_length(tokenizer: Any, prompt: Any) -> int:
    """Tokens of a prompt as TRL will tokenize it (chat messages through the chat template)."""
    if isinstance(prompt, list):
        ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return len(ids)
    return len(tokenizer(text=prompt)["input_ids"])


def _fit_prompts(
    items: list[dict[str, Any]], tokenizer: Any, data: DataSettings, limit: int
) -> tuple[list[dict[str, Any]], int, int]:
    lengths = [prompt_length(tokenizer, item["prompt"]) for item in items]
    over = [i for i, length in enumerate(lengths) if length > limit]
    if over and data.prompt_overflow == "error":
        raise ValueError(
            f"{len(over)} of {len(items)} prompts are longer than grpo.max_prompt_length={limit} "
            f"tokens (longest {max(lengths)}); raise the limit or set data.prompt_overflow=drop"
        )
    if over:
        log.warning("dropping %d of %d prompts longer than %d tokens", len(over), len(items), limit)
        dropped = set(over)
        items = [item for i, item in enumerate(items) if i not in dropped]
    return items, len(over), max(lengths) if lengths else 0


def rollout_steps_for(n_items: int, grpo: GRPOSettings) -> tuple[int, int]:
    """(rollout batches, epochs needed): max_steps when set, else every full batch of `epochs` epochs."""
    if grpo.max_steps is not None:
        epochs = -(-grpo.max_steps * grpo.train_batch_size // n_items)
        return grpo.max_steps, max(epochs, 1)
    steps = grpo.epochs * n_items // grpo.train_batch_size
    if steps == 0:
        raise ValueError(
            f"{grpo.epochs} epoch(s) of {n_items} prompts do not fill one rollout batch of "
            f"{grpo.train_batch_size}: lower grpo.train_batch_size or add data"
        )
    return steps, grpo.epochs


def _digest(order: Sequence[tuple[int, int]]) -> str:
    return hashlib.sha256(json.dumps(order).encode()).hexdigest()[:16]


def build_plan(config: TrainConfig, tokenizer: Any) -> TrainingPlan:
    """Build the epoch through the data layer, check prompt lengths, and lay out the whole run."""
    from mdrl.data import build_dataset, hf_records

    result = build_dataset(build_config_for(config.data))
    items = hf_records(result.problems, template=config.data.template, lang=config.data.lang, split="train")
    items, dropped, longest = _fit_prompts(items, tokenizer, config.data, config.grpo.max_prompt_length)
    if not items:
        raise ValueError("no training prompts left")
    steps, epochs = rollout_steps_for(len(items), config.grpo)
    order = epoch_order([item["domain"] for item in items], epochs, config.data.shuffled, config.data.seed)
    order = order[: steps * config.grpo.train_batch_size]
    manifest = {
        "data": result.manifest(),
        "items_per_epoch": len(items),
        "dropped_overlong_prompts": dropped,
        "longest_prompt_tokens": longest,
        "epochs": epochs,
        "shuffled": config.data.shuffled,
        "curriculum": config.data.curriculum,
        "rollout_steps": steps,
        "prompts_per_rollout": config.grpo.train_batch_size,
        "optimizer_steps": steps * config.grpo.updates_per_rollout,
        "order_sha256": _digest(order),
    }
    return TrainingPlan(items=items, order=order, manifest=manifest)


def save_plan(plan: TrainingPlan, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ITEMS_FILE).open("w", encoding="utf-8") as handle:
        for item in plan.items:
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")
    (folder / MANIFEST_FILE).write_text(
        json.dumps(plan.manifest, indent=2, ensure_ascii=False), encoding="utf-8"
    )


def load_plan(folder: Path, config: TrainConfig) -> TrainingPlan | None:
    """The saved plan of a run being resumed (its items are reused as they are), or None."""
    items_path, manifest_path = folder / ITEMS_FILE, folder / MANIFEST_FILE
    if not items_path.is_file() or not manifest_path.is_file():
        return None
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    items = [json.loads(line) for line in items_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    order = epoch_order(
        [item["domain"] for item in items],
        int(manifest["epochs"]),
        bool(manifest["shuffled"]),
        config.data.seed,
    )
    order = order[: int(manifest["rollout_steps"]) * int(manifest["prompts_per_rollout"])]
    if _digest(order) != manifest["order_sha256"]:
        raise ValueError(f"{folder}: the saved plan does not reproduce its recorded order; start a new run")
    return TrainingPlan(items=items, order=order, manifest=manifest)
