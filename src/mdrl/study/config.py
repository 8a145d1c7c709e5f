"""The study grid: what a `study.yaml` says, typed and validated, and the cells it expands into.

A study crosses starting models x training mixtures x reward variants x templates x curricula x
languages x seeds. Each combination is a *cell*: one training run followed by an evaluation on every
suite. Every starting model is evaluated too (a *baseline*), under each template and language it
is trained with, so each cell has a reference to compute its delta against.

YAML schema (every key but `models` and `suites` has a default; see `StudyConfig`):

    name: my-study
    models:                         # starting models; kind picks the default template
      - {name: base, path: Qwen/Qwen2.5-7B, kind: base}
      - {name: instruct, path: Qwen/Qwen2.5-7B-Instruct, kind: instruct}
    mixtures: [math, code, puzzle, math+code, math+code+puzzle]   # or {subsets_of: [math, code, puzzle]}
    rewards: [default, {name: prop, mode: proportional}]
    templates: [auto]               # auto: r1-base for base models, chat for instruct models
    curriculum: [none, difficulty]  # or [false, true]
    langs: [en]
    seeds: [0, 1]
    suites: [math500, aime24, countdown, humaneval, mbpp, kk, zebra]
    data: {sources: {...}, n: 2000}  # which training data each cell gets (see DataSettings)
    train: {engine: verl, grpo: {...}}  # the mdrl.train config every cell shares (`extends: PRESET` ok)
    eval: {backend: vllm, sampling: {max_new_tokens: 8192}, templates: [r1-base, chat, plain]}

The five factors of the study are axes: models (SFT: base vs instruct), templates x eval.templates
(template consistency), curriculum, rewards (binary / proportional / format-weighted) and langs.
`design: one-at-a-time` varies one factor at a time from the first value of each axis.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from mdrl.plain import plain
from mdrl.specs import (DataSpec, EvalSpec, RewardSpec, apply_overrides, deep_merge, difficulty_map,
                        field_help, spec_field)

MODEL_KINDS = ("base", "instruct")
#: The template a model is trained and evaluated with when the grid says `auto`.
AUTO_TEMPLATE = {"base": "r1-base", "instruct": "chat"}
CURRICULUM_ALIASES = {True: "difficulty", False: "none", "on": "difficulty", "off": "none"}
MIX_WEIGHTINGS = ("natural", "equal")
DESIGNS = ("factorial", "one-at-a-time")


class StudyConfigError(ValueError):
    """A study.yaml that cannot be run; the message says which key and why."""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+=-]+", "_", text).strip("_") or "x"


def _check_keys(data: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    known = list(known)
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise StudyConfigError(f"{where}: unknown key {key!r}{hint}; known: {', '.join(known)}")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _unique_names(items: Sequence[Any], what: str) -> None:
    names = [item.name for item in items]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise StudyConfigError(f"{what}: names must be unique, repeated: {duplicates}")


# --------------------------------------------------------------------------- grid axes


@dataclass(frozen=True)
class ModelSpec:
    """A starting model of the study."""

    name: str = field(metadata={"help": "Short name used in tables, folders and cell ids (e.g. base)."})
    path: str = field(metadata={"help": "Hub name or local folder, as mdrl.train and mdrl.eval take it. "
                                        "tiny:base / tiny:instruct name the embedded tiny models."})
    kind: str = field(default="base", metadata={"help": "base | instruct: picks the `auto` template."})

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise StudyConfigError(f"model {self.name!r}: kind must be one of {MODEL_KINDS}, got {self.kind!r}")
        if not self.name or not self.path:
            raise StudyConfigError("a model needs a name and a path")

    @classmethod
    def from_value(cls, value: Any) -> ModelSpec:
        if isinstance(value, str):  # a bare path: its kind from the name, as hub names mark instruct models
            kind = "instruct" if re.search(r"instruct|chat", value, re.IGNORECASE) else "base"
            return cls(name=Path(value).name or value, path=value, kind=kind)
        if not isinstance(value, Mapping):
            raise StudyConfigError(f"a model is a path or a mapping, got {value!r}")
        _check_keys(value, [f.name for f in fields(cls)], "models[]")
        return cls(**{k: str(v) for k, v in value.items()})


@dataclass(frozen=True)
class MixtureSpec:
    """One training-data mixture: components (domain groups or domains) with weights."""

    name: str = field(metadata={"help": "Row label in the tables, e.g. math+code."})
    components: tuple[tuple[str, float], ...] = field(metadata={
        "help": "(key, weight) pairs; a key is a domain group (math, code, puzzle) or a domain name."})

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys the mixture trains on ("math:1,countdown:0" is the math domain alone: weight 0 drops)."""
        return tuple(key for key, weight in self.components if weight > 0)

    @property
    def mix(self) -> str:
        """The data layer's mixture string, e.g. 'math:1,code:1'."""
        return ",".join(f"{key}:{weight:g}" for key, weight in self.components)

    @classmethod
    def parse(cls, text: str, name: str | None = None) -> MixtureSpec:
        """'math+code' (equal weights), 'math:2+code:1' or the data layer's 'math:2,code:1'."""
        from mdrl.data.mixture import parse_mix
        from mdrl.domains.registry import all_domains, groups, is_domain

        try:
            pairs = parse_mix(str(text).replace("+", ","))
        except ValueError as exc:
            raise StudyConfigError(f"mixture {text!r}: {exc}") from None
        known = [*groups(), *all_domains()]
        for key, _ in pairs:
            if key not in known and not is_domain(key):
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise StudyConfigError(f"mixture {text!r}: {key!r} is neither a domain group nor a domain{hint}; "
                                       f"known: {', '.join(known)}")
        return cls(name=name or str(text), components=tuple(pairs))

    @classmethod
    def from_value(cls, value: Any) -> MixtureSpec:
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, Mapping):
            _check_keys(value, ["name", "mix"], "mixtures[]")
            if "mix" not in value:
                raise StudyConfigError(f"mixture {value!r} needs a `mix`")
            mix = value["mix"]
            if isinstance(mix, Mapping):
                mix = ",".join(f"{k}:{v}" for k, v in mix.items())
            return cls.parse(str(mix), name=str(value.get("name") or mix))
        raise StudyConfigError(f"a mixture is a string or a mapping, got {value!r}")


