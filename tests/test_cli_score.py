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
    assert proc.returncode == 1
    assert "<stdin>:2" in proc.stderr and "unknown data_source" in proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["acc"] for r in out] == [True, False]
    assert out[1]["error"].startswith("<stdin>:2: unknown data_source 'nope'")


def _good(rows) -> bytes:
    return (json.dumps(rows[0]) + "\n").encode()


BAD_LINES = {
    # name: (bytes of the bad part, reason fragment)
    "blank lines": (b"\n   \n", "blank line"),
    "invalid UTF-8": (b'{"data_source": "countdown", "solution_str": "\xff", "ground_truth": 1}\n', "not valid UTF-8"),
    "nested 100,000 deep": (b"[" * 100_000 + b"]" * 100_000 + b"\n", "nested too deeply"),
    "solution nested 100,000 deep": (b'{"data_source": "countdown", "ground_truth": 1, "solution_str": '
                                     + b"[" * 100_000 + b"]" * 100_000 + b"}\n", "nested too deeply"),
    "5000-digit integer": (b'{"data_source": "countdown", "solution_str": "1", "ground_truth": ' + b"9" * 5000
                           + b"}\n", "not valid JSON"),
    "not an object": (b"[1, 2]\n", "not a JSON object"),
    "unknown data_source": (b'{"data_source": "nope", "solution_str": "", "ground_truth": 1}\n', "unknown data_source"),
    "malformed ground truth": (b'{"data_source": "countdown", "solution_str": "x", "ground_truth": "{bad"}\n',
                               "ground_truth is not valid JSON"),
    "unknown code format": (b'{"data_source": "mbpp", "solution_str": "x", "ground_truth": {"tests": []}}\n',
                            'known: {"functional"'),
}


@pytest.mark.parametrize("name", list(BAD_LINES))
def test_every_input_line_gets_an_output_line(countdown_rows, name):
    bad, fragment = BAD_LINES[name]
    stdin = _good(countdown_rows) + bad + _good(countdown_rows)
    proc = subprocess.run([sys.executable, "-m", "mdrl", "score"], input=stdin, capture_output=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    out = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(out) == stdin.count(b"\n")
    assert out[0]["acc"] and out[-1]["acc"]
    for row in out[1:-1]:
        assert row["score"] == 0.0 and not row["acc"] and row["error"].startswith("<stdin>:")
        assert fragment in row["reason"] and len(row["reason"]) <= 320
    assert "Traceback" not in proc.stderr.decode()
    assert f"{len(out) - 2} bad line(s)" in proc.stderr.decode()


def test_bom_and_crlf_are_accepted(countdown_rows):
    stdin = b"\xef\xbb\xbf" + _good(countdown_rows).replace(b"\n", b"\r\n") * 2
    proc = subprocess.run([sys.executable, "-m", "mdrl", "score"], input=stdin, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["acc"] for line in proc.stdout.decode().splitlines()] == [True, True]


def test_on_error_stop_ends_at_the_bad_line(countdown_rows):
    stdin = _good(countdown_rows) + b"not json\n" + _good(countdown_rows)
    proc = subprocess.run([sys.executable, "-m", "mdrl", "score", "--on-error", "stop"], input=stdin,
                          capture_output=True, timeout=120)
    assert proc.returncode == 2
    assert len(proc.stdout.decode().splitlines()) == 1
    assert "<stdin>:2" in proc.stderr.decode() and "not valid JSON" in proc.stderr.decode()
