"""Export Problems as the study's veRL parquet or as an HF `datasets.Dataset`, and read them back.

veRL parquet columns, as in the study: `data_source`, `prompt` (list of {content, role}), `ability`,
`reward_model` {ground_truth, style: "rule"}, `extra_info` {index, split, ...}.

Ground truth encoding. Parquet allows one type per column. Strings always stay strings. When every
non-string ground truth of a file has one shape (a single-domain countdown or KK file), they are kept
native, as parquet structs, exactly as the study stored them. Otherwise (a mixture of countdown and
KK, or strings mixed with objects) each non-string ground truth is written as a JSON string, and
`extra_info.ground_truth_is_json` marks those rows. `compute_score` accepts both forms (domains parse
ground truths with `mdrl.verify.parse_json_field`), and `read_verl_parquet` decodes them back to objects.

extra_info carries the whole Problem (domain, difficulty, lang, question, reference) next to the
Problem's own extra_info, so mdrl's files read back exactly whatever template rendered the prompt.
An own key that clashes with one of these is stored as `orig_<key>`. An own key whose values differ
in type across rows is stored as JSON text and listed in the file's `mdrl` metadata.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

from mdrl.domains.base import DataError, Problem
from mdrl.domains.registry import get_domain
from mdrl.data.rows import MDRL_MARKER, MDRL_ROW_VERSION, RENAMED_PREFIX, RESERVED_EXTRA, to_python
from mdrl.data.sources import load_verl_parquet, parquet_metadata
from mdrl.templates import Template

log = logging.getLogger(__name__)

GroundTruthFormat = Literal["auto", "native", "json"]
VERL_COLUMNS = ("data_source", "prompt", "ability", "reward_model", "extra_info")


def user_message(problem: Problem, lang: str | None = None) -> str:
    """The domain's rendered question (task text + answer-format instruction) in `lang`."""
    return get_domain(problem.domain).render_question(problem, lang or problem.lang)


def prompt_messages(
    problem: Problem, template: str | Template = "r1-base", lang: str | None = None
) -> list[dict[str, str]]:
    """The prompt as chat messages, in the study's {content, role} field order."""
    lang = lang or problem.lang
    chosen = template if isinstance(template, Template) else Template(template, lang)
    return [
        {"content": message["content"], "role": message["role"]}
        for message in chosen.messages(user_message(problem, lang))
    ]


def _has_empty_struct(arrow_type: Any) -> bool:
    import pyarrow as pa

    if pa.types.is_struct(arrow_type):
        return arrow_type.num_fields == 0 or any(_has_empty_struct(f.type) for f in arrow_type)
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return _has_empty_struct(arrow_type.value_type)
    return False


def _native_ok(values: list[Any]) -> bool:
    """True when parquet can hold `values` in one column and give back exactly the same values."""
    import pyarrow as pa

    plain = to_python(values)
    try:
        array = pa.array(plain)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError):
        return False
    return not _has_empty_struct(array.type) and array.to_pylist() == plain


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(to_python(value), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} cannot be stored as JSON: {exc}") from None


def encode_ground_truths(
    problems: Sequence[Problem], mode: GroundTruthFormat = "auto"
) -> tuple[list[Any], list[bool]]:
    """Ground truths as written to a file, and per row whether it was JSON-encoded (see module doc)."""
    if mode not in ("auto", "native", "json"):
        raise ValueError(f"ground_truth_format must be auto, native or json, got {mode!r}")
    values = [to_python(problem.ground_truth) for problem in problems]
    objects = [value for value in values if not isinstance(value, str)]
    if not objects or (mode != "json" and len(objects) == len(values) and _native_ok(objects)):
        return values, [False] * len(values)
    if mode == "native":
        raise DataError(
            "these ground truths cannot share one native parquet column (mixed shapes); "
            "use ground_truth_format='json' or 'auto'"
        )
    encoded = [
        value if isinstance(value, str) else _dumps(value, f"ground truth of {p.domain} item")
        for value, p in zip(values, problems)
    ]
    return encoded, [not isinstance(value, str) for value in values]


def _export_extra(problem: Problem, index: int, split: str, ground_truth_is_json: bool) -> dict[str, Any]:
    """extra_info of an exported row: the whole Problem, then its own extra_info (clashes as orig_<key>)."""
    extra: dict[str, Any] = {
        "index": index,
        "split": split,
        "domain": problem.domain,
        "difficulty": int(problem.difficulty),
        "lang": problem.lang,
        "question": problem.question,
        "reference": problem.reference,
        "ground_truth_is_json": ground_truth_is_json,
        MDRL_MARKER: MDRL_ROW_VERSION,
    }
    for key, value in to_python(dict(problem.extra_info)).items():
        extra[f"{RENAMED_PREFIX}{key}" if key in RESERVED_EXTRA else key] = value
    return extra


