"""`run.nproc > 1`: one GRPO run in N ranks on this machine, started with torchrun.

This process prepares the run once (resume point, tidied logs, the model, the data plan; see
`prepare_trl`), writes a hand-off file, and starts `torchrun --nproc_per_node N -m mdrl.train.ranks
<hand-off>`. Each rank trains through TRL and accelerate, which pick gloo on CPU and nccl on GPUs;
TRL's sampler gives each rank its own share of every rollout batch. Rank 0 writes metrics.jsonl, the
summary and checkpoints; each rank logs the rows it scored to consumed.rank<r>.jsonl. Rank 0's summary
comes back through the hand-off folder. The ranks die with this process (Linux parent-death signal),
so a killed run leaves no orphans and resumes when the command is repeated.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from mdrl.train.config import TrainConfig, load_config
from mdrl.train.run import RunDir
from mdrl.train.trl_engine import PreparedRun, fit_trl, prepare_trl, rank, train_trl, world_size

log = logging.getLogger(__name__)

HANDOFF = "ranks"  # folder in the run directory


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (torchrun's agent, or `mdrl train`)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def train_local(config: TrainConfig) -> dict[str, Any]:
    """TRL on this machine: in this process, or in run.nproc ranks (unless this already is one)."""
    if config.run.nproc > 1 and world_size() == 1:
        return train_in_ranks(config)
    return train_trl(config)


def train_in_ranks(config: TrainConfig) -> dict[str, Any]:
    prepared = prepare_trl(config)
    folder = prepared.run.root / HANDOFF
    folder.mkdir(exist_ok=True)
    summary_path = folder / "summary.json"
    summary_path.unlink(missing_ok=True)
    (folder / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
    handoff = {
        "config": str(folder / "config.yaml"),
        "run_dir": str(prepared.run.root),
        "step": prepared.step,
        "checkpoint": str(prepared.checkpoint) if prepared.checkpoint else None,
        "model_path": prepared.model_path,
        "summary": str(summary_path),
    }
    (folder / "handoff.json").write_text(json.dumps(handoff, indent=2), encoding="utf-8")
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={config.run.nproc}",
               "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
               "-m", "mdrl.train.ranks", str(folder / "handoff.json")]
    log.info("starting %d ranks: %s", config.run.nproc, " ".join(command))
    # Each rank gets an equal share of this machine's cores unless the caller chose.
    env = {**os.environ}
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // config.run.nproc)))
    code = subprocess.call(command, env=env, preexec_fn=_die_with_parent)
    if code != 0 or not summary_path.is_file():
        raise RuntimeError(f"the {config.run.nproc} training ranks failed (exit status {code}); their output "
                           f"is above, and the run resumes from its last checkpoint when re-run")
    return json.loads(summary_path.read_text(encoding="utf-8"))


def _load_indexed_cpu_locations() -> None:
    """On CPU ranks transformers resumes the optimizer with map_location=args.device, which accelerate
    gives as 'cpu:<rank>'; torch.load knows no such location and the resume fails. Storages tagged
    'cpu:<n>' are CPU storages: load them as they are. Saving is unaffected (the tagger claims nothing)."""
    import torch

    def restore(storage: Any, location: str) -> Any:
        return storage if location.startswith("cpu:") else None

    torch.serialization.register_package(5, lambda _storage: None, restore)


def main(handoff_path: str) -> int:
    _die_with_parent()
    _load_indexed_cpu_locations()
    handoff = json.loads(Path(handoff_path).read_text(encoding="utf-8"))
    config = load_config(None, Path(handoff["config"]))
    config = replace(config, run=replace(config.run, nproc=1))  # this process is one rank, not a launcher
    checkpoint = Path(handoff["checkpoint"]) if handoff["checkpoint"] else None
    prepared = PreparedRun(RunDir(Path(handoff["run_dir"])), handoff["step"], checkpoint, handoff["model_path"])
    summary = fit_trl(config, prepared)
    if rank() == 0:
        Path(handoff["summary"]).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO if os.environ.get("RANK", "0") == "0" else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main(sys.argv[1]))