def subsets(keys: Sequence[str], sizes: Sequence[int] | None = None) -> list[MixtureSpec]:
    """Every non-empty subset of `keys` (singles, then pairs, ...), equal weights: the study's grid."""
    keys = list(keys)
    if len(set(keys)) != len(keys):
        raise StudyConfigError(f"subsets_of: repeated keys in {keys}")
    sizes = list(sizes) if sizes else list(range(1, len(keys) + 1))
    out = []
    for size in sizes:
        if not 1 <= size <= len(keys):
            raise StudyConfigError(f"subsets_of: size {size} is out of 1..{len(keys)}")
        for combo in itertools.combinations(keys, size):
            out.append(MixtureSpec(name="+".join(combo), components=tuple((k, 1.0) for k in combo)))
    return out


@dataclass(frozen=True)
class RewardVariant:
    """A named reward setting for training (mdrl.verify.RewardConfig); `default` = each domain's own."""

    name: str = field(metadata={"help": "Label in tables and cell ids."})
    mode: str | None = field(default=None, metadata={
        "help": "None keeps each domain's own. " + field_help(RewardSpec, "mode")})
    format_weight: float = field(default=0.0, metadata={"help": field_help(RewardSpec, "format_weight")})

    def __post_init__(self) -> None:
        if self.mode is not None or self.format_weight:
            self.reward_config()  # validates

    def reward_config(self) -> Any:
        """The RewardConfig to train with, or None for each domain's default."""
        if self.mode is None and not self.format_weight:
            return None
        from mdrl.verify.shaping import RewardConfig

        try:
            return RewardConfig(mode=self.mode or "binary", format_weight=float(self.format_weight))
        except ValueError as exc:
            raise StudyConfigError(f"reward {self.name!r}: {exc}") from None

    @classmethod
    def from_value(cls, value: Any) -> RewardVariant:
        if isinstance(value, str):
            if value == "default":
                return cls(name="default")
            return cls(name=value, mode=value)
        if isinstance(value, Mapping):
            _check_keys(value, [f.name for f in fields(cls)], "rewards[]")
            if "name" not in value:
                raise StudyConfigError(f"reward variant {value!r} needs a name")
            return cls(**dict(value))
        raise StudyConfigError(f"a reward variant is a string or a mapping, got {value!r}")


