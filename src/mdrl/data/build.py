"""Build a training set: sources -> per-domain pools -> mixture counts -> interleaved (or curriculum)
order -> veRL parquet + manifest (+ optional HF Dataset). `mdrl data build` is a thin shell over this.

Where each domain's items come from:
  * explicit sources (files, HF datasets, generators) fill per-domain pools;
  * a domain in the mixture with no pool is generated, if it has a generator: with no sources at all,
    every domain of a group key that has a generator takes part;
  * a finite pool shorter than its share is topped up by that domain's generator source when one is
    given, else repeated with `allow_repeat`, else the build fails and says by how much.
Items are drawn from each pool by a seeded shuffle, so the build is deterministic in its config.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from mdrl.domains.base import DataError, Problem
from mdrl.specs import BuildSpec
from mdrl.domains.registry import all_domains, domains_named, groups
from mdrl.data.curriculum import order_by_curriculum
from mdrl.data.export import to_hf_dataset, write_verl_parquet
from mdrl.data.mixture import (
    expand_mix,
    format_mix,
    interleave,
    largest_remainder,
    max_prefix_deviation,
    parse_mix,
    proportions,
    resolve_mix,
)
from mdrl.data.sources import SourceSpec, generate, load_source, source_domain
from mdrl.templates import Template

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class BuildConfig(BuildSpec):
    """Everything that decides a built data set (mdrl.specs.BuildSpec: the shared data vocabulary plus
    the build's own); the manifest records it resolved. `sources` may be SourceSpecs or their strings."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "sources", tuple(
            source if isinstance(source, SourceSpec) else SourceSpec.parse(source) if isinstance(source, str)
            else SourceSpec.from_mapping(source) for source in self.sources))
        Template(self.template, self.lang)  # validates both names
        if self.mix is not None:
            parse_mix(self.mix)
        if self.ground_truth_format not in ("auto", "native", "json"):
            raise ValueError(
                f"ground_truth_format must be auto, native or json, got {self.ground_truth_format!r}"
            )

    @property
    def is_curriculum(self) -> bool:
        return self.curriculum != "none"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sources"] = [source.describe() for source in self.sources]
        data["difficulty"] = {name: list(self.levels_for(name)) for name in self.difficulty}
        return data

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "BuildConfig":
        """From YAML/JSON: sources as strings or mappings, mix as a string or mapping, difficulty as a
        mapping {domain: "3-4"}, curriculum as true/false or a name."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown build setting(s) {unknown}; known: {', '.join(sorted(known))}")
        values = dict(data)
        values["sources"] = tuple(values.get("sources") or ())
        if isinstance(values.get("mix"), Mapping):
            values["mix"] = format_mix(parse_mix(values["mix"]))
        curriculum = values.get("curriculum")
        if isinstance(curriculum, bool):
            values["curriculum"] = "difficulty" if curriculum else "none"
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "BuildConfig":
        import yaml

        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: a build config must be a mapping")
        return cls.from_mapping(data)


@dataclass
class BuildResult:
    """The built, ordered problems and what the manifest reports about them."""

    problems: list[Problem]
    config: BuildConfig
    target: dict[str, float]
    sources: list[str]
    #: mixture key -> its member domains (empty without a mixture)
    mix_members: dict[str, list[str]] = field(default_factory=dict)
    #: errors of the malformed rows left out (with skip_bad_rows / on_error=skip)
    skipped: list[str] = field(default_factory=list)

    @property
    def is_curriculum(self) -> bool:
        """Trainers must keep this order (shuffle=False) when True."""
        return self.config.is_curriculum

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(p.domain for p in self.problems).items()))

    def realised(self) -> dict[str, float]:
        return dict(sorted(proportions([p.domain for p in self.problems]).items()))

    def manifest(self) -> dict[str, Any]:
        domains = [p.domain for p in self.problems]
        by_level: dict[str, Counter[int]] = {}
        for problem in self.problems:
            by_level.setdefault(problem.domain, Counter())[problem.difficulty] += 1
        realised = self.realised()
        deviation = max(abs(realised.get(name, 0.0) - share) for name, share in self.target.items())
        by_key = {
            key: {
                "target": round(sum(self.target.get(m, 0.0) for m in members), 6),
                "realised": round(sum(realised.get(m, 0.0) for m in members), 6),
                "domains": members,
            }
            for key, members in self.mix_members.items()
        }
        return {
            "config": self.config.to_dict(),
            "sources": self.sources,
            "n": len(self.problems),
            "is_curriculum": self.is_curriculum,
            "curriculum": self.config.curriculum,
            "mix": by_key,
            "target_proportions": {k: round(v, 6) for k, v in sorted(self.target.items())},
            "realised_proportions": {k: round(v, 6) for k, v in realised.items()},
            "max_abs_deviation": round(deviation, 6),
            "max_prefix_deviation_after_100": round(
                max_prefix_deviation(domains, self.target, min_prefix=100), 6
            )
            if len(domains) >= 100
            else None,
            "counts": self.counts(),
            "counts_by_difficulty": {
                d: {str(k): v for k, v in sorted(c.items())} for d, c in sorted(by_level.items())
            },
            "counts_by_data_source": dict(sorted(Counter(p.data_source for p in self.problems).items())),
            "skipped_rows": {"count": len(self.skipped), "first": self.skipped[:20]},
        }


def _resolve_sources(config: BuildConfig) -> list[SourceSpec]:
    """Fill each source's unset seed/lang from the build and a generator's unset levels from `difficulty`."""
    resolved = []
    for source in config.sources:
        if source.kind == "generate":
            source = replace(
                source,
                seed=config.seed if source.seed is None else source.seed,
                lang=source.lang or config.lang,
                difficulties=source.difficulties or config.levels_for(source.domain or ""),
            )
        elif config.skip_bad_rows:
            source = replace(source, on_error="skip")
        resolved.append(source)
    return resolved


def _feasible_n(weights: Mapping[str, float], sizes: Mapping[str, int]) -> int:
    """The largest N whose largest-remainder counts fit every pool."""
    n = int(min(sizes[name] / share for name, share in weights.items()))
    while n > 0 and any(c > sizes[k] for k, c in largest_remainder(weights, n).items()):
        n -= 1
    return n


def _draw(
    name: str, count: int, pool: list[Problem], generator: SourceSpec | None, config: BuildConfig
) -> list[Problem]:
    """`count` items of one domain: a seeded sample of its pool, topped up by its generator."""
    rng = random.Random(f"mdrl-draw-{config.seed}-{name}")
    items = list(pool)
    rng.shuffle(items)
    chosen = items[:count]
    shortfall = count - len(chosen)
    if shortfall > 0 and generator is not None:
        extra = generate(name, shortfall, generator.seed or 0, generator.difficulties, generator.lang or "en")
        rng.shuffle(extra)
        chosen += extra
    elif shortfall > 0 and config.allow_repeat and items:
        while len(chosen) < count:
            rng.shuffle(items)
            chosen += items[: count - len(chosen)]
    elif shortfall > 0:
        levels = config.levels_for(name)
        where = f" at difficulty {list(levels)}" if levels else ""
        raise DataError(
            f"domain {name!r} has {len(items)} items{where} but the mixture needs {count}: "
            "add a source or a generator for it, lower n, or allow repeats"
        )
    return chosen


def _drawn_domains(mix: str, domains: Mapping[str, Any]) -> set[str]:
    """Every domain a mixture could draw on: the domains and the members of the groups it weighs
    above 0, less the domains it weighs 0."""
    pairs = parse_mix(mix)
    drawn: set[str] = set()
    for key, weight in pairs:
        if weight > 0:
            drawn |= {key} if key in domains and key not in groups() else \
                {name for name, d in domains.items() if d.group == key} | ({key} if key in domains else set())
    return drawn - {key for key, weight in pairs if weight == 0 and key in domains}


def _check_language(problems: Sequence[Problem], source: SourceSpec, config: BuildConfig) -> None:
    """Rows in another language than the build's would be wrapped in its template and instruction: a
    half-translated prompt the study never trained on. Refused unless `mixed_language`."""
    other = sorted({problem.lang for problem in problems} - {config.lang})
    if other and not config.mixed_language:
        raise DataError(
            f"{source.describe()}: its rows are in {', '.join(other)}, but the build's language is {config.lang!r}: "
            f"the {config.lang} template and answer instruction would wrap {other[0]} questions (the study's "
            f"released files are English). Give rows in {config.lang} (a `lang` field, e.g. your translation), "
            f"generate the items (gen:DOMAIN), or set mixed_language: true to build it anyway")


def build_dataset(config: BuildConfig) -> BuildResult:
    """Build the ordered problems of `config` (see the module doc for where items come from)."""
    sources = _resolve_sources(config)
    domains = domains_named(key for key, _ in parse_mix(config.mix)) if config.mix else all_domains()
    pools: dict[str, list[Problem]] = {}
    generators: dict[str, SourceSpec] = {}
    skipped: list[str] = []
    drawn = _drawn_domains(config.mix, domains) if config.mix else None
    for source in sources:
        known = source_domain(source)
        if drawn is not None and known is not None and known not in drawn:
            log.info("not reading %s: the mixture draws nothing from domain %s", source.describe(), known)
            continue
        if source.kind == "generate":
            if source.domain in generators:
                raise ValueError(f"two generator sources for {source.domain!r}: give one with several levels")
            generators[source.domain or ""] = source
            continue
        loaded = load_source(source, skipped=skipped)
        _check_language(loaded, source, config)
        for problem in loaded:
            levels = config.levels_for(problem.domain)
            if not levels or problem.difficulty in levels:
                pools.setdefault(problem.domain, []).append(problem)
    mix_keys = [key for key, _ in parse_mix(config.mix)] if config.mix else []
    can_generate = {name for name, domain in domains.items() if domain.generate is not None}
    usable = set(pools) | set(generators)
    # With no sources every generator is fair game; with sources, only domains the mix names themselves
    # (a group key never pulls in generators: "math" the group is not "math" the domain here).
    usable |= can_generate if not sources else can_generate & (set(mix_keys) - set(groups()))

    mix_members: dict[str, list[str]] = {}
    if config.mix:
        target = resolve_mix(config.mix, usable, domains)
        mix_members = {
            key: [m for m in members if m in target]
            for key, weight, members in expand_mix(config.mix, usable, domains)
            if weight > 0
        }
    elif pools or generators:
        # No mixture: the sources' own sizes are the proportions. Generators without n count equally,
        # which only makes sense when nothing else sets a size.
        natural = {name: float(len(items)) for name, items in pools.items() if items}
        open_ended = sorted(name for name, spec in generators.items() if spec.n is None)
        if open_ended and (natural or len(open_ended) < len(generators) or config.n is None):
            raise DataError(f"generated source(s) for {open_ended} need n, or give a mixture (--mix) and n")
        for name, spec in generators.items():
            natural[name] = natural.get(name, 0.0) + float(spec.n if spec.n is not None else 1)
        total = sum(natural.values())
        if total <= 0:
            raise DataError("the sources hold no items (after difficulty filters)")
        target = {name: weight / total for name, weight in natural.items()}
    else:
        raise ValueError("nothing to build: give a mixture (--mix) or sources (--source)")

    for name in target:  # domains to be generated on demand get the build's settings
        if name not in pools and name not in generators:
            generators[name] = SourceSpec(
                kind="generate",
                domain=name,
                seed=config.seed,
                lang=config.lang,
                difficulties=config.levels_for(name),
            )
    sizes = {name: len(pools.get(name, ())) for name in target}
    n = config.n
    if n is None:
        elastic = sorted(name for name in target if name in generators or config.allow_repeat)
        if elastic and config.mix:
            raise DataError(f"give n: domain(s) {elastic} are generated or repeated, so the size is open")
        n = _feasible_n(target, sizes) if config.mix else int(round(total))
        if n <= 0:
            raise DataError("the sources hold no items for this mixture")
    counts = largest_remainder(target, n)
    drawn = {
        name: _draw(name, counts[name], pools.get(name, []), generators.get(name), config) for name in target
    }
    cursors = {name: iter(items) for name, items in drawn.items()}
    problems = [next(cursors[name]) for name in interleave(counts)]
    problems = order_by_curriculum(problems, config.curriculum)
    described = [source.describe() for source in sources]
    described += [spec.describe() for name, spec in sorted(generators.items()) if spec not in sources]
    return BuildResult(
        problems=problems,
        config=config,
        target=target,
        sources=described,
        mix_members=mix_members,
        skipped=skipped,
    )


def write_build(result: BuildResult, out_dir: str | Path, hf_dataset: bool = False) -> dict[str, Path]:
    """Write `<split>.parquet` (veRL), `manifest.json`, and with `hf_dataset` an HF Dataset folder `hf/`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = result.config
    paths = {
        "parquet": write_verl_parquet(
            result.problems,
            out / f"{config.split}.parquet",
            template=config.template,
            lang=config.lang,
            split=config.split,
            ground_truth_format=config.ground_truth_format,
            metadata={"curriculum": config.curriculum, "mix": config.mix, "seed": config.seed},
        )
    }
    if hf_dataset:
        dataset = to_hf_dataset(
            result.problems, template=config.template, lang=config.lang, split=config.split
        )
        paths["hf"] = out / "hf"
        dataset.save_to_disk(str(paths["hf"]))
    manifest = result.manifest()
    manifest["files"] = {key: path.name for key, path in paths.items()}
    paths["manifest"] = out / MANIFEST_NAME
    paths["manifest"].write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return paths


