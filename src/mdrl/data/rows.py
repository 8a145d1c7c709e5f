"""One row of any tabular source -> one Problem.

Three row shapes are understood:
  * rows mdrl itself wrote (veRL parquet or HF Dataset export): extra_info carries the whole Problem,
    so they come back exactly, whatever template rendered the prompt;
  * the study's veRL rows (`data_source`, `prompt`, `reward_model.ground_truth`, ...): routed by
    data_source through the registry to `domain.load_row`, which knows its own study format;
  * simple rows `{data_source, question|prompt, ground_truth[, difficulty, lang, reference, extra_info]}`
    (jsonl, HF datasets after a column mapping): built directly, no prompt parsing.
Every error names the row as "file:row".
"""

from __future__ import annotations

import json
from typing import Any, Mapping


from mdrl.plain import plain
from mdrl.domains.base import DataError, Domain, Problem
from mdrl.domains.registry import domain_for_source

#: Marker key in extra_info of rows mdrl wrote; its value is the row-format version.
MDRL_MARKER = "mdrl_version"
MDRL_ROW_VERSION = 1
#: extra_info keys mdrl sets on export; a Problem's own extra_info keys with these names are kept
#: under `orig_<key>` so nothing is lost on the round trip.
RESERVED_EXTRA = (
    "index",
    "split",
    "domain",
    "difficulty",
    "lang",
    "question",
    "reference",
    "ground_truth_is_json",
    MDRL_MARKER,
)
RENAMED_PREFIX = "orig_"


def to_python(value: Any) -> Any:
    """Plain Python from parquet/pandas/datasets values (see mdrl.plain)."""
    return plain(value)


def _route(data_source: Any, where: str) -> Domain:
    if data_source is None or (isinstance(data_source, str) and not data_source.strip()):
        raise DataError(f"{where}: missing data_source")
    try:
        return domain_for_source(data_source)
    except KeyError as exc:
        raise DataError(f"{where}: {exc.args[0] if exc.args else exc}") from None


def _json_object(value: Any, what: str, where: str) -> Any:
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: {what} is not valid JSON: {exc}") from None
    return value


def _is_mdrl_row(row: Mapping[str, Any]) -> bool:
    extra = row.get("extra_info")
    return isinstance(extra, Mapping) and MDRL_MARKER in extra


def _is_verl_row(row: Mapping[str, Any]) -> bool:
    return "reward_model" in row and "prompt" in row


def restore_extra(extra: Mapping[str, Any]) -> dict[str, Any]:
    """A Problem's own extra_info from an exported extra_info: drop mdrl's keys, undo `orig_` renames.

    Keys whose value is None are dropped: parquet fills keys that only other rows have with nulls.
    """
    own: dict[str, Any] = {}
    for key, value in extra.items():
        if key in RESERVED_EXTRA or value is None:
            continue
        if key.startswith(RENAMED_PREFIX) and key[len(RENAMED_PREFIX) :] in RESERVED_EXTRA:
            key = key[len(RENAMED_PREFIX) :]
        own[key] = value
    return own


def _problem_from_mdrl_row(row: Mapping[str, Any], where: str, json_keys: tuple[str, ...]) -> Problem:
    extra = dict(row["extra_info"])
    for key in json_keys:
        if isinstance(extra.get(key), str):
            extra[key] = json.loads(extra[key])
    domain = _route(row.get("data_source"), where)
    if extra.get("domain") not in (None, domain.name):
        raise DataError(
            f"{where}: data_source {row.get('data_source')!r} routes to {domain.name!r} "
            f"but the row says domain {extra.get('domain')!r}"
        )
    ground_truth = _ground_truth(row, where)
    if extra.get("ground_truth_is_json") and isinstance(ground_truth, str):
        try:
            ground_truth = json.loads(ground_truth)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: ground_truth marked as JSON is not valid JSON: {exc}") from None
    question = extra.get("question")
    if not isinstance(question, str):
        raise DataError(f"{where}: mdrl row without a question in extra_info")
    return Problem(
        domain=domain.name,
        data_source=str(row["data_source"]),
        question=question,
        ground_truth=ground_truth,
        difficulty=int(extra.get("difficulty") or 0),
        lang=str(extra.get("lang") or "en"),
        reference=extra.get("reference"),
        extra_info=restore_extra(extra),
    )


def _ground_truth(row: Mapping[str, Any], where: str) -> Any:
    if "reward_model" in row:
        reward_model = row["reward_model"]
        if not isinstance(reward_model, Mapping):
            raise DataError(f"{where}: reward_model is not a mapping (got {type(reward_model).__name__})")
        value = reward_model.get("ground_truth")
    else:
        value = row.get("ground_truth")
    if value is None:
        raise DataError(f"{where}: missing ground_truth")
    return value


def _question_text(value: Any, where: str) -> str:
    """`question` as given, or the last user message of a chat-format prompt."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        users = [m.get("content") for m in value if isinstance(m, Mapping) and m.get("role") == "user"]
        if users and isinstance(users[-1], str):
            return users[-1]
    raise DataError(f"{where}: missing question (no 'question' text or user message in 'prompt')")


def _problem_from_simple_row(row: Mapping[str, Any], where: str) -> Problem:
    domain = _route(row.get("data_source"), where)
    question = _question_text(row.get("question", row.get("prompt")), where)
    ground_truth = _ground_truth(row, where)
    extra = row.get("extra_info") or {}
    if isinstance(extra, str):
        extra = _json_object(extra, "extra_info", where)
    if not isinstance(extra, Mapping):
        raise DataError(f"{where}: extra_info must be a mapping or a JSON object")
    try:
        difficulty = int(row.get("difficulty") or 0)
    except (TypeError, ValueError):
        raise DataError(f"{where}: difficulty must be an integer, got {row.get('difficulty')!r}") from None
    return Problem(
        domain=domain.name,
        data_source=str(row["data_source"]),
        question=question,
        ground_truth=ground_truth,
        difficulty=difficulty,
        lang=str(row.get("lang") or "en"),
        reference=row.get("reference"),
        extra_info=dict(extra),
    )


def problem_from_row(row: Mapping[str, Any], where: str, json_extra_keys: tuple[str, ...] = ()) -> Problem:
    """Turn one row (any of the three shapes in the module doc) into a Problem; DataError names `where`.

    `json_extra_keys`: extra_info keys an mdrl export stored as JSON strings (from the file's metadata).
    """
    row = to_python(row)
    if not isinstance(row, Mapping):
        raise DataError(f"{where}: a row must be a mapping, got {type(row).__name__}")
    if isinstance(row.get("extra_info"), str) and row["extra_info"].strip().startswith("{"):
        row = {**row, "extra_info": _json_object(row["extra_info"], "extra_info", where)}
    if _is_mdrl_row(row):
        return _problem_from_mdrl_row(row, where, json_extra_keys)
    if not _is_verl_row(row):
        return _problem_from_simple_row(row, where)
    domain = _route(row.get("data_source"), where)
    _ground_truth(row, where)  # a generic check, so every domain reports a missing answer the same way
    if domain.load_row is None:
        raise DataError(f"{where}: domain {domain.name!r} has no loader for study rows")
    try:
        problem = domain.load_row(row, where)
    except DataError as exc:
        message = str(exc)
        raise DataError(message if where in message else f"{where}: {message}") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        # A domain loader tripping on a row is a malformed row, reported where it is.
        raise DataError(f"{where}: malformed {domain.name} row: {type(exc).__name__}: {exc}") from None
    if not isinstance(problem, Problem):
        raise DataError(f"{where}: {domain.name}.load_row returned {type(problem).__name__}, not a Problem")
    return problem
