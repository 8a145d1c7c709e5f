"""SIGKILL `mdrl eval run` mid-suite, run the same command again: it finishes without recomputing the
items that were already written; a changed temperature reuses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

N_ITEMS = 40
SUITE = f"gen:countdown:3:{N_ITEMS}"


def _mdrl(*args: str) -> list[str]:
    return [sys.executable, "-c", "from mdrl.cli import app; app()", *args]


def _whole_lines(cache_dir: Path) -> int:
    files = [f for f in cache_dir.glob("*.jsonl")] if cache_dir.is_dir() else []
    return sum(f.read_bytes().count(b"\n") for f in files)


@pytest.mark.slow
def test_sigkill_then_resume(tmp_path):
    from mdrl.tiny import TinyModelConfig, build_tiny

    model = build_tiny(
        tmp_path / "tiny",
        TinyModelConfig(hidden_size=64, num_hidden_layers=2, intermediate_size=128),
        corpus=["Using the numbers [1, 2, 3], create an equation that equals 6."] * 4,
    )
    out = tmp_path / "out"
    command = _mdrl(
        "eval",
        "run",
        "-m",
        str(model),
        "-s",
        SUITE,
        "--template",
        "plain",
        "--max-new-tokens",
        "24",
        "--batch-size",
        "2",
        "-o",
        str(out),
        "--no-progress",
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    victim = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while _whole_lines(out / "cache") < 6:  # at least 3 batches of 2 written
        assert victim.poll() is None, victim.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "no progress within 300 s"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    written = _whole_lines(out / "cache")
    assert 6 <= written < N_ITEMS, "killed mid-suite"

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    run = json.loads((out / "summary.json").read_text())["runs"][0]
    print(f"killed after {written} items; resume reused {run['cached_items']}, "
          f"generated {run['generated_items']}")
    assert run["cached_items"] == written
    assert run["generated_items"] == N_ITEMS - written
    assert run["n_items"] == N_ITEMS
    assert f"reused {written} cached items, generated {N_ITEMS - written}" in resumed.stderr
    assert _whole_lines(out / "cache") == N_ITEMS  # nothing recomputed, nothing duplicated
    samples = [json.loads(line) for line in (Path(run["samples_file"])).read_text().splitlines()]
    assert len(samples) == N_ITEMS and len({s["item_id"] for s in samples}) == N_ITEMS

    again = subprocess.run(command + ["--limit", "4"], env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "reused 4 cached items, generated 0" in again.stderr

    hotter = subprocess.run(
        command + ["--limit", "4", "--temperature", "0.5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert hotter.returncode == 0, hotter.stderr[-2000:]
    assert "reused 0 cached items, generated 4" in hotter.stderr
