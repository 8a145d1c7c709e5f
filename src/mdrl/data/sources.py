"""Where problems come from: the study's parquet files, jsonl, HF datasets, MBPP/HumanEval, generators.

A source is described by a frozen `SourceSpec` (in Python, YAML, or a one-line string on the CLI,
see `SourceSpec.parse`) and turned into a list of Problems by `load_source`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence
from urllib.parse import parse_qsl

from tqdm import tqdm

from mdrl.domains.base import DataError, Problem
from mdrl.domains.registry import all_domains, families, get_domain, is_domain
from mdrl.data.mixture import largest_remainder
from mdrl.data.rows import problem_from_row

log = logging.getLogger(__name__)

#: Kinds every build knows; each domain's readers (`mbpp`, `humaneval`) add theirs (`source_kinds()`).
BASE_KINDS = ("paper", "parquet", "jsonl", "hf", "generate")
#: The one grammar of generated items, for data sources and eval suites alike (`parse_generated`).
GEN_PREFIX = "gen"
#: Fields a column mapping may fill (for `hf` and `jsonl` sources); the value names the source column.
MAPPABLE_FIELDS = ("question", "ground_truth", "data_source", "difficulty", "lang", "reference", "extra_info")


def source_kinds() -> tuple[str, ...]:
    return BASE_KINDS + tuple(reader.name for domain in all_domains().values() for reader in domain.readers)


def _reader(kind: str) -> Any:
    for domain in all_domains().values():
        for reader in domain.readers:
            if reader.name == kind:
                return reader
    return None


def paper_dataset(name: str) -> tuple[str, str | None]:
    """A study dataset name -> (its folder under paper/, the domain whose rows it holds). The name is a
    folder a domain declares as released (`deepscaler`, `kk`), or a domain (its first released folder)."""
    for domain in all_domains().values():
        if name in domain.released:
            return name, domain.name
    if is_domain(name) and get_domain(name).released:
        domain = get_domain(name)
        return domain.released[0], domain.name
    return name, None


def source_domain(source: "SourceSpec") -> str | None:
    """The one domain a source holds when that is known without reading it (a generator, a study
    folder), else None."""
    if source.kind == "generate":
        return source.domain
    if source.kind == "paper" and source.path:
        return paper_dataset(source.path.partition("/")[0])[1]
    return None


@dataclass(frozen=True)
class GeneratedSpec:
    """`gen:DOMAIN[:LEVELS[:N[:SEED]]][?n=N&seed=S&lang=L]`, parsed in one place for sources and suites.
    DOMAIN may be a family member (`gen:rg:gcd:1-2`)."""

    domain: str
    levels: tuple[int, ...] = ()
    n: int | None = None
    seed: int | None = None
    options: tuple[tuple[str, str], ...] = ()


def parse_generated(text: str) -> GeneratedSpec:
    """Read the generated-items grammar (see GeneratedSpec). `generate:` is the old spelling of `gen:`
    (a deprecation warning); a bare `DOMAIN[:LEVELS]` is the short form sources accept."""
    head, _, query = text.strip().partition("?")
    parts = head.split(":")
    if parts[0] == "generate":
        log.warning("the source spelling %r is deprecated: write %r", text, GEN_PREFIX + text[len("generate"):])
        parts[0] = GEN_PREFIX
    if parts[0] == GEN_PREFIX:
        parts = parts[1:]
    if len(parts) >= 2 and parts[0] in families():
        parts = [f"{parts[0]}:{parts[1]}", *parts[2:]]
    if not parts or not parts[0] or len(parts) > 4:
        raise ValueError(f"cannot read generated spec {text!r}: use gen:DOMAIN[:LEVELS[:N[:SEED]]][?n=N&seed=S], "
                         "e.g. gen:countdown:3-4?n=500&seed=1")
    try:
        n = int(parts[2]) if len(parts) > 2 else None
        seed = int(parts[3]) if len(parts) > 3 else None
    except ValueError:
        raise ValueError(f"generated spec {text!r}: N and SEED are integers") from None
    options = tuple(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    return GeneratedSpec(parts[0], parse_levels(parts[1] if len(parts) > 1 and parts[1] else None), n, seed,
                         options)


def is_generated(text: str) -> bool:
    return text.strip().split(":", 1)[0] in (GEN_PREFIX, "generate")


def parse_levels(text: str | int | Sequence[int] | None) -> tuple[int, ...]:
    """Difficulty levels from "3-4", "3,5,7", "3-5,7", 4 or [3, 4] -> a sorted tuple of ints."""
    if text is None or text == "":
        return ()
    if isinstance(text, int):
        return (text,)
    if not isinstance(text, str):
        return tuple(sorted({int(level) for level in text}))
    levels: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        low, sep, high = part.partition("-")
        try:
            if sep:
                start, stop = int(low), int(high)
                if stop < start:
                    raise ValueError
                levels.update(range(start, stop + 1))
            else:
                levels.add(int(part))
        except ValueError:
            raise ValueError(f"bad difficulty {part!r} in {text!r}: use e.g. 3, 3-5 or 3,5,7") from None
    return tuple(sorted(levels))


@dataclass(frozen=True)
class SourceSpec:
    """One source of problems. Build it in Python, from YAML (a mapping) or a string (`SourceSpec.parse`)."""

    kind: str = field(metadata={
        "help": "paper | parquet | jsonl | hf | generate, or the name of a domain's reader (source_kinds())."})
    path: str | None = field(
        default=None,
        metadata={
            "help": "paper: a released dataset a domain declares (or the domain's name), 'name/split' or a "
            "file; parquet/jsonl: a file; hf: a local dataset path (save_to_disk folder, data files) "
            "or a hub name; a reader: its file (default: the reader's own copy). Unused for generate."
        },
    )
    domain: str | None = field(
        default=None,
        metadata={
            "help": "generate: the domain to generate. Loaders: the data_source for rows that carry none."
        },
    )
    difficulties: tuple[int, ...] = field(
        default=(),
        metadata={
            "help": "generate: levels to spread the n items over (default: all of the domain's levels). "
            "Loaders: keep only items at these levels (default: all)."
        },
    )
    n: int | None = field(
        default=None,
        metadata={
            "help": "generate: how many items. Loaders: keep at most the first n rows (after filtering)."
        },
    )
    seed: int | None = field(
        default=None,
        metadata={
            "help": "generate: the seed (items depend on seed+index only); default: the build's seed, else 0."
        },
    )
    lang: str | None = field(
        default=None,
        metadata={
            "help": "generate: the language of the generated text; default: the build's language, else en."
        },
    )
    split: str = field(default="train", metadata={"help": "paper/hf: which split to read."})
    columns: tuple[tuple[str, str], ...] = field(
        default=(),
        metadata={
            "help": "hf/jsonl: (field, column) pairs mapping source columns onto question, ground_truth, "
            "data_source, difficulty, lang, reference, extra_info."
        },
    )
    on_error: str = field(
        default="raise",
        metadata={
            "help": "raise: a malformed row stops the load (DataError naming file:row); skip: it is left "
            "out, logged, and listed for the manifest (the study's DeepScaleR train has 2 empty answers)."
        },
    )

    def __post_init__(self) -> None:
        if self.kind not in source_kinds():
            raise ValueError(f"unknown source kind {self.kind!r}; known: {', '.join(source_kinds())}")
        if self.kind in ("parquet", "jsonl", "hf") and not self.path:
            raise ValueError(f"a {self.kind} source needs a path")
        if self.kind == "paper" and not self.path:
            raise ValueError("a paper source needs a dataset name, e.g. paper:countdown")
        if self.kind == "generate" and not self.domain:
            raise ValueError("a generate source needs a domain, e.g. gen:countdown:3-4")
        if self.n is not None and self.n < 0:
            raise ValueError(f"n must be >= 0, got {self.n}")
        if self.on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {self.on_error!r}")
        bad = [name for name, _ in self.columns if name not in MAPPABLE_FIELDS]
        if bad:
            raise ValueError(f"unknown mapped field(s) {bad}; known: {', '.join(MAPPABLE_FIELDS)}")

    @property
    def is_generator(self) -> bool:
        return self.kind == "generate"

    def describe(self) -> str:
        """The spec as one string that `SourceSpec.parse` reads back (used in manifests and logs)."""
        if self.kind == "generate":
            head = f"{GEN_PREFIX}:{self.domain}"
            if self.difficulties:
                head += ":" + ",".join(map(str, self.difficulties))
        elif self.kind in source_kinds()[len(BASE_KINDS):] and not self.path:
            head = self.kind
        else:
            head = f"{self.kind}:{self.path}"
        defaults = SourceSpec(kind="generate", domain="x")
        options = []
        for name in ("n", "seed", "lang", "split", "on_error"):
            if getattr(self, name) != getattr(defaults, name):
                options.append(f"{name}={getattr(self, name)}")
        if self.domain and self.kind != "generate":
            options.append(f"domain={self.domain}")
        if self.difficulties and self.kind != "generate":
            options.append("difficulty=" + ",".join(map(str, self.difficulties)))
        options += [f"col.{name}={column}" for name, column in self.columns]
        return head + ("?" + "&".join(options) if options else "")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["difficulties"] = list(self.difficulties)
        data["columns"] = dict(self.columns)
        return data

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "SourceSpec":
        """From a YAML/JSON mapping; `difficulties` may be "3-4" and `columns` a mapping."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known - {"difficulty"})
        if unknown:
            raise ValueError(f"unknown source field(s) {unknown}; known: {', '.join(sorted(known))}")
        values = {key: value for key, value in data.items() if key in known}
        levels = data.get("difficulties", data.get("difficulty"))
        values["difficulties"] = parse_levels(levels)
        columns = data.get("columns") or {}
        values["columns"] = (
            tuple(columns.items()) if isinstance(columns, Mapping) else tuple(map(tuple, columns))
        )
        return cls(**values)

    @classmethod
    def parse(cls, text: str) -> "SourceSpec":
        """Read a one-line spec: `KIND:TARGET[?key=value&...]`.

        Examples: `paper:countdown` (train split), `paper:kk/test`, `parquet:/data/x.parquet`,
        `jsonl:rows.jsonl?domain=countdown`,
        `hf:./saved?split=test&col.question=problem&col.ground_truth=answer&data_source=math500`,
        `mbpp`, `humaneval`, `gen:countdown:3-4?n=500&seed=1`, or just `countdown:3-4` / `countdown`.
        Options: n, seed, lang, split, on_error (raise|skip), domain, data_source (alias of domain),
        difficulty, col.<field>.
        """
        head, _, query = text.strip().partition("?")
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
        kind, _, rest = head.partition(":")
        values: dict[str, Any] = {}
        kinds = source_kinds()
        if is_generated(head) or (kind not in kinds and (kind in families() or is_domain(kind))):
            generated = parse_generated(head)
            values.update(kind="generate", domain=generated.domain, difficulties=generated.levels)
            values.update({key: value for key, value in (("n", generated.n), ("seed", generated.seed))
                           if value is not None})
        elif kind in kinds:
            values.update(kind=kind, path=rest or None)
        else:
            raise ValueError(
                f"cannot read source {text!r}: start with one of {', '.join(kinds)}, gen: "
                f"or a domain name ({', '.join(sorted(all_domains()))})"
            )
        columns = []
        for key, value in options.items():
            if key.startswith("col."):
                columns.append((key[4:], value))
            elif key in ("n", "seed"):
                values[key] = int(value)
            elif key in ("lang", "split", "on_error"):
                values[key] = value
            elif key in ("domain", "data_source"):
                values["domain"] = value
            elif key == "difficulty":
                values["difficulties"] = parse_levels(value)
            else:
                raise ValueError(f"unknown option {key!r} in source {text!r}")
        values["columns"] = tuple(columns)
        return cls(**values)


