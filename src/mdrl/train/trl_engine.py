"""The one-machine engine: TRL's GRPOTrainer with mdrl's verifiers as reward functions.

What mdrl adds around GRPOTrainer (the policy-gradient step itself is TRL's):
  * the GRPO knobs mapped from veRL's names: a rollout batch of `train_batch_size` prompts x
    `num_generations` rollouts is generated once and trained on in `train_batch_size/mini_batch_size`
    optimizer steps of `micro_batch_size`-sequence passes (TRL's generation_batch_size and
    gradient accumulation);
  * a deterministic data plan (see plan.py) walked without shuffling, so curricula keep their order
    and a resumed run continues exactly where the checkpoint left off;
  * checkpoints that count only once complete, resume by re-running the same command, and
    metrics.jsonl / consumed.jsonl trimmed back to the checkpoint's step on resume;
  * per-domain reward, accuracy and length metrics, and TensorBoard events in the run directory.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdrl.modelref import check_model_reference, loading, model_provider
from mdrl.pretrained import resolve_model
from mdrl.train.config import TrainConfig
from mdrl.train.metrics import (
    CHECKPOINT_MARKER,
    CheckpointMarker,
    ConsumptionLedger,
    JsonlMetrics,
    RewardProgress,
    complete_checkpoints,
    last_complete_checkpoint,
    truncate_jsonl,
)
from mdrl.train.plan import TrainingPlan, build_plan, load_plan, save_plan
from mdrl.train.rewards import make_reward_funcs, reward_configs
from mdrl.train.run import RunDir, prepare_run_dir

log = logging.getLogger(__name__)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


class _TiedHeadIsNotMissing(logging.Filter):
    """A checkpoint of a model whose output head is its embedding matrix holds that matrix once;
    transformers then reports `lm_head.weight` as missing on resume although the head is restored."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "There were missing keys in the checkpoint model loaded: ['lm_head.weight']."


def resolve_model_path(config: TrainConfig, run: RunDir) -> str:
    """The model to train: a path or hub id as given, a packaged model (smollm2) converted once into the
    cache, or a provider's model (mdrl's tiny model) built and warmed up here."""
    ref = resolve_model(config.model.path)
    provide = model_provider(ref)
    if provide is None:
        check_model_reference(ref)
        return ref
    report = provide(run.base_model, config.model.warmup)
    log.info(
        "%s model warmed up: sampled success %.1f%% -> %.1f%% in %d steps",
        config.model.path,
        100 * report["initial_success"],
        100 * report["final_success"],
        report["steps"],
    )
    return str(run.base_model)


def load_tokenizer(model_path: str, config: TrainConfig) -> Any:
    from transformers import AutoTokenizer

    with loading(model_path):
        tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=config.model.trust_remote_code)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    probe = "<think> a </think> <answer> b </answer>"
    if (
        tokenizer.decode(
            tokenizer(probe, add_special_tokens=False)["input_ids"], skip_special_tokens=True
        ).count("answer>")
        < 2
    ):
        # TRL decodes completions skipping special tokens: answer tags registered as special would
        # vanish and every reward would be 0.
        log.error(
            "the tokenizer of %s drops <answer> tags when decoding with skip_special_tokens=True; "
            "every completion will score 0",
            model_path,
        )
    if config.data.template == "chat" and getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(
            f"data.template=chat needs a tokenizer with a chat template; {model_path} has none "
            "(use r1-base or plain for a base model)"
        )
    return tokenizer


def trl_batch_layout(config: TrainConfig, world_size: int) -> dict[str, int]:
    """TRL's batch arguments for the veRL-style sizes of the config."""
    grpo = config.grpo
    g = grpo.num_generations
    per_update = grpo.mini_batch * g
    if per_update % (grpo.micro_batch_size * world_size):
        raise ValueError(
            f"grpo.mini_batch_size x num_generations = {per_update} sequences per update must be a "
            f"multiple of micro_batch_size x processes = {grpo.micro_batch_size} x {world_size}"
        )
    return {
        "per_device_train_batch_size": grpo.micro_batch_size,
        "gradient_accumulation_steps": per_update // (grpo.micro_batch_size * world_size),
        "generation_batch_size": grpo.train_batch_size * g,
        "num_generations": g,
    }


