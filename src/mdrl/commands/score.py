"""Score JSONL lines of {data_source, solution_str, ground_truth, extra_info?}; one JSON line out per
input line, in order, always (exit status 1 when a line could not be scored)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO, Optional

import typer

from mdrl.commands.options import spec_option
from mdrl.reward import compute_score
from mdrl.specs import RewardSpec, reward_overrides
from mdrl.verify.result import VerifierUnavailable

_MAX_MESSAGE = 300
_BOM = b"\xef\xbb\xbf"


class OnError(str, Enum):
    cont = "continue"
    stop = "stop"


class BadLine(ValueError):
    """A line that cannot be scored: not UTF-8, blank, not JSON, not a row, or bad data."""


def read_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(line number, raw bytes) of every line, blank ones included; a leading UTF-8 BOM is dropped."""
    for lineno, raw in enumerate(stream, start=1):
        if lineno == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        yield lineno, raw


def parse_row(raw: bytes) -> dict[str, Any]:
    """One JSONL line as a row, or `BadLine` saying why not (CRLF endings are fine)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadLine(f"not valid UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise BadLine("blank line")
    try:
        row = json.loads(text)
    except RecursionError:
        raise BadLine("JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and integers beyond Python's digit limit
        raise BadLine(f"not valid JSON: {exc}") from None
    if not isinstance(row, dict):
        raise BadLine("line is not a JSON object")
    missing = [k for k in ("data_source", "solution_str", "ground_truth") if k not in row]
    if missing:
        raise BadLine(f"missing field(s) {missing}")
    if not isinstance(row["data_source"], str):
        raise BadLine("data_source is not a string")
    return row


def score_line(raw: bytes, reward: RewardSpec | None) -> dict[str, Any]:
    """The result for one line; `BadLine` for input that cannot be scored."""
    row = parse_row(raw)
    try:
        return compute_score(row["data_source"], row["solution_str"], row["ground_truth"],
                             row.get("extra_info"), reward=reward)
    except VerifierUnavailable:
        raise  # the machine, not the row: every later line would fail the same way
    except RecursionError:
        raise BadLine("input nested too deeply") from None
    except (ValueError, KeyError, TypeError) as exc:  # DataError is a ValueError
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise BadLine(str(message)) from None


def bad_line_result(where: str, lineno: int, message: str) -> dict[str, Any]:
    message = message[:_MAX_MESSAGE]
    return {"score": 0.0, "acc": False, "reason": f"bad input: {message}",
            "error": f"{where}:{lineno}: {message}"}


def score(
    input: Optional[Path] = typer.Option(None, "--input", "-i", help="JSONL file; stdin when omitted."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="JSONL file; stdout when omitted."),
    reward: Optional[str] = spec_option(RewardSpec, "mode", "--reward", prefix="Default: each domain's own. ",
                                        show_default=False),
    format_weight: Optional[float] = spec_option(RewardSpec, "format_weight", show_default=False),
    format_reward: Optional[float] = typer.Option(None, "--format-reward", hidden=True,
                                                  help="Deprecated spelling of --format-weight."),
    on_error: OnError = typer.Option(
        OnError.cont, "--on-error",
        help="A line that cannot be scored (bad JSON, blank, unknown data_source, malformed ground "
             "truth): 'continue' writes a line with score 0, acc false and an `error` naming it, so "
             "output lines match input lines one to one; 'stop' ends the run there."),
) -> None:
    """Score JSONL lines of {data_source, solution_str, ground_truth, extra_info?}; one JSON line out
    per input line, in order. Exit status 1 when any line could not be scored."""
    try:
        overrides = reward_overrides(reward, format_weight, format_reward)
        config = RewardSpec(**overrides) if overrides else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    source = input.open("rb") if input else sys.stdin.buffer
    sink = output.open("w", encoding="utf-8") if output else sys.stdout
    where = str(input) if input else "<stdin>"
    n = correct = bad = 0
    total = 0.0
    try:
        for lineno, raw in read_lines(source):
            try:
                result = score_line(raw, config)
            except BadLine as exc:
                if on_error is OnError.stop:
                    raise typer.BadParameter(f"{where}:{lineno}: {str(exc)[:_MAX_MESSAGE]}") from None
                result = bad_line_result(where, lineno, str(exc))
                typer.echo(result["error"], err=True)
                bad += 1
            sink.write(json.dumps(result, ensure_ascii=False) + "\n")
            n += 1
            correct += bool(result["acc"])
            total += float(result["score"])
    finally:
        if input:
            source.close()
        if output:
            sink.close()
    summary = f"scored {n} rows: acc {correct}/{n}, mean score {total / max(n, 1):.4f}"
    typer.echo(summary + (f"; {bad} bad line(s)" if bad else ""), err=True)
    if bad:
        raise typer.Exit(1)