def summarize(result: BuildResult) -> str:
    """A few lines for the terminal: size, order, and per-domain counts against their targets."""
    manifest = result.manifest()
    order = (
        f"curriculum by {result.config.curriculum}"
        if result.is_curriculum
        else "interleaved, shuffled within domains"
    )
    lines = [f"{manifest['n']} items, {order}"]
    if any(members != [key] for key, members in result.mix_members.items()):
        lines.append(
            "  mix: "
            + ", ".join(
                f"{key} {entry['realised']:.1%} (target {entry['target']:.1%})"
                for key, entry in manifest["mix"].items()
            )
        )
    for name, count in manifest["counts"].items():
        levels = ", ".join(f"{k}:{v}" for k, v in manifest["counts_by_difficulty"][name].items())
        lines.append(
            f"  {name:<16} {count:>7}  {manifest['realised_proportions'][name]:6.1%} "
            f"(target {manifest['target_proportions'][name]:6.1%})  difficulty {levels}"
        )
    if result.skipped:
        lines.append(f"  skipped {len(result.skipped)} malformed row(s), e.g. {result.skipped[0]}")
    return "\n".join(lines)


def load_manifest(out_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(out_dir) / MANIFEST_NAME).read_text(encoding="utf-8"))


def problems_of(sources: Sequence[SourceSpec | str]) -> list[Problem]:
    """All items of several sources, in order (no mixing): a convenience for eval suites."""
    return [problem for source in sources for problem in load_source(source)]
