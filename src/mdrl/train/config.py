"""Training configuration: typed frozen dataclasses, YAML presets and files, dotted CLI overrides.

A run's config is built in layers, later ones winning:
    preset (src/mdrl/presets/<name>.yaml)  ->  config file (YAML, may say `extends: <preset>`)
    ->  overrides (`grpo.learning_rate=1e-5`, values parsed as YAML)
and the fully resolved result is saved as `config.yaml` in the run directory. Every field is
documented once, in its `metadata["help"]`; `mdrl train --list-options` prints them all.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from mdrl.plain import plain
from mdrl.specs import DataSpec, RewardSpec, apply_overrides, build_settings, deep_merge, field_help
from mdrl.verify.shaping import RewardConfig

ENGINES = ("trl", "verl")
PRESET_PACKAGE = "mdrl.presets"


@dataclass(frozen=True)
class WarmupConfig:
    """How a model that a provider builds (`model.path: tiny`, mdrl's embedded tiny model) is warmed up
    before GRPO. Providers register under the entry-point group mdrl.models (see mdrl.modelref)."""

    source: str = field(
        default="knights_knaves:2",
        metadata={"help": "Generated items to learn from, as a data-layer source string (domain:levels)."},
    )
    template: str = field(default="r1-base", metadata={"help": "Prompt template: r1-base | chat | plain."})
    lang: str = field(default="en", metadata={"help": "Language of the prompts: en | zh."})
    n_items: int = field(default=2000, metadata={"help": "Training items generated for the warm-up."})
    max_steps: int = field(default=800, metadata={"help": "Upper bound on optimizer steps."})
    batch_size: int = field(default=16, metadata={"help": "Sequences per optimizer step."})
    learning_rate: float = field(default=2e-3, metadata={"help": "Peak AdamW learning rate."})
    warmup_steps: int = field(default=20, metadata={"help": "Linear learning-rate warm-up steps."})
    eval_every: int = field(default=50, metadata={"help": "Measure sampled success every this many steps."})
    eval_items: int = field(default=48, metadata={"help": "Held-out items per success measurement."})
    target_success: float = field(
        default=0.2,
        metadata={"help": "Stop once sampled success reaches this share; 0 disables early stopping."},
    )
    max_new_tokens: int = field(default=192, metadata={"help": "Generation budget when measuring success."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature when measuring success."})
    seed: int = field(default=0, metadata={"help": "Seed of item generation, data order and sampling."})

    def __post_init__(self) -> None:
        if self.batch_size <= 0 or self.max_steps <= 0 or self.eval_every <= 0 or self.n_items <= 0:
            raise ValueError("batch_size, max_steps, eval_every and n_items must be positive")
        if not 0.0 <= self.target_success <= 1.0:
            raise ValueError(f"target_success must be in [0, 1], got {self.target_success}")


@dataclass(frozen=True)
class ModelSettings:
    """Which policy to train."""

    path: str = field(
        default="tiny",
        metadata={
            "help": "Any Hugging Face causal LM: a local directory or a hub id (base or instruct, e.g. "
            "Qwen/Qwen2.5-7B). 'tiny' builds mdrl's embedded tiny model in the run directory and warms "
            "it up (see model.warmup), so a run works offline on a CPU."
        },
    )
    dtype: str = field(
        default="auto",
        metadata={
            "help": (
                "Weights dtype: auto (bfloat16 when CUDA is available, else float32) | bfloat16 | float32."
            )
        },
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow models whose hub repository ships its own Python code."}
    )
    warmup: WarmupConfig = field(
        default_factory=WarmupConfig,
        metadata={"help": "Supervised warm-up of the tiny model (only used when path is 'tiny')."},
    )

    def __post_init__(self) -> None:
        if self.dtype not in ("auto", "bfloat16", "float32"):
            raise ValueError(f"model.dtype must be auto, bfloat16 or float32, got {self.dtype!r}")


@dataclass(frozen=True)
class DataSettings(DataSpec):
    """What the policy trains on (the shared data vocabulary, DataSpec, plus training's own). Built by
    the data layer (mdrl.data.build_dataset)."""

    shuffle: bool | None = field(
        default=None,
        metadata={
            "help": "Reshuffle the prompts every epoch (veRL data.shuffle). Default: on, off for curricula."
        },
    )
    val_sources: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": (
                "Validation sources (veRL data.val_files). Empty: a held-out draw of the training mixture."
            )
        },
    )
    val_n: int = field(default=256, metadata={"help": "Items in the held-out validation draw."})
    prompt_overflow: str = field(
        default="error",
        metadata={"help": "What to do with prompts longer than grpo.max_prompt_length: error | drop."},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.curriculum != "none" and self.shuffle:
            raise ValueError(
                "data.shuffle=true contradicts a curriculum: curricula keep their easy->hard order"
            )
        if self.prompt_overflow not in ("error", "drop"):
            raise ValueError(f"data.prompt_overflow must be error or drop, got {self.prompt_overflow!r}")

    @property
    def shuffled(self) -> bool:
        """Whether each epoch is reshuffled (the resolved value of `shuffle`)."""
        return self.curriculum == "none" if self.shuffle is None else self.shuffle


@dataclass(frozen=True)
class RewardSettings:
    """How verdicts become rewards, per domain (the same knobs as `mdrl score`)."""

    mode: str | None = field(default=None, metadata={
        "help": "For every domain (empty: each domain's own). " + field_help(RewardSpec, "mode")})
    format_weight: float | None = field(default=None, metadata={
        "help": "For every domain (empty: each domain's own). " + field_help(RewardSpec, "format_weight")})
    domains: dict[str, dict[str, Any]] = field(
        default_factory=dict,
        metadata={
            "help": "Per-domain overrides, e.g. {knights_knaves: {mode: proportional, format_weight: 0.1}}."
        },
    )
    workers: int = field(
        default=1,
        metadata={
            "help": (
                "Threads scoring a rollout batch (code runs in the sandbox, so threads overlap its waits)."
            )
        },
    )

    def __post_init__(self) -> None:
        if self.workers <= 0:
            raise ValueError(f"reward.workers must be positive, got {self.workers}")
        for options in self.domains.values():
            RewardConfig.from_mapping(dict(options))  # validates names and values now, not mid-run
        if self.mode is not None or self.format_weight is not None:
            RewardConfig(
                **{
                    k: v
                    for k, v in (("mode", self.mode), ("format_weight", self.format_weight))
                    if v is not None
                }
            )

    def for_domain(self, name: str, default: RewardConfig) -> RewardConfig:
        """The domain's default, then the run-wide mode/format weight, then its own overrides."""
        values = dataclasses.asdict(default)
        if self.mode is not None:
            values["mode"] = self.mode
        if self.format_weight is not None:
            values["format_weight"] = self.format_weight
        values.update(self.domains.get(name, {}))
        return RewardConfig.from_mapping(values)


@dataclass(frozen=True)
class GRPOSettings:
    """The GRPO knobs, named after veRL's where they exist (both engines read them)."""

    num_generations: int = field(
        default=5,
        metadata={"help": "Rollouts per prompt (veRL actor_rollout_ref.rollout.n; the study used 5)."},
    )
    train_batch_size: int = field(
        default=256,
        metadata={"help": "Prompts per rollout batch (veRL data.train_batch_size; the study used 256)."},
    )
    mini_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "Prompts per optimizer update (veRL ppo_mini_batch_size); a rollout batch makes "
            "train_batch_size/mini_batch_size updates. Empty: one update per rollout batch."
        },
    )
    micro_batch_size: int = field(
        default=4,
        metadata={
            "help": "Sequences per device per forward/backward pass (gradient accumulation fills the rest)."
        },
    )
    epochs: int = field(default=1, metadata={"help": "Passes over the training prompts (the study: 10)."})
    max_steps: int | None = field(
        default=None,
        metadata={
            "help": (
                "Stop after this many rollout batches (veRL trainer.total_training_steps); overrides epochs."
            )
        },
    )
    learning_rate: float = field(default=1e-6, metadata={"help": "Actor learning rate (the study: 1e-6)."})
    lr_scheduler: str = field(
        default="constant",
        metadata={
            "help": (
                "Learning-rate schedule (transformers names): constant (veRL's default) | cosine | linear."
            )
        },
    )
    warmup_ratio: float = field(default=0.0, metadata={"help": "Share of steps with linear lr warm-up."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay (veRL's default 0.01)."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm (veRL grad_clip)."})
    beta: float = field(
        default=0.001,
        metadata={
            "help": "KL coefficient against the reference model, k3 (low_var_kl) estimator as a loss term "
            "(the study: use_kl_loss=True, kl_loss_coef=0.001). 0 drops the reference model."
        },
    )
    entropy_coeff: float = field(
        default=0.0,
        metadata={
            "help": (
                "Entropy bonus coefficient (veRL actor.entropy_coeff; 0.001 was "
                "veRL's default in the study's era)."
            )
        },
    )
    clip_ratio: float = field(default=0.2, metadata={"help": "PPO clip range epsilon."})
    loss_type: str = field(
        default="dapo",
        metadata={
            "help": (
                "TRL loss aggregation; dapo = token-mean over the batch, as veRL's loss_agg_mode=token-mean."
            )
        },
    )
    scale_rewards: str = field(
        default="group",
        metadata={"help": "Advantage normalisation: group (divide by the group's std, GRPO) | batch | none."},
    )
    max_prompt_length: int = field(
        default=512, metadata={"help": "Longest prompt in tokens (see data.prompt_overflow)."}
    )
    max_completion_length: int = field(
        default=1024,
        metadata={"help": "Longest response in tokens (veRL data.max_response_length; the study: 8192)."},
    )
    temperature: float = field(default=1.0, metadata={"help": "Rollout sampling temperature."})
    top_p: float = field(default=1.0, metadata={"help": "Rollout nucleus sampling threshold."})
    seed: int = field(default=0, metadata={"help": "Seed of sampling and of everything random in training."})
    gradient_checkpointing: bool | None = field(
        default=None,
        metadata={"help": "Recompute activations to save memory. Default: on with CUDA, off on CPU."},
    )
    use_vllm: bool | None = field(
        default=None,
        metadata={
            "help": "Generate with vLLM (colocated). Default: when vLLM is importable and CUDA is available."
        },
    )
    vllm_gpu_memory_utilization: float = field(
        default=0.5, metadata={"help": "GPU memory share vLLM may take (the study: 0.5)."}
    )

    def __post_init__(self) -> None:
        if self.num_generations < 2:
            raise ValueError("grpo.num_generations must be at least 2: GRPO compares rollouts within a group")
        for name in (
            "train_batch_size",
            "micro_batch_size",
            "epochs",
            "max_prompt_length",
            "max_completion_length",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"grpo.{name} must be positive, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps <= 0:
            raise ValueError(f"grpo.max_steps must be positive, got {self.max_steps}")
        if self.train_batch_size % self.mini_batch:
            raise ValueError(
                f"grpo.train_batch_size ({self.train_batch_size}) must be a multiple of "
                f"grpo.mini_batch_size ({self.mini_batch})"
            )
        if self.scale_rewards not in ("group", "batch", "none"):
            raise ValueError(f"grpo.scale_rewards must be group, batch or none, got {self.scale_rewards!r}")
        if self.beta < 0 or self.learning_rate <= 0 or self.temperature <= 0:
            raise ValueError("grpo.beta must be >= 0, grpo.learning_rate and grpo.temperature > 0")

    @property
    def mini_batch(self) -> int:
        return self.mini_batch_size or self.train_batch_size

    @property
    def updates_per_rollout(self) -> int:
        """Optimizer steps made from one rollout batch."""
        return self.train_batch_size // self.mini_batch


@dataclass(frozen=True)
class RunSettings:
    """Where the run lives, how often it checkpoints and logs, and whether it resumes."""

    output_dir: str | None = field(
        default=None,
        metadata={
            "help": (
                "Run directory (config.yaml, metrics.jsonl, checkpoints/, "
                "tensorboard/). Default: runs/<name>."
            )
        },
    )
    save_steps: int = field(default=50, metadata={"help": "Checkpoint every this many rollout batches."})
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept (older ones are deleted)."})
    resume: str = field(
        default="auto",
        metadata={
            "help": "auto (continue from the last complete checkpoint in the run directory) | never | a "
            "checkpoint directory."
        },
    )
    logging_steps: int = field(default=1, metadata={"help": "Log metrics every this many optimizer steps."})
    tensorboard: bool = field(default=True, metadata={"help": "Also write TensorBoard event files."})
    progress: bool = field(default=True, metadata={"help": "Show the training progress bar on stderr."})
    log_completions: bool = field(
        default=False,
        metadata={
            "help": "Save sampled completions with their rewards (TRL's completions table) at each log step."
        },
    )

    nproc: int = field(
        default=1,
        metadata={
            "help": "Processes (ranks) for the TRL engine on this machine, started with torchrun: gloo on "
            "CPU, nccl with one GPU per rank. Rank 0 writes metrics, summary and checkpoints."
        },
    )

    def __post_init__(self) -> None:
        if self.save_steps <= 0 or self.logging_steps <= 0 or self.save_total_limit <= 0:
            raise ValueError("run.save_steps, run.logging_steps and run.save_total_limit must be positive")
        if self.nproc < 1:
            raise ValueError("run.nproc must be at least 1")


# Reward managers veRL 0.9's main_ppo can load (its reward-loop registry) that score mdrl's module right;
# tests/test_train_verl.py runs every manager of the installed veRL through this split.
VERL_REWARD_MANAGERS = ("naive", "dapo", "gdpo", "rate_limited", "remote")
REFUSED_REWARD_MANAGERS = {
    "prime": (
        "the study's run.sh choice is legacy in veRL 0.9: main_ppo cannot load it, and the legacy class "
        "reads result[0] from the dict mdrl's reward module returns, logs 'Setting all as 0' and trains "
        "on zeros. Use verl.reward_manager=naive (the same per-sample scoring; 'remote' runs it in "
        "separate processes)"
    ),
    "batch": (
        "it calls compute_score once with lists (data_sources=, solution_strs=, ...), while mdrl's module "
        "scores one sample per call. Use verl.reward_manager=naive, or remote for parallel scoring"
    ),
}


def check_reward_manager(name: str) -> None:
    """Refuse, with the reason and the fix, a veRL reward manager that would not score mdrl's module."""
    if name in REFUSED_REWARD_MANAGERS:
        raise ValueError(f"verl.reward_manager={name!r}: {REFUSED_REWARD_MANAGERS[name]}.")
    if name not in VERL_REWARD_MANAGERS:
        raise ValueError(
            f"verl.reward_manager={name!r} is not a veRL 0.9 reward manager that scores mdrl's module; "
            f"choose one of {', '.join(VERL_REWARD_MANAGERS)}"
        )


@dataclass(frozen=True)
class VerlSettings:
    """Cluster settings for `--engine verl` (written as Hydra overrides into launch.sh)."""

    n_gpus_per_node: int = field(default=8, metadata={"help": "GPUs per node (trainer.n_gpus_per_node)."})
    nnodes: int = field(default=1, metadata={"help": "Nodes (trainer.nnodes)."})
    rollout_name: str = field(default="vllm", metadata={"help": "Rollout engine: vllm | sglang."})
    tensor_model_parallel_size: int = field(default=2, metadata={"help": "Rollout tensor parallelism."})
    gpu_memory_utilization: float = field(default=0.5, metadata={"help": "Rollout engine GPU memory share."})
    max_num_batched_tokens: int = field(
        default=16384, metadata={"help": "Rollout engine batched-token budget."}
    )
    ppo_micro_batch_size_per_gpu: int = field(default=4, metadata={"help": "Actor micro batch per GPU."})
    log_prob_micro_batch_size_per_gpu: int = field(
        default=8, metadata={"help": "Micro batch per GPU for rollout and reference log-probs."}
    )
    param_offload: bool = field(default=False, metadata={"help": "FSDP parameter offload (actor and ref)."})
    optimizer_offload: bool = field(default=False, metadata={"help": "FSDP optimizer offload."})
    save_freq: int = field(
        default=200, metadata={"help": "Checkpoint every this many steps (the study: 200)."}
    )
    test_freq: int = field(default=100, metadata={"help": "Validate every this many steps (the study: 100)."})
    val_before_train: bool = field(default=True, metadata={"help": "Validate once before training."})
    logger: tuple[str, ...] = field(
        default=("console", "tensorboard"),
        metadata={"help": "veRL trainer.logger backends (the study used wandb)."},
    )
    project_name: str = field(default="mdrl", metadata={"help": "trainer.project_name."})
    reward_manager: str = field(
        default="naive",
        metadata={
            "help": (
                "veRL reward manager (reward.reward_manager.name): naive | dapo | gdpo | rate_limited | "
                "remote. The study's 'prime' is refused: veRL 0.9 cannot score mdrl's module with it."
            )
        },
    )
    extra_overrides: tuple[str, ...] = field(
        default=(),
        metadata={"help": "More Hydra overrides appended verbatim, e.g. ['trainer.val_before_train=False']."},
    )
    launch: bool = field(
        default=True,
        metadata={
            "help": "Run launch.sh when veRL is installed; otherwise (or when false) only write and print it."
        },
    )

    def __post_init__(self) -> None:
        if self.n_gpus_per_node <= 0 or self.nnodes <= 0:
            raise ValueError("verl.n_gpus_per_node and verl.nnodes must be positive")
        check_reward_manager(self.reward_manager)


@dataclass(frozen=True)
class TrainConfig:
    """One GRPO run, on either engine."""

    name: str = field(default="run", metadata={"help": "Run name (default run directory: runs/<name>)."})
    engine: str = field(
        default="trl",
        metadata={
            "help": (
                "trl: one machine (CPU or one GPU) through TRL's GRPOTrainer | verl: a cluster through veRL."
            )
        },
    )
    model: ModelSettings = field(default_factory=ModelSettings, metadata={"help": "The policy model."})
    data: DataSettings = field(default_factory=DataSettings, metadata={"help": "Training data."})
    reward: RewardSettings = field(default_factory=RewardSettings, metadata={"help": "Reward variants."})
    grpo: GRPOSettings = field(default_factory=GRPOSettings, metadata={"help": "GRPO hyperparameters."})
    run: RunSettings = field(default_factory=RunSettings, metadata={"help": "Run directory and checkpoints."})
    verl: VerlSettings = field(default_factory=VerlSettings, metadata={"help": "veRL cluster settings."})

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if not self.name or "/" in self.name:
            raise ValueError(f"name must be a non-empty string without '/', got {self.name!r}")

    @property
    def output_dir(self) -> Path:
        return Path(self.run.output_dir or Path("runs") / self.name)

    def to_dict(self) -> dict[str, Any]:
        return plain(dataclasses.asdict(self))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        return build_settings(cls, data)


# ----------------------------------------------------------------------------------------------------
# Building dataclasses from plain mappings, with type coercion and helpful errors




# ----------------------------------------------------------------------------------------------------
# Presets, files and overrides


def preset_names() -> list[str]:
    """Training presets; `study_*.yaml` in the same folder are `mdrl study` presets, not training ones."""
    folder = resources.files(PRESET_PACKAGE)
    return sorted(
        p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml") and not p.name.startswith("study_")
    )


def read_preset(name: str) -> dict[str, Any]:
    """The raw mapping of a packaged preset (with its `extends` chain resolved)."""
    resource = resources.files(PRESET_PACKAGE) / f"{name}.yaml"
    if not resource.is_file():
        close = difflib.get_close_matches(name, preset_names(), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown preset {name!r}.{hint} Known: {', '.join(preset_names())}")
    return _resolve_extends(yaml.safe_load(resource.read_text(encoding="utf-8")) or {}, f"preset {name}")


def _resolve_extends(data: Any, what: str, depth: int = 0) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{what}: a config must be a mapping, got {type(data).__name__}")
    data = dict(data)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if depth > 8:
        raise ValueError(f"{what}: `extends` chain is too deep (a cycle?)")
    base = _resolve_extends(read_preset(str(parent)), f"preset {parent}", depth + 1)
    return deep_merge(base, data)


def load_config(
    preset: str | None = None, config_file: str | Path | None = None, overrides: Sequence[str] = ()
) -> TrainConfig:
    """Resolve preset -> file -> overrides into a validated TrainConfig."""
    data: dict[str, Any] = read_preset(preset) if preset else {}
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ValueError(f"config file {path} does not exist")
        data = deep_merge(
            data, _resolve_extends(yaml.safe_load(path.read_text(encoding="utf-8")) or {}, str(path))
        )
    data = apply_overrides(data, overrides)
    return TrainConfig.from_dict(data)
