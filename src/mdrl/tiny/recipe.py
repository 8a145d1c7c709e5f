"""The recipe of the embedded tiny world: a BASE and an INSTRUCT model built from scratch on generated data.

No pretrained weights can be downloaded, so mdrl trains its own small policy:

1. a byte-level BPE tokenizer and a randomly initialised Qwen2 model (`mdrl.tiny.builder`);
2. BASE: language-model training (prompt and response) on generated items of the three domain groups
   (two-digit plus one-digit sums, linear functions, 2-person Knights & Knaves), prompted with the r1-base
   template ("User: ... Assistant: <think>");
3. INSTRUCT: the base model after a fine-tuning on the responses of the same kind of items rendered
   with the chat template (`<|im_start|>user ... <|im_end|>`), mirroring the study's base vs instruct
   comparison.

The aim is an instruct model right on part of the items, not all (15-60% sampled success): GRPO learns only
from groups whose rewards differ. Measured on one core (docs/tiny-learning/README.md has every try):
- 3000 base steps (~35 min) land Knights & Knaves near the band but overshoot code (100%: copying the
  prompt's numbers appears suddenly between 1000 and 3000 steps). Math level 1 stayed at 2-4% whatever the
  budget; level 0 (a two-digit plus a one-digit number, with a worked units step: "6 + 7 = 13, so 26 + 7 =
  33") is learnt by the base model (92.5% sampled).
- Knights & Knaves is listed twice, so the base stage sees its items twice as often: listed once, the
  240-step instruct stage left it at 7% greedy / 0.5% sampled; twice, at 41.5 / 24%.
- On the first base (math level 1) the instruct stage moved chat-template code from 0% (no chat code seen)
  to 97% within 60 steps at lr 1e-3. On this base 240 steps at 1e-3 settle all three groups in the band
  (greedy / sampled, 200 fresh items, 2026-12-04): math 42.5 / 21.5%, code 54 / 42%, Knights & Knaves
  41.5 / 24%.
- On this instruct model single-domain GRPO raises held-out accuracy in every group (500 items, paired
  s.e.): math +21.9 ± 4.3 (4 seeds) and Knights & Knaves +9.5 ± 1.8 (3 seeds) at 80 rollout batches and lr
  1e-4; code +34.3 ± 3.0 (3 seeds) at 20 batches and lr 2e-4.
Changing only the instruct stage reuses the base model (`BASE_STAGE_FILE`): minutes, not half an hour.

The recipe ends by measuring success per source on fresh items (seed `eval_seed`, greedy and sampled at
temperature 1; questions may repeat training ones, unlike `gen:` suites) and writes it with the recipe itself
to `mdrl_recipe.json` (OUT and each model folder).

Everything is seeded (item generation, data order, initialisation, sampling), so the same recipe on the same
torch build and thread count regenerates the same weights; bit-identity across machines or thread counts is
not promised (CPU kernels may reduce in a different order).
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mdrl.tiny.builder import TinyModelConfig, build_tiny
from mdrl.tiny.pretrain import sft_step, warmup_cosine

log = logging.getLogger(__name__)

RECIPE_FILE = "mdrl_recipe.json"
#: Written into base/ when the base stage ends: a rebuild whose recipe differs only in the instruct stage
#: starts from that base instead of pre-training again (35 minutes of the build's 36).
BASE_STAGE_FILE = "mdrl_base_stage.json"
BASE_STEPS = 3000
INSTRUCT_STEPS = 240
#: The models `mdrl tiny build` makes from the default recipe, committed so the demo starts at once.
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
FLAVOURS = {"base": "r1-base", "instruct": "chat"}


@dataclass(frozen=True)
class StageConfig:
    """One supervised stage (base pre-training or instruct fine-tuning)."""

    template: str = field(metadata={"help": "Prompt template the stage trains with: r1-base | chat | plain."})
    steps: int = field(metadata={"help": "Optimizer steps."})
    learning_rate: float = field(default=2e-3, metadata={"help": "Peak AdamW learning rate."})
    warmup_steps: int = field(default=30, metadata={"help": "Linear learning-rate warm-up steps."})
    batch_size: int = field(default=8, metadata={"help": "Sequences per optimizer step."})
    item_seed: int = field(default=0, metadata={"help": "Seed of the generated training items."})
    sources: tuple[str, ...] | None = field(default=None, metadata={
        "help": "Generated sources of this stage; None: the recipe's sources."})
    prompt_loss: bool = field(default=False, metadata={
        "help": "Train on the prompt's tokens too (language-model pre-training), not only the response's. "
                "Prompts repeat the names and numbers the answers need, so this teaches copying faster."})

    def __post_init__(self) -> None:
        if self.steps <= 0 or self.batch_size <= 0 or self.learning_rate <= 0:
            raise ValueError("steps, batch_size and learning_rate must be positive")


@dataclass(frozen=True)
class TinyRecipe:
    """The whole recipe of `mdrl tiny build`; its JSON form is stored with the models."""

    sources: tuple[str, ...] = field(default=("math:0", "code:1", "knights_knaves:2", "knights_knaves:2"), metadata={
        "help": "Generated sources (domain:levels) the models learn from, covering the three domain groups: "
                "sums (math), linear functions (code), 2-person Knights & Knaves (puzzles). A source listed twice "
                "trains on its items twice as often."})
    items_per_source: int = field(default=4000, metadata={"help": "Training items generated per source."})
    corpus: str = field(default="sources", metadata={
        "help": "Tokenizer corpus. sources: this recipe's training items under both templates (short prompts: "
                "every word of the tiny world is one token); all: every domain and template in both languages "
                "(builder.default_corpus)."})
    model: TinyModelConfig = field(default_factory=TinyModelConfig, metadata={"help": "Model size and init seed."})
    # ~0.6 s per step on one CPU core; the models are shipped, so this runs only to regenerate them.
    base: StageConfig = field(default_factory=lambda: StageConfig(
        template="r1-base", steps=BASE_STEPS, batch_size=16, learning_rate=3e-3, warmup_steps=50, prompt_loss=True),
        metadata={"help": "Base pre-training stage."})
    instruct: StageConfig = field(default_factory=lambda: StageConfig(
        template="chat", steps=INSTRUCT_STEPS, batch_size=16, learning_rate=1e-3, warmup_steps=20, item_seed=1),
        metadata={"help": "Instruct fine-tuning stage, starting from the base model."})
    eval_items: int = field(default=200, metadata={"help": "Fresh items per source in the final report."})
    eval_seed: int = field(default=10_007, metadata={"help": "Seed of the held-out items (differs from training)."})
    max_new_tokens: int = field(default=128, metadata={"help": "Generation budget when measuring success."})
    seed: int = field(default=0, metadata={"help": "Seed of data order and sampling."})
    threads: int = field(default=1, metadata={
        "help": "torch CPU threads while building. Fixed so the float reductions (and so the weights) do not "
                "depend on the machine's core count; one thread is also the fastest on a shared 2-core box."})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TinyRecipe:
        data = dict(data)
        data["sources"] = tuple(data.get("sources", cls.sources))
        data["model"] = TinyModelConfig(**data["model"]) if "model" in data else TinyModelConfig()
        for stage in ("base", "instruct"):
            if stage in data:
                values = dict(data[stage])
                if values.get("sources") is not None:
                    values["sources"] = tuple(values["sources"])
                data[stage] = StageConfig(**values)
        return cls(**data)

    def fast(self) -> TinyRecipe:
        """A drastically reduced recipe (seconds) for tests of the wiring; its models are untrained noise."""
        return replace(self, items_per_source=16, eval_items=1, max_new_tokens=8, corpus="sources",
                       model=replace(self.model, hidden_size=32, num_hidden_layers=1, intermediate_size=64,
                                     num_attention_heads=2, num_key_value_heads=1, vocab_size=400),
                       base=replace(self.base, steps=2, warmup_steps=1, batch_size=4),
                       instruct=replace(self.instruct, steps=2, warmup_steps=1, batch_size=4))


# --------------------------------------------------------------------------- data


def generated(source: str, n: int, seed: int) -> list[Any]:
    """`n` generated items of a `domain:levels` source."""
    from mdrl.data import SourceSpec, load_source

    spec = SourceSpec.parse(source)
    if spec.kind != "generate":
        raise ValueError(f"tiny recipe source must be a generator (domain:levels), got {source!r}")
    return list(load_source(replace(spec, n=n, seed=seed)))


def training_examples(recipe: TinyRecipe, stage: StageConfig, tokenizer: Any, max_length: int
                      ) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) of every training item; the loss is on the response (and on the prompt when the
    stage says `prompt_loss`)."""
    from mdrl.tiny.pretrain import _response_target, render_prompts

    examples = []
    for source in stage.sources or recipe.sources:
        items = [p for p in generated(source, recipe.items_per_source, stage.item_seed) if p.reference]
        prompts = render_prompts(items, stage.template, "en", tokenizer)
        for prompt, item in zip(prompts, items):
            prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            response_ids = tokenizer(_response_target(prompt, item.reference), add_special_tokens=False)["input_ids"]
            response_ids = response_ids + [tokenizer.eos_token_id]
            ids = (prompt_ids + response_ids)[:max_length]
            labels = ((prompt_ids if stage.prompt_loss else [-100] * len(prompt_ids)) + response_ids)[:max_length]
            examples.append((ids, labels))
    if not examples:
        raise ValueError(f"tiny recipe sources {recipe.sources} yield no items with a reference response")
    return examples