# --------------------------------------------------------------------------- per-cell settings


@dataclass(frozen=True)
class DataSettings:
    """Which training data each cell gets. The mixture, template, language, curriculum and seed come
    from the cell; the result is the `data` section of the cell's mdrl.train config."""

    sources: Any = field(default=None, metadata={
        "help": "Either a mapping {mixture key: [source specs]} (a cell uses its keys' sources) or a flat "
                "list every cell shares (the data layer picks each key's domains). Empty: generated items."})
    weighting: str = field(default="equal", metadata={
        "help": "equal: mixture weights as written (mix=key:w,...); natural: the selected sources' own "
                "sizes, as the study concatenated whole training files."})
    n: int | None = spec_field(DataSpec, "n")
    difficulty: Mapping[str, Any] = spec_field(DataSpec, "difficulty")
    extra: Mapping[str, Any] = field(default_factory=dict, metadata={
        "help": "Further mdrl.train data settings (allow_repeat, val_sources, val_n, ...), verbatim."})

    def __post_init__(self) -> None:
        if self.weighting not in MIX_WEIGHTINGS:
            raise StudyConfigError(f"data.weighting must be one of {MIX_WEIGHTINGS}, got {self.weighting!r}")
        if self.weighting == "natural" and not isinstance(self.sources, Mapping):
            raise StudyConfigError("data.weighting=natural needs data.sources as a mapping {mixture key: sources}")
        grid_set = {"mix", "sources", "n", "difficulty", "template", "lang", "curriculum", "seed"}
        reserved = grid_set & set(self.extra)
        if reserved:
            raise StudyConfigError(f"data.extra: {sorted(reserved)} are set by the study grid or data.*")
        from mdrl.train.config import DataSettings as TrainData

        _check_keys(self.extra, [f.name for f in fields(TrainData) if f.name not in grid_set], "data.extra")
        try:  # one form, {domain: "3-4"}, whichever spelling the YAML used ([3, 4], 3, "countdown=3-4")
            object.__setattr__(self, "difficulty", difficulty_map(self.difficulty))
        except (TypeError, ValueError) as exc:
            raise StudyConfigError(f"data.difficulty: {exc}") from None

    def released_sources(self) -> list[str]:
        """The `paper:` sources (the study's released files, English) among all of data.sources."""
        specs = self.sources.values() if isinstance(self.sources, Mapping) else [self.sources]
        texts = [_source_text(spec) for value in specs if value is not None for spec in _as_list(value)]
        return sorted({text for text in texts if text.startswith("paper:")})

    def sources_for(self, mixture: MixtureSpec) -> list[str]:
        if self.sources is None:
            return []
        if isinstance(self.sources, Mapping):
            missing = [key for key in mixture.keys if key not in self.sources]
            if missing:
                raise StudyConfigError(f"mixture {mixture.name!r}: data.sources has no entry for {missing}")
            specs = [spec for key in mixture.keys for spec in _as_list(self.sources[key])]
        else:
            specs = _as_list(self.sources)
        return [_source_text(spec) for spec in specs]

    def data_mapping(self, mixture: MixtureSpec, template: str, lang: str, curriculum: str,
                     seed: int) -> dict[str, Any]:
        """The `data` section of one cell's mdrl.train config."""
        data: dict[str, Any] = dict(self.extra)
        data.update(sources=self.sources_for(mixture), template=template, lang=lang,
                    curriculum=curriculum, seed=seed)
        data["mix"] = mixture.mix if self.weighting == "equal" else None
        if self.n is not None:
            data["n"] = self.n
        if self.difficulty:
            data["difficulty"] = {str(k): str(v) for k, v in self.difficulty.items()}
        return data


