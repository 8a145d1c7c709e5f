"""The cluster engine: veRL parquet + mdrl's reward module + a launch script with Hydra overrides.

`prepare_verl(config)` writes into the run directory:
    data/train.parquet (+ manifest.json)   the mixture in the study's veRL schema (mdrl.data export)
    data/val/test.parquet                  validation prompts (data.val_files)
    reward.json                            per-domain reward variants, read by mdrl.train.verl_reward
    launch.sh                              `python3 -m verl.trainer.main_ppo <overrides> "$@"`
`launch(prep)` runs launch.sh where veRL and its GPU stack are present; elsewhere `mdrl train` prints
the command. Override names follow veRL 0.9 (verl/trainer/config/ppo_trainer.yaml); veRL itself
resumes from `trainer.default_local_dir` (trainer.resume_mode=auto), dataloader position included.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mdrl.domains.registry import DOMAINS_ENV, all_domains
from mdrl.modelref import model_provider
from mdrl.pretrained import resolve_model
from mdrl.train.config import TrainConfig
from mdrl.train.plan import build_config_for
from mdrl.train.rewards import reward_configs
from mdrl.train.run import RunDir, prepare_run_dir
from mdrl.train.verl_check import check_launch, verl_installed

log = logging.getLogger(__name__)

# Found as a package on every Ray node where mdrl is installed (veRL's load_extern_object: pkg://).
REWARD_MODULE = "pkg://mdrl.train.verl_reward"
# launch.sh sets this to its own folder: the script names no absolute path of the machine that wrote it.
RUN_DIR = "${RUN_DIR}"


@dataclass(frozen=True)
class VerlLaunch:
    """Everything `prepare_verl` wrote, and the command it amounts to."""

    run_dir: Path
    train_file: Path
    val_file: Path
    reward_config: Path
    script: Path
    overrides: tuple[str, ...]

    @property
    def command(self) -> list[str]:
        return ["python3", "-m", "verl.trainer.main_ppo", *self.overrides]

    def command_line(self) -> str:
        return shlex.join(self.command)


def _bool(value: bool) -> str:
    return "True" if value else "False"


def hydra_overrides(
    config: TrainConfig,
    train_file: str,
    val_file: str,
    reward_config: Mapping[str, Mapping[str, Any]] | None,
    model_path: str,
    checkpoint_dir: str,
) -> list[str]:
    """veRL 0.9 Hydra overrides for this config (names from verl/trainer/config/ppo_trainer.yaml)."""
    grpo, verl, data = config.grpo, config.verl, config.data
    overrides = [
        "algorithm.adv_estimator=grpo",
        "algorithm.use_kl_in_reward=False",
        f"algorithm.norm_adv_by_std_in_grpo={_bool(grpo.scale_rewards == 'group')}",
        f"data.train_files={train_file}",
        f"data.val_files={val_file}",
        f"data.train_batch_size={grpo.train_batch_size}",
        f"data.max_prompt_length={grpo.max_prompt_length}",
        f"data.max_response_length={grpo.max_completion_length}",
        f"data.shuffle={_bool(data.shuffled)}",
        f"data.seed={data.seed}",
        f"data.filter_overlong_prompts={_bool(data.prompt_overflow == 'drop')}",
        f"actor_rollout_ref.model.path={model_path}",
        f"actor_rollout_ref.model.trust_remote_code={_bool(config.model.trust_remote_code)}",
        "actor_rollout_ref.model.use_remove_padding=True",
        (
            "actor_rollout_ref.model.enable_gradient_checkpointing="
            f"{_bool(True if grpo.gradient_checkpointing is None else grpo.gradient_checkpointing)}"
        ),
        f"actor_rollout_ref.actor.optim.lr={grpo.learning_rate:g}",
        f"actor_rollout_ref.actor.optim.lr_warmup_steps_ratio={grpo.warmup_ratio:g}",
        f"actor_rollout_ref.actor.optim.lr_scheduler_type={grpo.lr_scheduler}",
        f"actor_rollout_ref.actor.optim.weight_decay={grpo.weight_decay:g}",
        f"actor_rollout_ref.actor.grad_clip={grpo.max_grad_norm:g}",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={grpo.mini_batch}",
        f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={verl.ppo_micro_batch_size_per_gpu}",
        f"actor_rollout_ref.actor.use_kl_loss={_bool(grpo.beta > 0)}",
        f"actor_rollout_ref.actor.kl_loss_coef={grpo.beta:g}",
        "actor_rollout_ref.actor.kl_loss_type=low_var_kl",
        f"actor_rollout_ref.actor.entropy_coeff={grpo.entropy_coeff:g}",
        f"actor_rollout_ref.actor.clip_ratio={grpo.clip_ratio:g}",
        "actor_rollout_ref.actor.loss_agg_mode=token-mean",
        f"actor_rollout_ref.actor.fsdp_config.param_offload={_bool(verl.param_offload)}",
        f"actor_rollout_ref.actor.fsdp_config.optimizer_offload={_bool(verl.optimizer_offload)}",
        f"actor_rollout_ref.rollout.name={verl.rollout_name}",
        f"actor_rollout_ref.rollout.n={grpo.num_generations}",
        f"actor_rollout_ref.rollout.temperature={grpo.temperature:g}",
        f"actor_rollout_ref.rollout.top_p={grpo.top_p:g}",
        f"actor_rollout_ref.rollout.gpu_memory_utilization={verl.gpu_memory_utilization:g}",
        f"actor_rollout_ref.rollout.tensor_model_parallel_size={verl.tensor_model_parallel_size}",
        f"actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu={verl.log_prob_micro_batch_size_per_gpu}",
        f"actor_rollout_ref.rollout.max_num_batched_tokens={verl.max_num_batched_tokens}",
        f"actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu={verl.log_prob_micro_batch_size_per_gpu}",
        f"actor_rollout_ref.ref.fsdp_config.param_offload={_bool(verl.param_offload)}",
        f"reward.custom_reward_function.path={REWARD_MODULE}",
        "reward.custom_reward_function.name=compute_score",
        f"reward.reward_manager.name={verl.reward_manager}",
        f"trainer.n_gpus_per_node={verl.n_gpus_per_node}",
        f"trainer.nnodes={verl.nnodes}",
        f"trainer.total_epochs={grpo.epochs}",
        f"trainer.save_freq={verl.save_freq}",
        f"trainer.test_freq={verl.test_freq}",
        f"trainer.val_before_train={_bool(verl.val_before_train)}",
        "trainer.logger=[" + ",".join(verl.logger) + "]",
        f"trainer.project_name={verl.project_name}",
        f"trainer.experiment_name={config.name}",
        f"trainer.default_local_dir={checkpoint_dir}",
        "trainer.resume_mode=auto",
        "trainer.critic_warmup=0",
    ]
    if grpo.max_steps is not None:
        overrides.append(f"trainer.total_training_steps={grpo.max_steps}")
    if reward_config is not None:
        # reward_kwargs is not in veRL's schema: '+' adds it (veRL merges it into every call's kwargs).
        # Inline JSON as a quoted Hydra string: no file that every Ray node would have to see.
        inline = json.dumps(reward_config, separators=(",", ":"), sort_keys=True)
        overrides.append(f"+reward.custom_reward_function.reward_kwargs.reward_config='{inline}'")
    overrides += list(verl.extra_overrides)
    return overrides


def reward_variants(config: TrainConfig) -> dict[str, dict[str, Any]]:
    """{domain: {mode, format_weight}} for every domain, not only the trained ones: the validation files
    may hold others (cross-domain evaluation)."""
    configs = reward_configs(
        sorted(all_domains()), config.reward.mode, config.reward.format_weight, config.reward.domains
    )
    return {d: {"mode": c.mode, "format_weight": c.format_weight} for d, c in configs.items()}


def _plugin_lines() -> list[str]:
    """The domain modules of $MDRL_DOMAINS, exported for the reward workers on this node. Domains that
    a package declares by entry point are found wherever that package is installed (every node)."""
    modules = os.environ.get(DOMAINS_ENV)
    if not modules:
        return []
    return ["# Domains of your own (mdrl --domains); on other nodes install them as a package with an",
            "# entry point in the group mdrl.domains.",
            f"export {DOMAINS_ENV}={shlex.quote(modules)}"]


def _shell_word(item: str) -> str:
    """One launch.sh argument; RUN_DIR stays a live variable, everything else is literal."""
    if RUN_DIR not in item:
        return shlex.quote(item)
    literal = [re.sub(r'([\\"$`])', r"\\\1", part) for part in item.split(RUN_DIR)]
    return '"' + RUN_DIR.join(literal) + '"'


def _write_script(path: Path, config: TrainConfig, overrides: list[str]) -> None:
    lines = [
        "#!/usr/bin/env bash",
        f"# veRL GRPO launch written by `mdrl train` for run {config.name!r}.",
        "# Resolved settings: config.yaml beside this script. Extra Hydra overrides may follow on the",
        "# command line. Paths are relative to this script's folder, so the run folder can move.",
        "# Multi-node (trainer.nnodes > 1): start a Ray cluster first (`ray start --head` on node 0,",
        "# `ray start --address=<head>:6379` on the others) and run this script on the head node; the run",
        "# folder must be on a file system every node sees, and mdrl installed on every node.",
        "set -euo pipefail",
        'RUN_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
        'cd "$RUN_DIR"  # Hydra writes its outputs/ folder into the working directory: keep it in the run',
        *_plugin_lines(),
        "python3 -m verl.trainer.main_ppo \\",
        *[f"    {_shell_word(item)} \\" for item in overrides],
        '    "$@"',
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    path.chmod(0o755)


def export_data(config: TrainConfig, run: RunDir) -> tuple[Path, Path]:
    """Write the training mixture and the validation prompts as veRL parquet through the data layer."""
    from mdrl.data import build_dataset, write_build

    train = build_dataset(build_config_for(config.data, split="train"))
    train_paths = write_build(train, run.data)
    # Validation is never a curriculum; explicit val sources are taken whole, in their own proportions.
    data = replace(config.data, curriculum="none", shuffle=None)
    if data.val_sources:
        val_config = build_config_for(replace(data, mix=None, n=None), split="test", sources=data.val_sources)
    else:
        val_config = build_config_for(data, split="test", n=data.val_n, seed=data.seed + 1)
    val_paths = write_build(build_dataset(val_config), run.data / "val")
    return Path(train_paths["parquet"]), Path(val_paths["parquet"])


def prepare_verl(config: TrainConfig) -> VerlLaunch:
    """Write data, reward config and launch.sh for `config` into its run directory."""
    if config.engine != "verl":
        raise ValueError(f"prepare_verl got engine={config.engine!r}")
    fresh = not Path(config.output_dir).exists()
    run = prepare_run_dir(
        config, has_progress=any(RunDir(config.output_dir).checkpoints.glob("global_step_*"))
    )
    try:
        return _prepare(config, run)
    except BaseException:
        if fresh:  # a failed first preparation leaves no half-made run folder behind
            shutil.rmtree(run.root, ignore_errors=True)
        raise


def _prepare(config: TrainConfig, run: RunDir) -> VerlLaunch:
    model_path = resolve_model(config.model.path)  # a packaged model (smollm2): its converted folder
    if model_provider(model_path) is not None:  # a model built here (mdrl's tiny model)
        from mdrl.train.trl_engine import resolve_model_path

        model_path = resolve_model_path(config, run)
    train_file, val_file = export_data(config, run)
    variants = reward_variants(config)
    reward_path = run.root / "reward.json"  # a record for readers; launch.sh passes the same inline
    reward_path.write_text(json.dumps(variants, indent=2), encoding="utf-8")

    root = run.root.resolve()

    def in_run_dir(path: str | Path) -> str:
        path = Path(path).resolve()
        return f"{RUN_DIR}/{path.relative_to(root)}" if path.is_relative_to(root) else str(path)

    portable = hydra_overrides(
        config,
        in_run_dir(train_file),
        in_run_dir(val_file),
        variants,
        in_run_dir(model_path) if Path(model_path).exists() else model_path,
        in_run_dir(run.checkpoints),
    )
    overrides = [item.replace(RUN_DIR, str(root)) for item in portable]
    if verl_installed():  # veRL's own checks now, not after a cluster has started
        check_launch(overrides)
    script = run.root / "launch.sh"
    _write_script(script, config, portable)
    return VerlLaunch(
        run_dir=run.root,
        train_file=train_file,
        val_file=val_file,
        reward_config=reward_path,
        script=script,
        overrides=tuple(overrides),
    )


def verl_ready() -> tuple[bool, str]:
    """Whether launch.sh can run here: veRL with Hydra, Ray, a rollout engine and CUDA GPUs."""
    missing = [name for name in ("verl", "hydra", "ray") if importlib.util.find_spec(name) is None]
    if missing:
        return False, f"not installed: {', '.join(missing)}"
    if importlib.util.find_spec("vllm") is None and importlib.util.find_spec("sglang") is None:
        return False, "no rollout engine installed (vllm or sglang)"
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA GPU"
    return True, "ready"


def launch(prep: VerlLaunch) -> int:
    """Run launch.sh in the foreground; returns its exit status."""
    log.info("launching veRL: %s", prep.script)
    return subprocess.call(["bash", str(prep.script)], cwd=str(prep.run_dir))


def summary(prep: VerlLaunch) -> dict[str, Any]:
    return {
        "run_dir": str(prep.run_dir),
        "train_file": str(prep.train_file),
        "val_file": str(prep.val_file),
        "reward_config": str(prep.reward_config),
        "launch_script": str(prep.script),
    }