def paper_root() -> Path:
    """The study's data folder: $MDRL_SHARED_DATA/paper, else ./shared/data/paper, else next to the repo."""
    env = os.environ.get("MDRL_SHARED_DATA")
    candidates = [Path(env) / "paper"] if env else []
    candidates += [
        Path.cwd() / "shared" / "data" / "paper",
        Path(__file__).resolve().parents[3].parent / "shared" / "data" / "paper",
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise DataError(
        f"the study's data folder was not found (tried {', '.join(map(str, candidates))}); "
        "set MDRL_SHARED_DATA to the folder that holds paper/"
    )


def paper_file(name: str, split: str = "train") -> Path:
    """`countdown` -> <paper>/countdown/train.parquet; `kk/test` or a path to a file also work."""
    if name.endswith(".parquet"):
        return Path(name)
    dataset, _, split_part = name.partition("/")
    folder = paper_root() / paper_dataset(dataset)[0]
    path = folder / f"{split_part or split}.parquet"
    if not path.is_file():
        available = sorted(p.relative_to(folder.parent).as_posix() for p in folder.parent.glob("*/*.parquet"))
        raise DataError(f"no study file {path}; available: {', '.join(available)}. The study's released "
                        "data (arXiv 2507.17512) goes under $MDRL_SHARED_DATA/paper/<dataset>/<split>.parquet; "
                        "or leave this source out (a --mix without its domain does not read it)")
    return path


def iter_parquet_rows(path: str | Path, batch_size: int = 1024) -> Iterator[dict[str, Any]]:
    """Rows of a parquet file as plain Python dicts, streamed in batches."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as handle:
        for batch in handle.iter_batches(batch_size=batch_size):
            yield from batch.to_pylist()


def parquet_metadata(path: str | Path) -> dict[str, Any]:
    """The `mdrl` key-value metadata of a parquet file mdrl wrote (empty for other files)."""
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(b"mdrl")
    return json.loads(raw) if raw else {}


def _num_rows(path: Path) -> int | None:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (OSError, ValueError):
        return None


def _keep(problem: Problem, spec: SourceSpec) -> bool:
    return not spec.difficulties or problem.difficulty in spec.difficulties


def _collect(
    rows: Iterable[tuple[Mapping[str, Any] | DataError, str]],
    spec: SourceSpec,
    total: int | None,
    desc: str,
    json_keys: tuple[str, ...] = (),
    skipped: list[str] | None = None,
) -> list[Problem]:
    """Problems from (row, "file:row") pairs; a reader passes a DataError for a row it could not parse."""
    problems: list[Problem] = []
    bad: list[str] = []
    for row, where in tqdm(rows, total=total, desc=desc, unit="row", disable=None, leave=False):
        try:
            if isinstance(row, DataError):
                raise row
            problem = problem_from_row(_apply_columns(row, spec, where), where, json_keys)
        except DataError as exc:
            if spec.on_error == "raise":
                raise
            bad.append(str(exc))
            continue
        if _keep(problem, spec):
            problems.append(problem)
            if spec.n is not None and len(problems) >= spec.n:
                break
    if bad:
        log.warning("%s: skipped %d malformed row(s), e.g. %s", desc, len(bad), bad[0])
        if skipped is not None:
            skipped.extend(bad)
    return problems


def _apply_columns(row: Mapping[str, Any], spec: SourceSpec, where: str) -> Mapping[str, Any]:
    if not spec.columns and not (spec.domain and "data_source" not in row):
        return row
    row = dict(row)
    for name, column in spec.columns:
        if column not in row:
            raise DataError(
                f"{where}: mapped column {column!r} (for {name}) not in row; "
                f"columns: {', '.join(map(str, row))}"
            )
        row[name] = row[column]
    if spec.domain and row.get("data_source") is None:
        row["data_source"] = spec.domain
    return row


def load_verl_parquet(
    path: str | Path, spec: SourceSpec | None = None, skipped: list[str] | None = None
) -> list[Problem]:
    """All rows of a veRL parquet file (the study's, or one mdrl wrote) as Problems, in file order."""
    path = Path(path)
    spec = spec or SourceSpec(kind="parquet", path=str(path))
    json_keys = tuple(parquet_metadata(path).get("json_extra_keys", ()))
    rows = ((row, f"{path}:{index}") for index, row in enumerate(iter_parquet_rows(path)))
    return _collect(rows, spec, _num_rows(path), desc=path.name, json_keys=json_keys, skipped=skipped)


def load_jsonl(
    path: str | Path, spec: SourceSpec | None = None, skipped: list[str] | None = None
) -> list[Problem]:
    """Rows of a jsonl file, veRL-shaped or `{data_source, question|prompt, ground_truth}`."""
    path = Path(path)
    spec = spec or SourceSpec(kind="jsonl", path=str(path))

    def rows() -> Iterator[tuple[Mapping[str, Any], str]]:
        with path.open(encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    row = DataError(f"{where}: not valid JSON: {exc}")
                if not isinstance(row, (dict, DataError)):
                    row = DataError(f"{where}: a line must hold a JSON object")
                yield row, where

    return _collect(rows(), spec, None, desc=path.name, skipped=skipped)


def _open_hf(spec: SourceSpec) -> Any:
    import datasets

    path = Path(spec.path or "")
    if path.is_dir() and (
        (path / "dataset_info.json").is_file()
        or (path / "dataset_dict.json").is_file()
        or (path / "state.json").is_file()
    ):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if spec.split not in loaded:
                raise DataError(f"{path}: no split {spec.split!r}; splits: {', '.join(loaded)}")
            loaded = loaded[spec.split]
        return loaded
    if path.is_file():
        builder = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}.get(path.suffix)
        if builder is None:
            raise DataError(f"{path}: unsupported data file type {path.suffix!r}")
        return datasets.load_dataset(builder, data_files=str(path), split="train")
    try:
        return datasets.load_dataset(spec.path, split=spec.split)
    except (OSError, ValueError) as exc:  # not found, offline (ConnectionError), bad split
        raise DataError(f"cannot load HF dataset {spec.path!r} split {spec.split!r}: {exc}") from None


def load_hf(spec: SourceSpec, skipped: list[str] | None = None) -> list[Problem]:
    """Any HF `datasets` source (a local save_to_disk folder, a data file, or a hub name) via `columns`."""
    dataset = _open_hf(spec)
    name = f"{spec.path}[{spec.split}]"
    rows = ((row, f"{name}:{index}") for index, row in enumerate(dataset))
    return _collect(rows, spec, len(dataset), desc=Path(spec.path or "hf").name, skipped=skipped)


#: One in HELDOUT_EVERY generated questions is reserved for evaluation: generated training data never holds
#: them and generated suites (`gen:` in mdrl.eval) hold nothing else, so a model trained on generated data is
#: evaluated on questions it never saw, whatever the seeds (small item spaces, like code level 1, repeat
#: questions across seeds and would otherwise leak).
HELDOUT_EVERY = 10
SPLITS = ("train", "eval", "all")


def is_heldout(problem: Problem) -> bool:
    """Whether a generated problem's question belongs to the evaluation split (a hash of domain + question)."""
    digest = hashlib.sha256(f"{problem.domain}\n{problem.question}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % HELDOUT_EVERY == 0


def generate(
    domain_name: str,
    n: int,
    seed: int = 0,
    difficulties: Sequence[int] = (),
    lang: str = "en",
    split: str = "train",
) -> list[Problem]:
    """n generated items spread evenly over `difficulties` (default: all of the domain's levels).

    Items are `domain.generate(i, seed, level, lang)` for i = 0, 1, ..., keeping those of `split`: train
    (questions outside the held-out share, see `is_heldout`), eval (only held-out questions) or all.
    """
    domain = get_domain(domain_name)
    if domain.generate is None:
        raise DataError(f"domain {domain_name!r} has no generator; give a file source for it instead")
    if split not in SPLITS:
        raise DataError(f"split must be one of {SPLITS}, got {split!r}")
    levels = tuple(difficulties) or domain.difficulties
    unknown = [level for level in levels if level not in domain.difficulties]
    if unknown:
        raise DataError(
            f"domain {domain_name!r} has no difficulty {unknown}; levels: {list(domain.difficulties)}"
        )
    per_level = largest_remainder({level: 1.0 for level in levels}, n)
    problems = []
    with tqdm(total=n, desc=f"generate {domain_name}", unit="item", disable=None, leave=False) as bar:
        for level in levels:
            kept, index = 0, 0
            # a generator whose every item lands in the other split must fail, not loop forever
            limit = 100 * HELDOUT_EVERY * (per_level[level] + 10)
            while kept < per_level[level]:
                if index >= limit:
                    raise DataError(f"{domain_name} level {level}: only {kept} of {per_level[level]} items "
                                    f"in the {split} split after {index} tries")
                problem = domain.generate(index, seed, level, lang)
                index += 1
                if problem.domain != domain.name:
                    raise DataError(f"{domain_name}.generate returned a {problem.domain!r} problem")
                if split != "all" and is_heldout(problem) != (split == "eval"):
                    continue
                problems.append(problem)
                kept += 1
                bar.update()
    return problems


def load_source(
    spec: SourceSpec | str, n: int | None = None, skipped: list[str] | None = None
) -> list[Problem]:
    """The problems of one source. `n` overrides spec.n (for generators: how many to make).

    With `spec.on_error == "skip"`, the errors of left-out rows are appended to `skipped` when given.
    """
    if isinstance(spec, str):
        spec = SourceSpec.parse(spec)
    if n is not None:
        spec = replace(spec, n=n)
    if spec.kind == "generate":
        if spec.n is None:
            raise DataError(f"generated source {spec.describe()!r} needs n (how many items)")
        return generate(spec.domain or "", spec.n, spec.seed or 0, spec.difficulties, spec.lang or "en")
    if spec.kind == "paper":
        return load_verl_parquet(paper_file(spec.path or "", spec.split), spec, skipped)
    if spec.kind == "parquet":
        return load_verl_parquet(spec.path or "", spec, skipped)
    if spec.kind == "jsonl":
        return load_jsonl(spec.path or "", spec, skipped)
    if spec.kind == "hf":
        return load_hf(spec, skipped)
    reader = _reader(spec.kind)
    if spec.path:
        path: Path | None = Path(spec.path)
    else:
        path = paper_root().parent / reader.default_path if reader.default_path else None
    problems = list(reader.read(path))
    problems = [problem for problem in problems if _keep(problem, spec)]
    return problems[: spec.n] if spec.n is not None else problems