def _source_text(spec: Any) -> str:
    """A source as the one-line spec mdrl.train takes (mappings are converted by the data layer)."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping):
        from mdrl.data.sources import SourceSpec

        try:
            return SourceSpec.from_mapping(spec).describe()
        except ValueError as exc:
            raise StudyConfigError(f"data.sources: {exc}") from None
    raise StudyConfigError(f"data.sources: a source is a string or a mapping, got {spec!r}")


@dataclass(frozen=True)
class EvalSettings(EvalSpec):
    """How every model (starting and trained) is evaluated, via mdrl.eval.evaluate (the shared
    evaluation vocabulary, EvalSpec, plus the backend and sampling a study fixes)."""

    backend: str = field(default="hf", metadata={"help": "hf | openai | vllm."})
    backend_options: Mapping[str, Any] = field(default_factory=dict, metadata={
        "help": "Passed to the backend (batch_size, device, dtype, ...)."})
    sampling: Mapping[str, Any] = field(default_factory=dict, metadata={
        "help": "mdrl.eval.SamplingConfig fields (n, temperature, top_p, max_new_tokens, seed)."})
    metric: str = field(default="accuracy", metadata={
        "help": "The suite metric the tables report (accuracy = mean@n; pass@1, acc_strict, ...)."})
    templates: tuple[str, ...] = field(default=(), metadata={
        "help": "The template-consistency factor: every trained model is also evaluated under each of these "
                "(r1-base | chat | plain | auto), and the report adds a train-template x eval-template table. "
                "Empty: each model only under the template it trained with."})

    def __post_init__(self) -> None:
        super().__post_init__()
        from mdrl.eval.types import SamplingConfig
        from mdrl.templates import TEMPLATES

        object.__setattr__(self, "templates", tuple(str(t) for t in _as_list(self.templates)))
        for template in self.templates:
            if template != "auto" and template not in TEMPLATES:
                raise StudyConfigError(f"eval.templates: {template!r} is not auto or one of {TEMPLATES}")
        if len(set(self.templates)) != len(self.templates):
            raise StudyConfigError(f"eval.templates: repeated values in {list(self.templates)}")

        known = {f.name for f in fields(SamplingConfig)}
        _check_keys(self.sampling, sorted(known), "eval.sampling")
        try:
            SamplingConfig(**dict(self.sampling))
        except (TypeError, ValueError) as exc:
            raise StudyConfigError(f"eval.sampling: {exc}") from None


# --------------------------------------------------------------------------- cells


@dataclass(frozen=True)
class Baseline:
    """The evaluation of a starting model under one template and language."""

    model: ModelSpec
    template: str
    lang: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model.name, self.template, self.lang)

    @property
    def cell_id(self) -> str:
        return _slug(f"{self.model.name}__{self.template}__{self.lang}")

    @property
    def label(self) -> str:
        return f"{self.model.name} ({self.template}, {self.lang})"


@dataclass(frozen=True)
class Cell:
    """One training run of the grid, evaluated on every suite."""

    model: ModelSpec
    mixture: MixtureSpec
    reward: RewardVariant
    template: str
    curriculum: str
    lang: str
    seed: int

    @property
    def baseline(self) -> Baseline:
        return Baseline(self.model, self.template, self.lang)

    @property
    def variant(self) -> tuple[str, str, str, str, str]:
        """Everything but the mixture and the seed: the cells one results table compares."""
        return (self.model.name, self.reward.name, self.template, self.curriculum, self.lang)

    @property
    def cell_id(self) -> str:
        return _slug("__".join([self.model.name, self.mixture.name, self.reward.name, self.template,
                                self.curriculum, self.lang, f"seed{self.seed}"]))

    @property
    def label(self) -> str:
        return f"{self.model.name} | {self.mixture.name} | {self.reward.name} | {self.template} | " \
               f"curriculum {self.curriculum} | {self.lang} | seed {self.seed}"


def variant_label(variant: Sequence[str]) -> str:
    model, reward, template, curriculum, lang = variant
    return f"{model} · reward {reward} · template {template} · curriculum {curriculum} · {lang}"


# --------------------------------------------------------------------------- the study


@dataclass(frozen=True)
class StudyConfig:
    """A whole study: the grid axes, the suites, and how data, training and evaluation are set up."""

    models: tuple[ModelSpec, ...] = field(metadata={"help": "Starting models (base and/or instruct)."})
    suites: tuple[str, ...] = field(metadata={"help": "mdrl.eval suite specs every model is evaluated on."})
    name: str = field(default="study", metadata={"help": "Shown in the report."})
    mixtures: tuple[MixtureSpec, ...] = field(default=(), metadata={
        "help": "Training mixtures: strings like math+code, mappings {name, mix}, or {subsets_of: [...]}."})
    rewards: tuple[RewardVariant, ...] = field(default=(RewardVariant("default"),), metadata={
        "help": "Reward variants: default | binary | proportional | {name, mode, format_weight}."})
    templates: tuple[str, ...] = field(default=("auto",), metadata={
        "help": "r1-base | chat | plain | auto (r1-base for base models, chat for instruct)."})
    curriculum: tuple[str, ...] = field(default=("none",), metadata={
        "help": "Data orders: none | difficulty | relative (true/false = difficulty/none)."})
    langs: tuple[str, ...] = field(default=("en",), metadata={"help": "Prompt languages: en | zh."})
    seeds: tuple[int, ...] = field(default=(0,), metadata={
        "help": "Training seeds; tables report mean and standard error over them."})
    data: DataSettings = field(default_factory=DataSettings, metadata={"help": "Training-set construction."})
    train: Mapping[str, Any] = field(default_factory=dict, metadata={
        "help": "The mdrl.train config every cell shares (engine, hyperparameters), passed through."})
    eval: EvalSettings = field(default_factory=EvalSettings, metadata={"help": "Evaluation settings."})
    baseline: bool = field(default=True, metadata={"help": "Evaluate the starting models (needed for deltas)."})
    suite_domains: Mapping[str, str] = field(default_factory=dict, metadata={
        "help": "Suite -> domain for suites mdrl does not know (used to pick a mixture key's own suites)."})
    design: str = field(default="factorial", metadata={
        "help": "factorial: every combination of the axes. one-at-a-time: the first value of each factor axis "
                "(models, rewards, templates, curriculum, langs) is the reference, and each other value is "
                "tried with the rest at the reference, for every mixture and seed (the study's factor runs)."})

    def __post_init__(self) -> None:
        from mdrl.data.curriculum import CURRICULA
        from mdrl.templates import TEMPLATES

        if not self.models:
            raise StudyConfigError("models: at least one starting model is needed")
        if not self.suites:
            raise StudyConfigError("suites: at least one evaluation suite is needed")
        if len(set(self.suites)) != len(self.suites):
            raise StudyConfigError(f"suites: repeated entries in {list(self.suites)}")
        _unique_names(self.models, "models")
        _unique_names(self.mixtures, "mixtures")
        _unique_names(self.rewards, "rewards")
        for template in self.templates:
            if template != "auto" and template not in TEMPLATES:
                raise StudyConfigError(f"templates: {template!r} is not auto or one of {TEMPLATES}")
        for order in self.curriculum:
            if order not in CURRICULA:
                raise StudyConfigError(f"curriculum: {order!r} is not one of {CURRICULA}")
        for lang in self.langs:
            if lang not in ("en", "zh"):
                raise StudyConfigError(f"langs: {lang!r} is not en or zh")
        released = self.data.released_sources()
        if released and set(self.langs) - {"en"} and not self.data.extra.get("mixed_language"):
            raise StudyConfigError(
                f"langs {sorted(set(self.langs) - {'en'})} with the study's released data ({', '.join(released)}): "
                "those files are English, so a zh cell would wrap English questions in a Chinese template. "
                "Use generated data (no data.sources, or gen: sources), give your translated files, or set "
                "data.extra.mixed_language: true to run it anyway")
        for axis in ("rewards", "templates", "curriculum", "langs", "seeds"):
            values = getattr(self, axis)
            if not values:
                raise StudyConfigError(f"{axis}: needs at least one value")
            if len(set(values)) != len(values):
                raise StudyConfigError(f"{axis}: repeated values in {list(values)}")
        if self.design not in DESIGNS:
            raise StudyConfigError(f"design: {self.design!r} is not one of {DESIGNS}")
        if not isinstance(self.train, Mapping):
            raise StudyConfigError("train: must be a mapping (the mdrl.train config)")
        if not self.mixtures:
            raise StudyConfigError("mixtures: at least one training mixture is needed")
        for mixture in self.mixtures:
            self.data.sources_for(mixture)  # every key has its sources
        self.cells()  # the grid names each cell once

    # ----------------------------------------------------------------- reading

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> StudyConfig:
        if not isinstance(data, Mapping):
            raise StudyConfigError("a study config must be a mapping")
        _check_keys(data, [f.name for f in fields(cls)], "study")
        values: dict[str, Any] = {}
        for key, value in data.items():
            values[key] = value
        values["models"] = tuple(ModelSpec.from_value(v) for v in _as_list(data.get("models")))
        values["suites"] = tuple(str(s) for s in _as_list(data.get("suites")))
        values["mixtures"] = tuple(_mixtures(data.get("mixtures")))
        if "rewards" in data:
            values["rewards"] = tuple(RewardVariant.from_value(v) for v in _as_list(data["rewards"]))
        if "templates" in data:
            values["templates"] = tuple(str(v) for v in _as_list(data["templates"]))
        if "curriculum" in data:
            values["curriculum"] = tuple(_curriculum(v) for v in _as_list(data["curriculum"]))
        if "langs" in data:
            values["langs"] = tuple(str(v) for v in _as_list(data["langs"]))
        if "seeds" in data:
            try:
                values["seeds"] = tuple(int(v) for v in _as_list(data["seeds"]))
            except (TypeError, ValueError):
                raise StudyConfigError(f"seeds: integers expected, got {data['seeds']!r}") from None
        if "data" in data:
            section = data["data"] or {}
            _check_keys(section, [f.name for f in fields(DataSettings)], "data")
            values["data"] = DataSettings(**dict(section))
        if "eval" in data:
            section = data["eval"] or {}
            _check_keys(section, [f.name for f in fields(EvalSettings)], "eval")
            values["eval"] = EvalSettings(**dict(section))
        values["train"] = dict(data.get("train") or {})
        values["suite_domains"] = dict(data.get("suite_domains") or {})
        values["baseline"] = bool(data.get("baseline", True))
        values["design"] = str(data.get("design", "factorial"))
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: Sequence[str] = ()) -> StudyConfig:
        """The study of a YAML file, with dotted KEY=VALUE overrides (e.g. eval.limit=50) applied."""
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise StudyConfigError(f"{path}: not valid YAML: {exc}") from None
        try:
            if overrides:
                if not isinstance(data, Mapping):
                    raise StudyConfigError("a study config must be a mapping")
                data = apply_overrides(data, overrides)
            return cls.from_mapping(data)
        except StudyConfigError as exc:
            raise StudyConfigError(f"{path}: {exc}") from None

    # ----------------------------------------------------------------- expanding

    def template_for(self, model: ModelSpec, template: str) -> str:
        return AUTO_TEMPLATE[model.kind] if template == "auto" else template

    def cells(self) -> list[Cell]:
        """The grid in a stable order: model, reward, template, curriculum, language, mixture, seed."""
        out = []
        factors = (self.models, self.rewards, self.templates, self.curriculum, self.langs)
        reference = tuple(axis[0] for axis in factors)
        for model, reward, template, curriculum, lang, mixture, seed in itertools.product(
                *factors, self.mixtures, self.seeds):
            if self.design == "one-at-a-time":
                moved = sum(value != ref for value, ref in zip((model, reward, template, curriculum, lang), reference))
                if moved > 1:
                    continue
            out.append(Cell(model, mixture, reward, self.template_for(model, template), curriculum, lang, seed))
        ids = [cell.cell_id for cell in out]
        if len(set(ids)) != len(ids):  # e.g. templates [auto, r1-base] on a base model
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            raise StudyConfigError(f"the grid names some cells twice (check templates: auto): {repeated[:3]}")
        return out

    def eval_templates(self, cell: Cell) -> list[str]:
        """The templates a cell is evaluated under besides its own (eval.templates, `auto` resolved)."""
        extra = [self.template_for(cell.model, t) for t in self.eval.templates]
        return [t for t in dict.fromkeys(extra) if t != cell.template]

    def axes(self) -> dict[str, list[str]]:
        """The grid's axes, the study's five factors first, as `mdrl study --dry-run` lists them."""
        def reward(variant: RewardVariant) -> str:
            if variant.mode is None and not variant.format_weight:
                return variant.name
            return f"{variant.name} ({variant.mode or 'binary'}, format weight {variant.format_weight:g})"

        return {"SFT (starting model)": [f"{m.name} ({m.kind}: {m.path})" for m in self.models],
                "template (train)": list(self.templates),
                "template (eval)": list(self.eval.templates) or ["the training template"],
                "curriculum": list(self.curriculum),
                "reward": [reward(r) for r in self.rewards],
                "language": list(self.langs),
                "training data": [m.name for m in self.mixtures],
                "seeds": [str(seed) for seed in self.seeds]}

    def baselines(self) -> list[Baseline]:
        """Each starting model under every template it is trained or evaluated with, in each language."""
        if not self.baseline:
            return []
        seen: dict[tuple[str, str, str], Baseline] = {}
        for cell in self.cells():
            for template in [cell.template, *self.eval_templates(cell)]:
                base = Baseline(cell.model, template, cell.lang)
                seen.setdefault(base.key, base)
        return list(seen.values())

    # ----------------------------------------------------------------- resolved configs

    def train_base(self) -> dict[str, Any]:
        """The study's `train` section with its `extends: <train preset>` resolved."""
        train = dict(self.train)
        parent = train.pop("extends", None)
        if parent is None:
            return train
        from mdrl.train.config import read_preset

        return deep_merge(read_preset(str(parent)), train)

    def train_settings(self, cell: Cell) -> dict[str, Any]:
        """The cell's mdrl.train config (a TrainConfig mapping): the study's `train` section with the
        cell's model, data, reward and seed laid over it. `model.path` is the model as the study names
        it (the runner swaps in the resolved folder) and `run.output_dir` is left to the runner, so the
        mapping identifies the training run wherever the study folder lives."""
        overlay: dict[str, Any] = {
            "name": cell.cell_id,
            "model": {"path": cell.model.path},
            "data": self.data.data_mapping(cell.mixture, cell.template, cell.lang, cell.curriculum, cell.seed),
            "grpo": {"seed": cell.seed},
        }
        reward = cell.reward.reward_config()
        if reward is not None:
            overlay["reward"] = {"mode": reward.mode, "format_weight": reward.format_weight}
        settings = deep_merge(self.train_base(), overlay)
        if reward is not None:
            # a reward variant is an axis of the study: per-domain rewards of the train section would
            # otherwise keep their own mode (the `tiny` preset's proportional Knights & Knaves) under "binary"
            settings["reward"].pop("domains", None)
        return plain(settings, str_keys=True)

    def eval_settings(self, template: str, lang: str) -> dict[str, Any]:
        """Everything that decides a suite score besides the model."""
        settings = asdict(self.eval)
        settings.pop("metric")  # read from the stored metrics; changing it needs no re-run
        settings.pop("templates")  # each extra template's scores are kept (and planned) on their own
        return {"template": template, "lang": lang, **plain(settings, str_keys=True)}

    def resolved(self) -> dict[str, Any]:
        """The study as a plain mapping (for study.json and the report)."""
        return plain(asdict(self), str_keys=True) | {
            "mixtures": [{"name": m.name, "mix": m.mix} for m in self.mixtures],
        }


def _mixtures(value: Any) -> list[MixtureSpec]:
    if value is None:
        raise StudyConfigError("mixtures: at least one training mixture is needed")
    if isinstance(value, Mapping) and "subsets_of" in value:
        _check_keys(value, ["subsets_of", "sizes"], "mixtures")
        return subsets([str(k) for k in _as_list(value["subsets_of"])], _as_list(value.get("sizes")) or None)
    return [MixtureSpec.from_value(v) for v in _as_list(value)]


def _curriculum(value: Any) -> str:
    if isinstance(value, bool) or value in ("on", "off"):
        return CURRICULUM_ALIASES[value]
    return str(value)




def config_hash(settings: Mapping[str, Any]) -> str:
    """A short stable digest of a resolved config: a finished cell is reused only while it matches."""
    payload = json.dumps(plain(settings, str_keys=True), sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