def _harmonise_extra(extras: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """JSON-encode the extra_info keys that cannot share one parquet type across rows."""
    keys: dict[str, None] = {}
    for extra in extras:
        keys.update(dict.fromkeys(extra))
    json_keys = [key for key in keys if not _native_ok([extra.get(key) for extra in extras])]
    if json_keys:
        log.info("storing extra_info keys %s as JSON text (their types differ across rows)", json_keys)
        extras = [
            {
                key: (
                    _dumps(value, f"extra_info[{key!r}]") if key in json_keys and value is not None else value
                )
                for key, value in extra.items()
            }
            for extra in extras
        ]
    return extras, json_keys


def verl_records(
    problems: Sequence[Problem],
    template: str = "r1-base",
    lang: str | None = None,
    split: str = "train",
    ground_truth_format: GroundTruthFormat = "auto",
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """veRL rows for `problems` plus the file metadata (json_extra_keys, ground truth encoding)."""
    ground_truths, is_json = encode_ground_truths(problems, ground_truth_format)
    extras = []
    for index, (problem, encoded) in enumerate(zip(problems, is_json)):
        extras.append(_export_extra(problem, index, split, encoded))
    extras, json_keys = _harmonise_extra(extras)
    rows = []
    for problem, ground_truth, extra in zip(problems, ground_truths, extras):
        rows.append(
            {
                "data_source": problem.data_source,
                "prompt": prompt_messages(problem, template, lang),
                "ability": get_domain(problem.domain).ability or get_domain(problem.domain).group,
                "reward_model": {"ground_truth": ground_truth, "style": "rule"},
                "extra_info": extra,
            }
        )
    encoding = "json" if all(is_json) and is_json else ("native" if not any(is_json) else "mixed")
    metadata = {
        "version": MDRL_ROW_VERSION,
        "template": template,
        "lang": lang,
        "split": split,
        "json_extra_keys": json_keys,
        "ground_truth_encoding": encoding,
    }
    return rows, metadata


def write_verl_parquet(
    problems: Sequence[Problem],
    path: str | Path,
    template: str = "r1-base",
    lang: str | None = None,
    split: str = "train",
    ground_truth_format: GroundTruthFormat = "auto",
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write the study's veRL parquet. `metadata` (e.g. {"curriculum": "difficulty"}) joins the file's
    `mdrl` key-value metadata, which `parquet_metadata(path)` reads back."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not problems:
        raise DataError("nothing to write: no problems")
    rows, file_metadata = verl_records(problems, template, lang, split, ground_truth_format)
    file_metadata.update(metadata or {})
    table = pa.Table.from_pylist(rows)
    table = table.replace_schema_metadata({b"mdrl": json.dumps(file_metadata).encode()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def read_verl_parquet(path: str | Path) -> list[Problem]:
    """A veRL parquet file (mdrl's or the study's) back into Problems, in file order."""
    return load_verl_parquet(path)


def is_curriculum_file(path: str | Path) -> bool:
    """True when mdrl wrote this parquet file in curriculum order (trainers must then not shuffle)."""
    return parquet_metadata(path).get("curriculum", "none") not in (None, "none", False)


def hf_records(
    problems: Sequence[Problem],
    template: str = "r1-base",
    lang: str | None = None,
    split: str = "train",
    prompt_format: Literal["auto", "messages", "text"] = "auto",
) -> list[dict[str, Any]]:
    """Rows for an HF Dataset: prompt, data_source, ground_truth, domain, difficulty, lang, extra_info.

    `prompt` is chat messages for the chat template and the rendered text for r1-base/plain
    (`prompt_format="auto"`), which is what TRL expects for instruct and base models. Ground truths that
    are not strings, and `extra_info`, are JSON strings so every column has one type.
    """
    if prompt_format not in ("auto", "messages", "text"):
        raise ValueError(f"prompt_format must be auto, messages or text, got {prompt_format!r}")
    ground_truths, is_json = encode_ground_truths(problems, "json")
    records = []
    for index, (problem, ground_truth, encoded) in enumerate(zip(problems, ground_truths, is_json)):
        row_lang = lang or problem.lang
        chosen = Template(template, row_lang)
        as_messages = prompt_format == "messages" or (prompt_format == "auto" and chosen.uses_chat_template)
        message = user_message(problem, row_lang)
        extra = _export_extra(problem, index, split, encoded)
        records.append(
            {
                "prompt": chosen.messages(message) if as_messages else chosen.render(message),
                "data_source": problem.data_source,
                "ground_truth": ground_truth,
                "domain": problem.domain,
                "difficulty": int(problem.difficulty),
                "lang": row_lang,
                "extra_info": _dumps(extra, "extra_info"),
            }
        )
    return records


def to_hf_dataset(
    problems: Sequence[Problem],
    template: str = "r1-base",
    lang: str | None = None,
    split: str = "train",
    prompt_format: Literal["auto", "messages", "text"] = "auto",
) -> Any:
    """An HF `datasets.Dataset` (see `hf_records`) for TRL; `load_source("hf:<saved dir>")` reads it back."""
    import datasets

    if not problems:
        raise DataError("nothing to export: no problems")
    return datasets.Dataset.from_list(hf_records(problems, template, lang, split, prompt_format))
