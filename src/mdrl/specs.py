"""One vocabulary for settings: what data to build (`DataSpec`, `BuildSpec`), how verdicts become
rewards (`RewardSpec`, declared in mdrl.verify.shaping, also named `RewardConfig`), how models are
evaluated (`EvalSpec`, `EvalOptions`, `SamplingConfig`) and how the reward server runs (`ServeConfig`).
Each field is declared and documented once, here: `data build`, `train`, `eval`, `study` and `serve`
extend these classes (or take one field with `spec_field`), their CLI options are derived from the
fields (`mdrl.commands.options.spec_option`: flag, help and default), and `--set KEY=VALUE` overrides
and typed YAML loading (`apply_overrides`, `build_settings`) are shared. Old spellings (`--format-reward`,
`--template-grid`, `generate:` sources) keep working with a deprecation warning (logging.warning).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import yaml

from mdrl.domains.registry import domain_for_source
from mdrl.plain import plain
from mdrl.verify.shaping import RewardConfig, RewardSpec  # noqa: F401  (RewardConfig: RewardSpec's older name)

log = logging.getLogger(__name__)


def field_help(cls: type, name: str) -> str:
    """The help text a settings class declares for one field (CLI options read theirs from here)."""
    for item in dataclasses.fields(cls):
        if item.name == name:
            return item.metadata.get("help", "")
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def spec_field(cls: type, name: str) -> Any:
    """A field declared as `cls` declares it (default and help), for a settings class that takes one
    setting of a spec without extending it (a study's data section takes `n` and `difficulty`)."""
    for item in dataclasses.fields(cls):
        if item.name == name:
            if item.default_factory is not dataclasses.MISSING:
                return field(default_factory=item.default_factory, metadata=item.metadata)
            return field(default=item.default, metadata=item.metadata)
    raise KeyError(f"{cls.__name__} has no field {name!r}")


@dataclass(frozen=True)
class DataSpec:
    """What a training set is made of; `data build` and `train` extend it, a study sets it per cell."""

    sources: tuple[Any, ...] = field(default=(), metadata={
        "help": "Where items come from, as one-line source specs (paper:countdown, paper:kk/test, "
                "parquet:F, jsonl:F, hf:PATH, gen:DOMAIN:LEVELS?n=N, or a domain's reader such as mbpp). "
                "Empty: every domain of the mixture is generated."})
    mix: str | None = field(default=None, metadata={
        "help": "Ratios over domains or domain groups, e.g. 'math:1,puzzle:1'. Empty: the sources' natural "
                "proportions (the study concatenated its files)."})
    n: int | None = field(default=None, metadata={
        "help": "Items (training prompts per epoch). Required when a mixed domain is generated; else the most "
                "the pools allow."})
    difficulty: Mapping[str, str] = field(default_factory=dict, metadata={
        "help": "Difficulty levels per domain, DOMAIN=LEVELS (YAML: a mapping), LEVELS like 3, 3-5 or 3,5: "
                "generators spread items over them, loaded items are filtered to them."})
    template: str = field(default="r1-base", metadata={
        "help": "Prompt template: r1-base (the study's, for base models) | chat (instruct models) | plain."})
    lang: str = field(default="en", metadata={"help": "Language of prompts and generated items: en | zh."})
    curriculum: str = field(default="none", metadata={
        "help": "none (seeded shuffle) | difficulty (easy->hard by level) | relative (easy->hard within each "
                "domain, domains in step). A curriculum is never shuffled."})
    seed: int = field(default=0, metadata={
        "help": "Seed of generated items (unless a source sets one), draws and shuffles."})
    allow_repeat: bool = field(default=False, metadata={
        "help": "Let a finite pool repeat items when its mixture share exceeds its size (else it fails)."})
    mixed_language: bool = field(default=False, metadata={
        "help": "Let loaded rows in another language than `lang` through (e.g. the study's English questions "
                "inside a Chinese template and instruction). Off: such a build fails naming the source; "
                "give rows in `lang` (their `lang` field) or generate them (gen:DOMAIN)."})

    def __post_init__(self) -> None:
        from mdrl.data.curriculum import CURRICULA

        object.__setattr__(self, "difficulty", difficulty_map(self.difficulty))
        if self.n is not None and self.n <= 0:
            raise ValueError(f"data.n must be positive, got {self.n}")
        if self.curriculum not in CURRICULA:
            raise ValueError(f"data.curriculum must be one of {CURRICULA}, got {self.curriculum!r}")

    def levels_for(self, domain: str) -> tuple[int, ...]:
        from mdrl.data.sources import parse_levels

        return parse_levels(self.difficulty.get(domain))


@dataclass(frozen=True)
class BuildSpec(DataSpec):
    """A data set written to disk (`mdrl data build`): the data vocabulary plus the build's own settings."""

    split: str = field(
        default="train", metadata={"help": "Split name: the output file and extra_info.split."}
    )
    skip_bad_rows: bool = field(
        default=False,
        metadata={
            "help": "Leave out malformed rows of file sources (logged, counted in the manifest) instead of "
            "failing; a source's own on_error=skip does the same for that source."
        },
    )
    ground_truth_format: str = field(
        default="auto",
        metadata={"help": "auto (native parquet structs when one shape, else JSON strings) | native | json."},
    )


def difficulty_map(value: Any) -> dict[str, str]:
    """Per-domain levels in their one form, {domain: "3-4"}, from a mapping, `DOMAIN=LEVELS` strings,
    (domain, levels) pairs, or one "a=1,b=2-3" string; every LEVELS is checked."""
    from mdrl.data.sources import parse_levels

    if not value:
        return {}
    if isinstance(value, str):
        value = [part for part in value.split(";") if part.strip()] if ";" in value else [value]
    items = value.items() if isinstance(value, Mapping) else (
        item.split("=", 1) if isinstance(item, str) else item for item in value)
    out: dict[str, str] = {}
    for item in items:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise ValueError(f"bad difficulty setting {item!r}: levels are per domain, DOMAIN=LEVELS "
                             "(YAML: {DOMAIN: LEVELS}), e.g. countdown=3-4")
        name, levels = item
        text = ",".join(map(str, levels)) if isinstance(levels, (list, tuple)) else str(levels).strip()
        parse_levels(text)  # raises on a bad level
        out[str(name).strip()] = text
    return out


@dataclass(frozen=True)
class EvalSpec:
    """Which items an evaluation reads and how it scores them; `eval run` and a study's `eval` extend it."""

    data_root: str | None = field(default=None, metadata={
        "help": "Folder holding paper/ and mbpp/ (default: $MDRL_DATA, else ../shared/data)."})
    limit: int | None = field(default=None, metadata={
        "help": "At most this many items per suite, spread evenly over the suite (every group keeps its share)."})
    gen_n: int | None = field(default=None, metadata={
        "help": "Items of a generated suite (gen:...) that does not say; default 100."})
    gen_seed: int | None = field(default=None, metadata={
        "help": "Seed of generated suites that do not say; default 1000003 (not a training seed)."})
    score_workers: int = field(default=4, metadata={"help": "Scoring threads (code runs in the sandbox)."})

    def __post_init__(self) -> None:
        if self.score_workers <= 0:
            raise ValueError(f"score_workers must be positive, got {self.score_workers}")


@dataclass(frozen=True)
class EvalOptions(EvalSpec):
    """Everything about a run that is not the model, the suites, the template or the sampling (the
    shared evaluation vocabulary, EvalSpec, plus this runner's own)."""

    lang: str = spec_field(DataSpec, "lang")
    reward: RewardSpec | None = field(
        default=None,
        metadata={
            "help": "Reward config for `score` (default: each domain's); accuracy is always all-or-nothing."
        },
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Cache folder (default: <out_dir>/cache)."})
    ks: tuple[int, ...] = field(default=(), metadata={"help": "pass@k values (default: 1, 2, 4, ... n)."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar on stderr."})


@dataclass(frozen=True)
class SamplingConfig:
    """How responses are sampled. Every field is part of the cache key: change one, recompute."""

    n: int = field(default=1, metadata={"help": "Samples per prompt (pass@k needs k <= n)."})
    temperature: float = field(default=0.0, metadata={"help": "0 means greedy decoding."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass (ignored when greedy)."})
    max_new_tokens: int = field(default=1024, metadata={"help": "Longest response, in tokens."})
    seed: int = field(
        default=0, metadata={"help": "Sampling seed (batches and requests derive theirs from it)."}
    )
    stop: tuple[str, ...] = field(
        default=(),
        metadata={"help": "Extra stop strings (cut, not included); generation always stops at EOS."},
    )

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature == 0 and self.n > 1:
            # Greedy decoding gives n copies of the same response: pass@k would be meaningless.
            raise ValueError("n > 1 needs temperature > 0 (greedy decoding repeats one response)")
        object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


#: The code domain sizes its sandbox from this variable; the server sets it to match `code_workers`.
SANDBOX_WORKERS_ENV = "MDRL_SANDBOX_WORKERS"
_MIB = 1 << 20


@dataclass(frozen=True)
class ServeConfig:
    """Settings of the reward server (`mdrl serve`); its options take their help from here."""

    host: str = field(default="127.0.0.1", metadata={
        "help": "Interface to bind. Loopback by default; 0.0.0.0 exposes an unauthenticated scorer."})
    port: int = field(default=8000, metadata={"help": "TCP port; 0 picks a free one (printed at start)."})
    workers: int = field(default=0, metadata={
        "help": "Scoring processes (in total, over all HTTP workers); 0 = one per CPU core."})
    code_workers: int = field(default=0, metadata={
        "help": "Code rows run at once: threads of the server, each driving one of the sandbox's fork "
                "servers (MDRL_SANDBOX_WORKERS is set to match); 0 = $MDRL_SANDBOX_WORKERS, else half "
                "the cores."})
    http_workers: int = field(default=1, metadata={
        "help": "uvicorn worker processes (each parses JSON and owns a share of the scoring processes)."})
    max_batch: int = field(default=4096, metadata={"help": "Most items in one request (413 above)."})
    max_body_bytes: int = field(default=64 * _MIB, metadata={"help": "Largest request body (413 above)."})
    chunk_size: int = field(default=0, metadata={
        "help": "Rows per task sent to a scoring process; 0 = adaptive: the queued rows (of all requests) "
                "cut into about four tasks per process, 1 to 256 rows each."})
    data_source: str | None = field(default=None, metadata={
        "help": "Default data_source for OpenRLHF labels that carry the bare ground truth."})
    reward: Mapping[str, Any] | None = field(default=None, metadata={
        "help": "Default reward options ({mode, format_weight}) for requests that send none; "
                "None = each domain's default."})
    request_timeout_s: float = field(default=600.0, metadata={
        "help": "Deadline of a request: rows not started by then are dropped and the request gets a 504. "
                "A client may ask for a shorter one with the X-Mdrl-Deadline-S header."})
    log_level: str = field(default="warning", metadata={"help": "uvicorn log level."})
    access_log: bool = field(default=False, metadata={"help": "Log every request (costs throughput)."})

    def __post_init__(self) -> None:
        for name in ("workers", "code_workers", "chunk_size", "port"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("http_workers", "max_batch", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.request_timeout_s > 0:
            raise ValueError(f"request_timeout_s must be > 0, got {self.request_timeout_s}")
        if self.data_source is not None:
            domain_for_source(self.data_source)  # KeyError listing the known ones
        if isinstance(self.reward, (str, RewardSpec)):  # a mode name, or a whole spec
            object.__setattr__(self, "reward", asdict(RewardSpec.from_mapping(self.reward)))
        if self.reward is not None:
            RewardSpec.from_mapping(dict(self.reward))

    @property
    def scoring_processes(self) -> int:
        """Scoring processes per HTTP worker: the total is shared, so N HTTP workers do not make N pools."""
        total = self.workers or os.cpu_count() or 1
        return max(1, total // self.http_workers)

    @property
    def code_concurrency(self) -> int:
        """Sandbox fork servers (and threads feeding them) per HTTP worker."""
        from_env = os.environ.get(SANDBOX_WORKERS_ENV, "").strip()
        total = (self.code_workers or (int(from_env) if from_env.isdigit() else 0)
                 or max(1, (os.cpu_count() or 1) // 2))
        return max(1, total // self.http_workers)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        raw = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


def reward_overrides(mode: str | None, format_weight: float | None,
                     format_reward: float | None = None) -> dict[str, Any]:
    """The RewardSpec fields a command line sets (`--reward`, `--format-weight`); `--format-reward` is
    the old spelling of `--format-weight`."""
    if format_reward is not None:
        log.warning("--format-reward is deprecated: write --format-weight")
        if format_weight is not None:
            raise ValueError("give --format-weight only (its old spelling --format-reward is given too)")
        format_weight = format_reward
    return {key: value for key, value in (("mode", mode), ("format_weight", format_weight)) if value is not None}


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except (TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if errors else f"{where}: cannot be {value!r}")
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if hint is RewardSpec and isinstance(value, str):  # the short form, a mode: reward=proportional
            return RewardSpec.from_mapping(value)
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping of {hint.__name__} settings, got {value!r}")
        return build_settings(hint, value, where + ".")
    if hint is Any:
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(v, args[0], f"{where}[]") for v in value)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): _coerce(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off", "1", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{where}: expected an integer, got {value!r}") from None
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)  # YAML reads 1e-5 (no dot) as a string
        except ValueError:
            raise ValueError(f"{where}: expected a number, got {value!r}") from None
    if hint is str:
        if isinstance(value, (dict, list, tuple)) or value is None:
            raise ValueError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def build_settings(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    """`cls` from a (YAML) mapping: unknown keys fail with near matches, values are coerced to the
    field types (nested settings classes too), and the class then checks them."""
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.init}
    unknown = [key for key in data if key not in known]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(known), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(prefix + c for c in close)}?" if close else ""
        raise ValueError(
            f"unknown setting {prefix}{key}.{hint} Known: {', '.join(prefix + k for k in known)}"
        )
    values = {key: _coerce(value, hints[key], prefix + key) for key, value in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise ValueError(f"{prefix.rstrip('.') or cls.__name__}: {exc}") from None


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """`update` over `base`; nested mappings merge key by key, everything else is replaced."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(text: str) -> tuple[list[str], Any]:
    """'grpo.learning_rate=1e-5' -> (['grpo', 'learning_rate'], '1e-5'); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip().lstrip("-")
    if not sep or not key:
        raise ValueError(f"override {text!r} is not KEY=VALUE (e.g. grpo.learning_rate=1e-5)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def set_values(data: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with each dotted key of `values` set ({"grpo.seed": 1} sets data["grpo"]["seed"]); the
    values are taken as they are (command-line options give them typed)."""
    result = dict(data)
    for key, value in values.items():
        path = key.split(".")
        node = result
        for part in path[:-1]:
            child = node.get(part)
            child = dict(child) if isinstance(child, Mapping) else {}
            node[part] = child
            node = child
        node[path[-1]] = value
    return result


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """`data` with `--set KEY=VALUE` overrides applied in order (values read as YAML)."""
    result = dict(data)
    for text in overrides:
        path, value = parse_override(text)
        result = set_values(result, {".".join(path): value})
    return result


def describe_options(cls: type, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted name, default, help) for every leaf setting of a settings class (`--list-options`)."""
    rows = []
    defaults = cls()
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            rows += describe_options(hint, f"{prefix}{f.name}.")
            continue
        rows.append((prefix + f.name, repr(plain(getattr(defaults, f.name))), f.metadata.get("help", "")))
    return rows