def _checkpointing_field(config_class: type) -> str:
    # transformers 5 renamed gradient_checkpointing to activation_checkpointing (the old name warns).
    import dataclasses

    names = {f.name for f in dataclasses.fields(config_class)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def grpo_args(config: TrainConfig, run: RunDir, plan: TrainingPlan) -> Any:
    """The GRPOConfig of this run."""
    import torch
    from trl import GRPOConfig

    grpo = config.grpo
    cuda = _cuda()
    bf16 = cuda and config.model.dtype in ("auto", "bfloat16")
    dtype = torch.bfloat16 if bf16 else torch.float32
    use_vllm = grpo.use_vllm
    if use_vllm is None:
        use_vllm = cuda and importlib.util.find_spec("vllm") is not None
    if use_vllm and not cuda:
        raise ValueError("grpo.use_vllm=true needs a CUDA GPU")
    updates = grpo.updates_per_rollout
    extra: dict[str, Any] = {}
    if use_vllm:
        extra.update(vllm_mode="colocate", vllm_gpu_memory_utilization=grpo.vllm_gpu_memory_utilization)
    return GRPOConfig(
        output_dir=str(run.checkpoints),
        **trl_batch_layout(config, world_size()),
        max_completion_length=grpo.max_completion_length,
        temperature=grpo.temperature,
        top_p=grpo.top_p,
        learning_rate=grpo.learning_rate,
        lr_scheduler_type=(
            "constant_with_warmup"
            if grpo.lr_scheduler == "constant" and grpo.warmup_ratio > 0
            else grpo.lr_scheduler
        ),
        warmup_steps=grpo.warmup_ratio,
        weight_decay=grpo.weight_decay,
        max_grad_norm=grpo.max_grad_norm,
        beta=grpo.beta,
        epsilon=grpo.clip_ratio,
        loss_type=grpo.loss_type,
        scale_rewards=grpo.scale_rewards,
        entropy_coef=grpo.entropy_coeff,
        num_train_epochs=1,  # the plan already lays out every epoch
        max_steps=plan.rollout_steps * updates,
        shuffle_dataset=False,
        seed=grpo.seed,
        bf16=bf16,
        fp16=False,
        model_init_kwargs={"dtype": dtype, "trust_remote_code": config.model.trust_remote_code},
        **{
            _checkpointing_field(GRPOConfig): cuda
            if grpo.gradient_checkpointing is None
            else grpo.gradient_checkpointing
        },
        use_vllm=bool(use_vllm),
        logging_steps=config.run.logging_steps,
        save_strategy="steps",
        save_steps=config.run.save_steps * updates,
        save_total_limit=config.run.save_total_limit,
        report_to="none",  # TensorBoard is attached as a callback writing into the run directory
        log_completions=config.run.log_completions,
        disable_tqdm=not config.run.progress,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda,
        use_cpu=not cuda,  # accelerate sets up gloo for CPU ranks only when told they are CPU ranks
        **extra,
    )


def _plan(config: TrainConfig, run: RunDir, tokenizer: Any, resuming: bool) -> TrainingPlan:
    if resuming:
        plan = load_plan(run.data, config)
        if plan is not None:
            return plan
        log.warning("%s has checkpoints but no saved data plan; rebuilding it from the config", run.root)
    plan = build_plan(config, tokenizer)
    save_plan(plan, run.data)
    return plan


def _drop_torn_checkpoints(run: RunDir) -> None:
    """Remove checkpoint folders a killed run left half-written (no completion marker)."""
    if not run.checkpoints.is_dir():
        return
    complete = {path for _, path in complete_checkpoints(run.checkpoints)}
    for child in run.checkpoints.iterdir():
        if child.name.startswith("checkpoint-") and child.is_dir() and child not in complete:
            log.warning("removing incomplete checkpoint %s", child)
            shutil.rmtree(child)


def _resume_point(config: TrainConfig, run: RunDir) -> tuple[int, Path | None]:
    resume = config.run.resume
    if resume == "never":
        if complete_checkpoints(run.checkpoints):
            raise ValueError(
                f"{run.root} already has checkpoints; with run.resume=never give another "
                "run.output_dir (or delete the old run)"
            )
        return 0, None
    if resume == "auto":
        last = last_complete_checkpoint(run.checkpoints)
        return last if last else (0, None)
    path = Path(resume)
    if not (path / "trainer_state.json").is_file():
        raise ValueError(f"run.resume={resume!r} is not a checkpoint directory (no trainer_state.json)")
    state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    return int(state["global_step"]), path


def world_size() -> int:
    """Ranks of the torch.distributed launch this process belongs to (1 outside one)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


@dataclass(frozen=True)
class PreparedRun:
    """What one process settles before the ranks start: the run folder tidied back to its last complete
    checkpoint, the model built (mdrl's tiny model) and the data plan saved. Ranks only read these."""

    run: RunDir
    step: int
    checkpoint: Path | None
    model_path: str
    # Kept in the one-process case so that training does not load them a second time; ranks read them.
    tokenizer: Any = None
    plan: TrainingPlan | None = None


def prepare_trl(config: TrainConfig) -> PreparedRun:
    if config.engine != "trl":
        raise ValueError(f"train_trl got engine={config.engine!r}")
    step, checkpoint = _resume_point(config, RunDir(config.output_dir))
    run = prepare_run_dir(config, has_progress=checkpoint is not None)
    _drop_torn_checkpoints(run)
    for path in (run.metrics, run.consumed, *sorted(run.root.glob("consumed.rank*.jsonl"))):
        dropped = truncate_jsonl(path, step)
        if dropped:
            log.info("%s: dropped %d line(s) past step %d (they will be logged again)", path.name, dropped, step)
    if checkpoint is not None:  # said at warning level: a resumed run must never look like a new one
        log.warning("resuming %s from %s (optimizer step %d)", run.root, checkpoint.name, step)
    model_path = resolve_model_path(config, run)
    tokenizer = load_tokenizer(model_path, config)
    plan = _plan(config, run, tokenizer, resuming=checkpoint is not None)
    return PreparedRun(run, step, checkpoint, model_path, tokenizer, plan)


def train_trl(config: TrainConfig) -> dict[str, Any]:
    """Run (or continue) GRPO training with TRL in this process. Returns a short summary of the run.
    (`mdrl.train.ranks.train_local` starts run.nproc ranks instead where asked.)"""
    return fit_trl(config, prepare_trl(config))


def fit_trl(config: TrainConfig, prepared: PreparedRun) -> dict[str, Any]:
    """GRPO on a prepared run, in this process (one rank of several, or the only one)."""
    from transformers.integrations import TensorBoardCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import GRPOTrainer

    run, step, checkpoint, model_path = prepared.run, prepared.step, prepared.checkpoint, prepared.model_path
    tokenizer = prepared.tokenizer or load_tokenizer(model_path, config)
    plan = prepared.plan or load_plan(run.data, config)
    if plan is None:
        raise RuntimeError(f"{run.data} holds no data plan: prepare_trl writes it before training")
    import datasets

    dataset = datasets.Dataset.from_list(plan.records())
    domains = sorted(plan.manifest["data"]["counts"])
    updates = config.grpo.updates_per_rollout
    rewards = reward_configs(domains, config.reward.mode, config.reward.format_weight, config.reward.domains)
    # Each rank scores its own share of every rollout batch; together the rank files hold all of it.
    ledger_path = run.root / f"consumed.rank{rank()}.jsonl" if world_size() > 1 else run.consumed
    reward_funcs = make_reward_funcs(
        domains,
        rewards,
        num_generations=config.grpo.num_generations,
        workers=config.reward.workers,
        on_batch=ConsumptionLedger(ledger_path, updates),
    )
    callbacks: list[Any] = [
        JsonlMetrics(run.metrics, run.summary),
        CheckpointMarker(run.checkpoints, updates),
    ]
    if config.run.tensorboard and rank() == 0:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops events a killed run wrote past the checkpoint, as metrics.jsonl does.
        writer = SummaryWriter(log_dir=str(run.tensorboard), purge_step=step + 1 if checkpoint else None)
        callbacks.append(TensorBoardCallback(tb_writer=writer))
    args = grpo_args(config, run, plan)
    trainer = GRPOTrainer(
        model=model_path,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    trainer.remove_callback(ProgressCallback)  # replaced by the same bar showing reward instead of log dumps
    trainer.remove_callback(PrinterCallback)  # transformers' stand-in for the bar: it prints every log dict
    if config.run.progress:
        trainer.add_callback(RewardProgress(f"{run.root.parent.name}/{run.root.name}", config.grpo.max_steps or 0))
    tied = _TiedHeadIsNotMissing() if getattr(trainer.model.config, "tie_word_embeddings", False) else None
    trainer_log = logging.getLogger("transformers.trainer")
    if tied is not None:
        trainer_log.addFilter(tied)
    try:
        with warnings.catch_warnings():
            # TRL's generation reads a property transformers deprecated; it warns once per rollout batch
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    finally:
        if tied is not None:
            trainer_log.removeFilter(tied)
    trainer.save_model(str(run.final))  # the Trainer writes on the main process only
    if rank() == 0:
        tokenizer.save_pretrained(str(run.final))
    summary = {
        "run_dir": str(run.root),
        "resumed_from_step": step,
        "global_step": trainer.state.global_step,
        "rollout_steps": plan.rollout_steps,
        "domains": domains,
        "final_model": str(run.final),
        "nproc": world_size(),
    }
    if checkpoint is None:  # a resumed run's first completions are not the model's start
        scorer = reward_funcs[0].scorer
        summary["start_reward"] = {d: round(m, 4) for d, m in sorted(scorer.start_reward.items())}
        summary["flat_start"] = scorer.flat_start()
    log.info("training finished: %s", summary)
    return summary


__all__ = [
    "CHECKPOINT_MARKER",
    "PreparedRun",
    "fit_trl",
    "grpo_args",
    "load_tokenizer",
    "prepare_trl",
    "resolve_model_path",
    "train_trl",
    "trl_batch_layout",
]
