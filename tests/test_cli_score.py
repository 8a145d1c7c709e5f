"""`mdrl score`: JSONL in, one JSON line out per input, in order, through a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mdrl.domains import all_domains


def _run(args, stdin):
    return subprocess.run([sys.executable, "-m", "mdrl", *args], input=stdin, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def countdown_rows():
    if "countdown" not in all_domains():
        pytest.skip("countdown domain not registered")
    gt = {"numbers": [30, 71, 88, 2], "target": 45}
    return [
        {"data_source": "countdown", "solution_str": "<answer>(88 - 71 + 30) - 2</answer>", "ground_truth": gt},
        {"data_source": "countdown", "solution_str": "<answer>88 - 71 + 30</answer>", "ground_truth": gt},
        {"data_source": "countdown", "solution_str": None, "ground_truth": json.dumps(gt)},
    ]


def test_score_cli_keeps_order_and_reports_reasons(countdown_rows):
    stdin = "".join(json.dumps(r) + "\n" for r in countdown_rows)
    proc = _run(["score"], stdin)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["acc"] for r in out] == [True, False, False]
    assert out[2]["reason"] == "response is not text"
    assert "scored 3 rows" in proc.stderr


def test_score_cli_names_the_bad_line(countdown_rows):
    stdin = json.dumps(countdown_rows[0]) + "\n" + json.dumps({"data_source": "nope", "solution_str": "",
                                                               "ground_truth": "1"}) + "\n"
    proc = _run(["score"], stdin)
    assert proc.returncode != 0
    assert "<stdin>:2" in proc.stderr and "unknown data_source" in proc.stderr