# --------------------------------------------------------------------------- training


def train_stage(model: Any, tokenizer: Any, recipe: TinyRecipe, stage: StageConfig,
                on_step: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Supervised causal-LM training of `model` in place; returns the loss curve (every 50 steps)."""
    import torch

    examples = training_examples(recipe, stage, tokenizer, model.config.max_position_embeddings)
    torch.manual_seed(recipe.seed + stage.item_seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=stage.learning_rate, weight_decay=0.01)

    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, stage.warmup_steps, stage.steps))
    order_rng = random.Random(f"mdrl-tiny-{stage.template}-{recipe.seed}")
    order: list[int] = []
    curve = []
    pad = tokenizer.pad_token_id
    model.train()
    started = time.time()
    for step in range(1, stage.steps + 1):
        if len(order) < stage.batch_size:
            fresh = list(range(len(examples)))
            order_rng.shuffle(fresh)
            order += fresh
        batch = [examples[i] for i in order[:stage.batch_size]]
        del order[:stage.batch_size]
        value = sft_step(model, optimizer, scheduler, batch, pad)
        if on_step is not None:
            on_step(step, value)
        if step % 50 == 0 or step == stage.steps:
            curve.append({"step": step, "loss": round(value, 4)})
    return {"steps": stage.steps, "examples": len(examples), "final_loss": curve[-1]["loss"], "curve": curve,
            "seconds": round(time.time() - started, 1)}


# --------------------------------------------------------------------------- measuring


def success(model: Any, tokenizer: Any, problems: Sequence[Any], prompts: Sequence[str], temperature: float,
            max_new_tokens: int, seed: int, batch_size: int = 32) -> float:
    """Share of items whose one response (greedy when temperature is 0) scores acc=True."""
    import torch

    from mdrl.reward import compute_score

    torch.manual_seed(seed)
    model.eval()
    sampling: dict[str, Any] = ({"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
                                if temperature > 0 else {"do_sample": False})
    correct = 0
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            batch = list(prompts[start:start + batch_size])
            encoded = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
            out = model.generate(**encoded, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id, **sampling)
            texts = tokenizer.batch_decode(out[:, encoded["input_ids"].shape[1]:], skip_special_tokens=True)
            for problem, text in zip(problems[start:start + batch_size], texts):
                correct += bool(compute_score(problem.data_source, text, problem.ground_truth,
                                              problem.extra_info)["acc"])
    return correct / max(len(prompts), 1)


def measure(model: Any, tokenizer: Any, recipe: TinyRecipe, template: str) -> dict[str, dict[str, float]]:
    """Held-out success per source: {source: {greedy, t1}}."""
    from mdrl.tiny.pretrain import render_prompts

    report = {}
    for source in recipe.sources:
        items = generated(source, recipe.eval_items, recipe.eval_seed)
        prompts = render_prompts(items, template, "en", tokenizer)
        report[source] = {
            "greedy": round(success(model, tokenizer, items, prompts, 0.0, recipe.max_new_tokens, recipe.seed), 4),
            "t1": round(success(model, tokenizer, items, prompts, 1.0, recipe.max_new_tokens, recipe.seed), 4),
            "n": len(items)}
    return report


# --------------------------------------------------------------------------- the build


def default_cache_dir() -> Path:
    """Where `mdrl tiny build` and `mdrl demo` keep the models: $MDRL_CACHE_DIR/tiny, else
    $XDG_CACHE_HOME/mdrl/tiny, else ~/.cache/mdrl/tiny."""
    import os

    if os.environ.get("MDRL_CACHE_DIR"):
        return Path(os.environ["MDRL_CACHE_DIR"]).expanduser() / "tiny"
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root).expanduser() / "mdrl" / "tiny"


def tokenizer_corpus(recipe: TinyRecipe) -> list[str] | None:
    """None (the builder's full default corpus) or the recipe's own items rendered with both templates."""
    if recipe.corpus == "all":
        return None
    if recipe.corpus != "sources":
        raise ValueError(f"recipe corpus must be 'all' or 'sources', got {recipe.corpus!r}")
    from mdrl.domains import get_domain
    from mdrl.templates import Template

    texts = []
    for source in recipe.sources:
        for item in generated(source, recipe.items_per_source, recipe.base.item_seed):
            user = get_domain(item.domain).render_question(item, "en")
            texts += [Template("r1-base", "en").render(user), f"user\n{user}\nassistant\n", item.reference or ""]
    return texts


def recipe_key(recipe: TinyRecipe) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(recipe.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


def base_stage_key(recipe: TinyRecipe) -> str:
    """What the base model depends on: the whole recipe but its instruct stage."""
    import hashlib

    data = recipe.to_dict()
    data.pop("instruct")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def finished_base(folder: Path, recipe: TinyRecipe) -> dict[str, Any] | None:
    """{stage, accuracy} of the base model in folder/base when this recipe's base stage made it, else None."""
    try:
        record = json.loads((Path(folder) / "base" / BASE_STAGE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("key") != base_stage_key(recipe) or not (Path(folder) / "base" / "model.safetensors").is_file():
        return None
    return record


def read_built(folder: Path, recipe: TinyRecipe) -> dict[str, Any] | None:
    """The stored report when `folder` holds both models built by exactly this recipe, else None."""
    try:
        record = json.loads((folder / RECIPE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("key") != recipe_key(recipe):
        return None
    if not all((folder / flavour / "config.json").is_file() for flavour in FLAVOURS):
        return None
    return record


def build_models(out_dir: str | Path, recipe: TinyRecipe = TinyRecipe(), force: bool = False,
                 on_step: Callable[[str, int, int, float], None] | None = None) -> dict[str, Any]:
    """Build OUT/base and OUT/instruct from `recipe` (reusing a finished build of the same recipe, or the
    base model of one with the same base stage, unless `force`), measure them, and write
    OUT/mdrl_recipe.json (also copied into each model folder).

    `on_step(stage, step, total, loss)` is called after each optimizer step (for progress bars).
    """
    import torch

    out = Path(out_dir)
    if not force:
        previous = read_built(out, recipe)
        if previous is not None:
            log.info("tiny models in %s are already built by this recipe", out)
            return previous
    threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        return _build(out, recipe, on_step, None if force else finished_base(out, recipe))
    finally:
        torch.set_num_threads(threads)


def _build(out: Path, recipe: TinyRecipe, on_step: Callable[[str, int, int, float], None] | None,
           base_done: dict[str, Any] | None) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.time()
    base_dir, instruct_dir = out / "base", out / "instruct"
    for folder in (instruct_dir,) if base_done else (base_dir, instruct_dir):
        if folder.exists():
            shutil.rmtree(folder)
    (out / RECIPE_FILE).unlink(missing_ok=True)
    if base_done:
        log.info("tiny base: reusing %s (made by this recipe's base stage)", base_dir)
    else:
        build_tiny(base_dir, recipe.model, tokenizer_corpus(recipe))
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    tokenizer.padding_side = "left"  # batched generation of a decoder-only model pads on the left
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    stages: dict[str, Any] = {}
    accuracy: dict[str, Any] = {}
    for flavour, stage, folder in (("base", recipe.base, base_dir), ("instruct", recipe.instruct, instruct_dir)):
        def step_hook(step: int, loss: float, flavour: str = flavour, total: int = stage.steps) -> None:
            if on_step is not None:
                on_step(flavour, step, total, loss)

        if flavour == "base" and base_done:
            stages[flavour], accuracy[flavour] = base_done["stage"], base_done["accuracy"]
            continue
        stages[flavour] = train_stage(model, tokenizer, recipe, stage, step_hook)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        accuracy[flavour] = measure(model, tokenizer, recipe, stage.template)
        log.info("tiny %s: %s", flavour, accuracy[flavour])
        if flavour == "base":
            done = {"key": base_stage_key(recipe), "stage": stages[flavour], "accuracy": accuracy[flavour]}
            (folder / BASE_STAGE_FILE).write_text(json.dumps(done, indent=2), encoding="utf-8")
    record = {"key": recipe_key(recipe), "recipe": recipe.to_dict(), "templates": FLAVOURS, "stages": stages,
              "accuracy": accuracy, "parameters": model.num_parameters(),
              "seconds": round(time.time() - started, 1), "base_reused": base_done is not None,
              "torch": torch.__version__,
              "threads": recipe.threads}
    for folder in (base_dir, instruct_dir):
        meta = {"kind": folder.name, "template": FLAVOURS[folder.name], "recipe_key": record["key"]}
        (folder / "mdrl_tiny.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        (folder / RECIPE_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    (out / RECIPE_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")  # last: marks the build done
    return json.loads(json.dumps(record))  # the same plain-JSON form a cache hit returns


def ready_models(cache_dir: str | Path | None = None, recipe: TinyRecipe = TinyRecipe(),
                 build: Callable[[Path, TinyRecipe], dict[str, Any]] | None = None) -> tuple[Path, dict[str, Any]]:
    """The folder holding base/ and instruct/ made by `recipe`, and its record.

    The shipped models (SHIPPED_DIR) when they were built by exactly this recipe; else a build in `cache_dir`
    (default `default_cache_dir()`), made once by `build(folder, recipe)` (default `build_models`) and reused.
    """
    shipped = read_built(SHIPPED_DIR, recipe)
    if shipped is not None:
        return SHIPPED_DIR, shipped
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return folder, (build or build_models)(folder, recipe)


def accuracy_table(record: dict[str, Any]) -> str:
    """Markdown table of held-out success: one row per model and source."""
    lines = ["| model | source | greedy | sampled T=1 | items |", "|---|---|---|---|---|"]
    for flavour, per_source in record["accuracy"].items():
        for source, numbers in per_source.items():
            lines.append(f"| {flavour} | {source} | {100 * numbers['greedy']:.1f}% | {100 * numbers['t1']:.1f}% "
                         f"| {numbers['n']} |")
    return "\n".join(lines)
