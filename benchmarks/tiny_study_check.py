"""Check a finished `mdrl study`: are its generated eval items really held out, and which deltas are significant?

1. Held-out verification. Generated questions are split by `mdrl.data.sources.is_heldout` (a hash of domain +
   question, 1 in HELDOUT_EVERY = 10 go to evaluation): generated training data (the tiny models' supervised
   items, each cell's GRPO prompts) is built with split="train" and `gen:DOMAIN:LEVELS:N:SEED` suites with
   split="eval", so no eval item of a generated suite should ever have been a training question, whatever the
   seeds. Without the split the small item spaces would leak: code level 1 is `f(x) = a*x + b`, a in -9..9
   without 0, b in -99..99 (`_linear` in mdrl/domains/code.py), 3582 functions, fewer than the tiny recipe's
   4000 items per source. This script recounts the overlap for every job of the study folder and expects 0;
   any seen item is a bug, logged as a warning. With --strict the exit status is 1 unless the split is
   verified: no item seen, and every evaluated item matched to its regenerated suite (a study run before a
   generator change cannot be checked).
2. Significance. For every cell and suite, the change in accuracy against the baseline of the same model
   (same template and language) on the same items, with its paired item-level standard error, and the
   aggregate over the seeds of each (model, mixture, suite).

What "seen" means. An eval item is *seen* by a job when its question text (Problem.question, whitespace
collapsed), together with its domain, equals the question of an item that job's model was trained on:
  * SFT: the tiny model's own supervised items, `mdrl.tiny.recipe.generated(source, items_per_source,
    item_seed)` for every recipe source (only items with a reference, as `training_examples` keeps): the
    base stage's item seed for base models, the base and instruct seeds for instruct models (defaults:
    sources math:1, code:1, knights_knaves:2; 4000 items per source; seeds 0 and 1). The recipe is the one
    recorded with the model (`mdrl_recipe.json` in or next to a model folder), `TinyRecipe()` for
    `tiny:base` / `tiny:instruct`, or `--recipe FILE`. Other models have no known SFT set (logged).
  * GRPO (cells only): every prompt of the cell's built training epoch, read from its run folder
    (`train-<key>/data/items.jsonl` of TRL, `data/train.parquet` of veRL), else rebuilt from the cell's
    resolved train config with mdrl.train's own `build_config_for` + mdrl.data's `build_dataset`. The
    whole epoch counts even when `max_steps` stops training before its end (an upper bound on exposure).
    The warm-up data of `model.path: tiny` (a model trained inside the cell) is not counted (logged).
The eval item's question is recovered by regenerating the suite with mdrl.eval's `load_suite` under the
job's recorded eval settings and matching `item_id`; an item whose recorded fingerprint differs (the
generator changed since the run) or whose recorded prompt does not contain the question is counted as
`unknown` and left out of every number. Matching is textual, so a question asked in another language than
its training twin, or the same sum with its operands swapped, is not caught (nor does the split keep them
apart: it hashes the question text too).

Numbers (computed by mdrl.study.significance). Accuracy is mdrl.eval's: per item the mean `acc` over its
samples, then the mean over items.
For one cell and suite, on the items both the cell and its baseline answered (n):
    d_i = acc_cell_i - acc_base_i,   delta = mean(d),   se_items = the cluster-robust se of mean(d) with the
    items of one question as a cluster (= sd(d, ddof=1) / sqrt(n) when no question repeats; None below 2).
Over the k seeds of a (model, mixture, suite) group (other axes that vary get their own columns):
    delta = mean of the seeds' deltas,   se_seeds = sd(seed deltas, ddof=1) / sqrt(k)  (None for k < 2),
    se_items = the clustered se of the per-item mean over seeds of d_i (so the one baseline evaluation
               all seeds are compared with counts once, and pairing on items removes question difficulty),
    se = sqrt(se_seeds^2 + se_items^2) when both exist, else whichever exists.
The significance ratio is z = delta / se with that combined se, and `> 2 SE` is yes when |delta| > 2 se.
What the parts carry: se_seeds the spread of training runs (and again the cells' own sampling noise, so
adding it to se_items counts that twice: conservative); se_items the finite item sample and the sampling
noise of the baseline's and the cells' answers (evaluations at temperature > 0). One seed has no
se_seeds, so its z says nothing about how a rerun would land. Generated suites at small levels repeat
questions (the held-out tenth of a small item space, drawn 500 times: gen:code:1:500:7 asks 263 distinct
questions), and a model answers repeats alike (greedy) or from one distribution (sampled), so se_items
clusters the items of one question (the JSON also keeps the unclustered se_items_unclustered).
`in-domain` is yes when the suite tests a domain of the mixture's keys (mdrl.study.tables' `key_suites`,
with the study's `suite_domains`; keys of weight 0 are left out).

    python benchmarks/tiny_study_check.py STUDY_DIR [--out FILE.json] [--recipe mdrl_recipe.json] [--strict]

Prints one markdown table (one row per model, mixture, suite; accuracies and deltas in %, se in points) and
writes every job's numbers and the table's rows to --out (default STUDY_DIR/study_check.json).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdrl.study import significance

log = logging.getLogger("tiny_study_check")

Key = tuple[str, str]  # (domain, question with whitespace collapsed)
Job = dict[str, Any]


@dataclass(frozen=True)
class SuiteItems:
    """One job's matched items of one suite: mean acc over samples, seen ids, question of each item."""

    acc: dict[str, float]
    seen: frozenset[str]
    question: dict[str, Key]

SEEN = ("an eval item is seen when (domain, question text with whitespace collapsed) equals that of an "
        "item the job's model was trained on: the tiny recipe's SFT items (base seed; + instruct seed for "
        "instruct models) and, for cells, every prompt of the cell's built GRPO epoch; expected: none")
SIGNIFICANCE = ("d_i = acc_cell_i - acc_base_i on the paired items; se_items = sd(d, ddof=1)/sqrt(n); over k "
                "seeds: delta = mean, se_seeds = sd(deltas, ddof=1)/sqrt(k), se_items = sqrt(sum se_items^2)/k, "
                "se = sqrt(se_seeds^2 + se_items^2) (else whichever exists); z = delta/se; "
                "'> 2 SE' = |delta| > 2 se")


def question_key(domain: str, question: str) -> Key:
    return domain, " ".join(question.split())


def _keys(problems: Iterable[Any]) -> frozenset[Key]:
    return frozenset(question_key(p.domain, p.question) for p in problems)


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


# --------------------------------------------------------------------------- training questions


def recipe_of(model_path: str, override: Path | None) -> dict[str, Any] | None:
    """The recipe (TinyRecipe.to_dict() shape) that built the model at `model_path`, or None if unknown."""
    from mdrl.tiny.recipe import RECIPE_FILE, TinyRecipe

    if override is not None:
        data = json.loads(override.read_text(encoding="utf-8"))
        return dict(data.get("recipe", data))
    if model_path.startswith("tiny:"):
        return TinyRecipe().to_dict()  # what ready_models() serves: the shipped or cached default build
    folder = Path(model_path)
    for candidate in (folder / RECIPE_FILE, folder.parent / RECIPE_FILE):
        if candidate.is_file():
            return dict(json.loads(candidate.read_text(encoding="utf-8"))["recipe"])
    return None


def flavour_of(model_path: str, kind: str | None) -> str:
    """base | instruct: from the model folder's mdrl_tiny.json, a tiny:* name, else the study's model kind."""
    meta = Path(model_path) / "mdrl_tiny.json"
    if meta.is_file():
        return str(json.loads(meta.read_text(encoding="utf-8")).get("kind", kind or "base"))
    if model_path.startswith("tiny:"):
        return model_path.split(":", 1)[1]
    return kind or "base"


@functools.cache
def sft_questions(sources: tuple[str, ...], n: int, seed: int) -> frozenset[Key]:
    """Questions of one supervised stage's items (those with a reference, as the recipe trains on)."""
    from mdrl.tiny.recipe import generated

    return _keys(p for source in sources for p in generated(source, n, seed) if p.reference)


def model_sft(model_path: str, kind: str | None, override: Path | None) -> tuple[frozenset[Key], dict[str, Any]]:
    """The SFT question set of a model and a description of where it came from."""
    recipe = recipe_of(model_path, override)
    if recipe is None:
        log.warning("%s: no tiny recipe found, so its supervised data is unknown (SFT set empty)", model_path)
        return frozenset(), {"recipe": None}
    flavour = flavour_of(model_path, kind)
    seeds = [int(recipe["base"]["item_seed"])]
    if flavour == "instruct":
        seeds.append(int(recipe["instruct"]["item_seed"]))
    sources, n = tuple(recipe["sources"]), int(recipe["items_per_source"])
    keys = frozenset().union(*(sft_questions(sources, n, seed) for seed in seeds))
    return keys, {"sources": list(sources), "items_per_source": n, "seeds": seeds, "flavour": flavour,
                  "unique_questions": len(keys)}


def grpo_problems(settings: Mapping[str, Any], run_dir: Path | None) -> tuple[list[Any], str]:
    """A cell's GRPO prompts: as mdrl.train wrote them in `run_dir`/data, else rebuilt from `settings`."""
    from mdrl.data import load_jsonl, load_verl_parquet

    if run_dir is not None:
        items, parquet = run_dir / "data" / "items.jsonl", run_dir / "data" / "train.parquet"
        if items.is_file():
            return load_jsonl(items), str(items)
        if parquet.is_file():
            return load_verl_parquet(parquet), str(parquet)
    from mdrl.data import build_dataset
    from mdrl.study.runner import train_config
    from mdrl.train.plan import build_config_for

    config = train_config(settings, str(settings.get("model", {}).get("path", "unused")), Path("unused"))
    if config.model.path == "tiny":
        log.warning("model.path 'tiny' warms up its own model: that warm-up data is not counted")
    return build_dataset(build_config_for(config.data)).problems, "rebuilt (mdrl.train.plan.build_config_for)"


def cell_run_dir(folder: Path, record: Mapping[str, Any]) -> Path | None:
    run = folder / f"train-{record.get('train_key')}"
    if run.is_dir():
        return run
    runs = sorted(folder.glob("train-*/"))
    return runs[0] if len(runs) == 1 else None


def cell_grpo(folder: Path, record: Mapping[str, Any]) -> tuple[frozenset[Key], str]:
    """The question set of a cell's GRPO epoch and where it was read from."""
    try:
        problems, source = grpo_problems(record["resolved_config"]["train"], cell_run_dir(folder, record))
    except (OSError, ValueError, KeyError) as exc:
        log.warning("%s: GRPO prompts neither on disk nor rebuildable (%s): only SFT items count as seen",
                    folder.name, exc)
        return frozenset(), f"unavailable: {exc}"
    return _keys(problems), source


# --------------------------------------------------------------------------- eval items and samples


@functools.cache
def suite_items(spec: str, root: str | None, limit: int | None, gen_n: int | None, gen_seed: int | None,
                lang: str) -> tuple[str, dict[str, tuple[Key, str]]]:
    """(canonical suite name, {item_id: (question key, fingerprint)}) as mdrl.eval loads the suite."""
    from mdrl.eval.suites import DEFAULT_GEN_N, DEFAULT_GEN_SEED, load_suite

    suite = load_suite(spec, root=root, limit=limit, gen_n=DEFAULT_GEN_N if gen_n is None else gen_n,
                       gen_seed=DEFAULT_GEN_SEED if gen_seed is None else gen_seed, lang=lang)
    return suite.name, {item.item_id: (question_key(item.problem.domain, item.problem.question),
                                       item.fingerprint()) for item in suite.items}


def read_samples(folder: Path, score: Mapping[str, Any], suite_name: str) -> list[dict[str, Any]]:
    """The suite's sample records: the recorded samples_file, else the job's eval/**/samples.jsonl whose
    item ids belong to the suite."""
    candidates = [Path(str(score["samples_file"]))] if score.get("samples_file") else []
    candidates += sorted((folder / "eval").glob("**/samples.jsonl"))
    for path in candidates:
        if not path.is_file():
            continue
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if records and str(records[0]["item_id"]).startswith(suite_name + "/"):
            return records
    return []


def item_accuracy(records: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, str, str | None]]:
    """{item_id: (mean acc over its samples, the sample's fingerprint, its prompt)}."""
    grouped: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        grouped[str(record["item_id"])].append(record)
    return {item: (sum(bool(r["acc"]) for r in recs) / len(recs), str(recs[0].get("fingerprint", "")),
                   recs[0].get("prompt")) for item, recs in grouped.items()}


def matches(item: tuple[Key, str] | None, fingerprint: str, prompt: str | None) -> bool:
    """The regenerated item is the one evaluated: same fingerprint, and its question is in the prompt."""
    if item is None or (fingerprint and item[1] != fingerprint):
        return False
    return prompt is None or item[0][1] in " ".join(str(prompt).split())


# --------------------------------------------------------------------------- one job


def suite_numbers(job_id: str, spec: str, score: Mapping[str, Any], items: Mapping[str, tuple[Key, str]],
                  accuracy: Mapping[str, tuple[float, str, str | None]], sft: frozenset[Key],
                  grpo: frozenset[Key]) -> tuple[dict[str, Any], SuiteItems]:
    """One job's numbers on one suite and its matched items."""
    known = {i: acc for i, (acc, fp, prompt) in accuracy.items() if matches(items.get(i), fp, prompt)}
    seen_sft = {i for i in known if items[i][0] in sft}
    seen_grpo = {i for i in known if items[i][0] in grpo}
    seen = seen_sft | seen_grpo
    recorded = score.get("accuracy")
    questions = {i: items[i][0] for i in known}
    numbers: dict[str, Any] = {"n": len(known), "distinct_questions": len(set(questions.values())),
                               "unknown": len(accuracy) - len(known), "seen": len(seen),
                               "seen_sft": len(seen_sft), "seen_grpo": len(seen_grpo),
                               "seen_frac": len(seen) / len(known) if known else None,
                               "seen_items": sorted(seen),
                               "acc_all": _mean(known.values()),
                               "acc_unseen": _mean(a for i, a in known.items() if i not in seen),
                               "recorded_accuracy": recorded}
    if numbers["unknown"]:
        log.warning("%s: %d items of %s do not match the regenerated suite (id, fingerprint or prompt)",
                    job_id, numbers["unknown"], spec)
    elif recorded is not None and known and abs(recorded - numbers["acc_all"]) > 1e-9:
        log.warning("%s: %s accuracy %.4f from the samples, %.4f recorded", job_id, spec, numbers["acc_all"],
                    recorded)
    if seen:
        log.warning("HELD-OUT SPLIT BROKEN: %s saw %d of %d items of %s in training (SFT %d, GRPO %d), e.g. %s",
                    job_id, len(seen), len(known), spec, len(seen_sft), len(seen_grpo), sorted(seen)[:3])
    return numbers, SuiteItems(known, frozenset(seen), questions)


def analyse_job(folder: Path, kind: str, record: Mapping[str, Any], model_kinds: Mapping[str, Any],
                recipe_override: Path | None) -> tuple[Job, dict[str, SuiteItems]]:
    """A baseline's or cell's numbers per suite, with its matched items per suite for the deltas."""
    resolved, axes = record.get("resolved_config", {}), dict(record.get("axes", {}))
    grpo: frozenset[Key] = frozenset()
    grpo_from = None
    if kind == "baseline":
        model_path = str(record.get("model_path") or resolved["model"]["path"])
    else:
        model_path = str(resolved["train"]["model"]["path"])
        grpo, grpo_from = cell_grpo(folder, record)
    sft, sft_info = model_sft(model_path, model_kinds.get(axes.get("model", "")), recipe_override)
    job: Job = {"id": folder.name, "kind": kind, "axes": axes, "mixture_keys": record.get("mixture_keys"),
                "model_path": model_path, "sft": sft_info, "grpo_source": grpo_from,
                "grpo_unique_questions": len(grpo), "suites": {}}
    evals = resolved.get("eval", {})
    lang = str(evals.get("lang", axes.get("lang", "en")))
    matched: dict[str, SuiteItems] = {}
    for spec, score in record.get("scores", {}).items():
        try:
            name, items = suite_items(spec, evals.get("data_root"), evals.get("limit"), evals.get("gen_n"),
                                      evals.get("gen_seed"), lang)
        except (OSError, ValueError, KeyError) as exc:  # e.g. a file suite whose data is absent here
            log.warning("%s: suite %s cannot be loaded (%s); skipped", folder.name, spec, exc)
            continue
        accuracy = item_accuracy(read_samples(folder, score, name))
        if not accuracy:
            log.warning("%s: no samples found for %s", folder.name, spec)
            continue
        job["suites"][spec], matched[spec] = suite_numbers(folder.name, spec, score, items, accuracy, sft, grpo)
    return job, matched


# --------------------------------------------------------------------------- paired deltas


def paired_delta(cell: SuiteItems, base: SuiteItems, ids: Sequence[str]) -> dict[str, Any]:
    """Cell minus baseline on `ids` (mdrl.study.significance.paired_delta), keeping the per-item
    differences and questions for the aggregate over seeds."""
    numbers = significance.paired_delta(cell.acc, base.acc, ids, cell.question)
    diffs = numbers.pop("diffs")
    return {"_items": (diffs, {i: cell.question[i] for i in ids}), **numbers}


def add_deltas(jobs: list[Job], matched: Mapping[str, Mapping[str, SuiteItems]]) -> None:
    """Each cell against the baseline of the same model/template/lang, on the items both answered
    (and, under `unseen`, on those of them the cell did not see: the same items when the split holds)."""
    def match(axes: Mapping[str, Any]) -> tuple[Any, ...]:
        return axes.get("model"), axes.get("template"), axes.get("lang")

    baselines = {match(j["axes"]): j["id"] for j in jobs if j["kind"] == "baseline"}
    for job in (j for j in jobs if j["kind"] == "cell"):
        base_id = baselines.get(match(job["axes"]))
        job["baseline"] = base_id
        if base_id is None:
            log.warning("%s: no baseline for model %s, template %s, lang %s: no deltas", job["id"],
                        *match(job["axes"]))
            continue
        for spec, numbers in job["suites"].items():
            cell = matched[job["id"]][spec]
            base = matched[base_id].get(spec, SuiteItems({}, frozenset(), {}))
            common = sorted(i for i in cell.acc if i in base.acc)
            if len(common) < len(cell.acc):
                log.warning("%s: %d of %d items of %s have no baseline answer", job["id"],
                            len(cell.acc) - len(common), len(cell.acc), spec)
            numbers.update(paired_delta(cell, base, common))
            numbers["unseen"] = paired_delta(cell, base, [i for i in common if i not in cell.seen])


# --------------------------------------------------------------------------- the study


def log_repeats(jobs: Sequence[Job]) -> None:
    """Say once per suite when its items repeat questions (small item spaces): se_items treats them as
    independent only when they ask different questions."""
    said: set[str] = set()
    for job in jobs:
        for spec, numbers in job["suites"].items():
            if spec not in said and numbers["distinct_questions"] < numbers["n"]:
                said.add(spec)
                log.info("%s: %d items ask %d distinct questions (se_items clusters them)",
                         spec, numbers["n"], numbers["distinct_questions"])


def mixture_keys(study: Mapping[str, Any], jobs: Sequence[Job]) -> dict[str, list[str]]:
    """Mixture name -> its keys of positive weight: the study's definitions, else a cell's recorded keys,
    else the name's '+'-separated parts."""
    from mdrl.study.config import MixtureSpec

    keys: dict[str, list[str]] = {}
    for mixture in study.get("mixtures", []):
        spec = MixtureSpec.parse(str(mixture["mix"]), str(mixture["name"]))
        keys[spec.name] = [key for key, weight in spec.components if weight > 0]
    for job in (j for j in jobs if j["kind"] == "cell"):
        name = str(job["axes"].get("mixture"))
        if name not in keys:
            keys[name] = list(job.get("mixture_keys") or name.split("+"))
    return keys


def in_domain(keys: Sequence[str], suite: str, overrides: Mapping[str, str]) -> bool:
    from mdrl.study.tables import key_suites

    return any(key_suites(key, [suite], overrides) for key in keys)


def analyse(study_dir: Path, recipe_override: Path | None = None) -> dict[str, Any]:
    """Every finished job of the study folder (see the module doc)."""
    study = json.loads((study_dir / "study.json").read_text(encoding="utf-8"))
    model_kinds = {m["name"]: m.get("kind") for m in study.get("models", [])}
    jobs: list[Job] = []
    matched: dict[str, dict[str, SuiteItems]] = {}  # job id -> suite -> its matched items
    for kind in ("baseline", "cell"):
        for folder in sorted(p for p in (study_dir / f"{kind}s").glob("*") if p.is_dir()):
            try:
                record = json.loads((folder / "result.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                log.info("skipping %s: no finished result.json", folder.name)
                continue
            job, matched[folder.name] = analyse_job(folder, kind, record, model_kinds, recipe_override)
            jobs.append(job)
    add_deltas(jobs, matched)
    log_repeats(jobs)
    seen = sum(n["seen"] for j in jobs for n in j["suites"].values())
    checked = sum(n["n"] for j in jobs for n in j["suites"].values())
    unknown = sum(n["unknown"] for j in jobs for n in j["suites"].values())
    return {"study_dir": str(study_dir), "suites": list(study.get("suites", [])),
            "mixture_keys": mixture_keys(study, jobs), "suite_domains": dict(study.get("suite_domains") or {}),
            "seen_definition": SEEN, "significance": SIGNIFICANCE,
            "heldout": {"eval_items_checked": checked, "unknown": unknown, "seen": seen,
                        "ok": seen == 0 and unknown == 0 and checked > 0}, "jobs": jobs}


# --------------------------------------------------------------------------- aggregate over seeds


def joint_se_items(members: Sequence[Mapping[str, Any]]) -> float | None:
    """Clustered se of the seeds' mean delta (mdrl.study.significance.joint_se_items)."""
    if not members or any("_items" not in m for m in members):
        return None
    return significance.joint_se_items([m["_items"][0] for m in members], members[0]["_items"][1])


def aggregate(members: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean delta over the seeds of one group, se_seeds, pooled se_items, the combined se, z and > 2 SE."""
    paired = [m for m in members if m.get("delta") is not None]
    return {"seeds": len(members), "paired_seeds": len(paired),
            "n_items": sorted({m["n_paired"] for m in paired}) or sorted({m["n"] for m in members}),
            "seen_frac": _mean(m["seen_frac"] for m in members if m.get("seen_frac") is not None),
            "seen": sum(m["seen"] for m in members),
            "baseline_acc": _mean(m["baseline_acc"] for m in paired),
            "trained_acc": _mean(m["trained_acc"] for m in paired),
            **significance.combine_seeds([m["delta"] for m in paired], joint_se_items(paired))}


def _extra_axes(jobs: Sequence[Job]) -> list[str]:
    """Axes besides model, mixture and seed that vary between cells of one model (template follows model)."""
    values: dict[tuple[str, Any], set[str]] = defaultdict(set)
    for job in (j for j in jobs if j["kind"] == "cell"):
        for name, value in job["axes"].items():
            values[(name, job["axes"].get("model"))].add(str(value))
    fixed = ("model", "mixture", "seed")
    return sorted({name for (name, _), found in values.items() if name not in fixed and len(found) > 1})


def table_rows(result: Mapping[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Extra axis names and one aggregated row per (model, mixture, extra axes, suite), study order."""
    jobs, extra = result["jobs"], _extra_axes(result["jobs"])
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = defaultdict(list)
    for job in (j for j in jobs if j["kind"] == "cell"):
        axes = job["axes"]
        label = (str(axes.get("model")), str(axes.get("mixture")), *(str(axes.get(k, "-")) for k in extra))
        for spec, numbers in job["suites"].items():
            groups[(*label, spec)].append(numbers)
    suite_order = {s: i for i, s in enumerate(result["suites"])}
    mixture_order = {m: i for i, m in enumerate(result["mixture_keys"])}

    def sort_key(key: tuple[str, ...]) -> tuple[Any, ...]:
        return key[0], mixture_order.get(key[1], len(mixture_order)), key[1:-1], suite_order.get(key[-1], 99)

    rows = []
    for key in sorted(groups, key=sort_key):
        keys = result["mixture_keys"].get(key[1], [])
        rows.append({"model": key[0], "mixture": key[1], **dict(zip(extra, key[2:-1])), "suite": key[-1],
                     "in_domain": in_domain(keys, key[-1], result["suite_domains"]),
                     **aggregate(groups[key])})
    return extra, rows


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def markdown(extra: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    columns = ["model", "mixture", *extra, "suite", "in-domain", "n items", "seeds", "seen %", "baseline acc",
               "trained acc", "delta", "se_seeds", "se_items", "z", "> 2 SE"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        n_items = "-".join(map(str, (row["n_items"][0], row["n_items"][-1]) if len(row["n_items"]) > 1
                               else row["n_items"]))
        cells = [row["model"], row["mixture"], *(row[k] for k in extra), row["suite"], _yes(row["in_domain"]),
                 n_items, str(row["seeds"]), _pct(row["seen_frac"]), _pct(row["baseline_acc"]),
                 _pct(row["trained_acc"]), _pct(row["delta"], signed=True), _pct(row["se_seeds"]),
                 _pct(row["se_items"]), "-" if row["z"] is None else f"{row['z']:+.2f}", _yes(row["above_2se"])]
        lines.append("| " + " | ".join(cells) + " |")
    notes = ("accuracy and delta in %, se in % points; delta = trained - baseline (same model, template, language) "
             "on the same items, mean over seeds; z = delta / sqrt(se_seeds^2 + se_items^2) (whichever exists); "
             "seen % should be 0 (held-out split)")
    return "\n".join(lines) + "\n\n" + notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("study_dir", type=Path, help="the output folder of `mdrl study`")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default STUDY_DIR/study_check.json)")
    parser.add_argument("--recipe", type=Path, default=None,
                        help="a tiny recipe JSON (mdrl_recipe.json or TinyRecipe.to_dict()) for every model")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 unless the split is verified: an eval item seen in training, "
                             "or one that could not be matched to its regenerated suite (or none matched)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not (args.study_dir / "study.json").is_file():
        parser.error(f"{args.study_dir} holds no study.json: give the output folder of `mdrl study`")
    result = analyse(args.study_dir, args.recipe)
    extra, rows = table_rows(result)
    result["table"] = rows
    for job in result["jobs"]:  # per-item differences: in memory for the pooled se, not in the JSON
        for numbers in job.get("suites", {}).values():
            numbers.pop("_items", None)
            numbers.get("unseen", {}).pop("_items", None)
    out = args.out or args.study_dir / "study_check.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    heldout = result["heldout"]
    if heldout["seen"]:
        log.warning("HELD-OUT SPLIT BROKEN: %d of %d evaluated items were seen in training (see %s)",
                    heldout["seen"], heldout["eval_items_checked"], out)
    elif not heldout["ok"]:
        log.warning("held-out split NOT verified: %d evaluated items could not be matched to their regenerated "
                    "suite (%d matched, none of them seen)", heldout["unknown"], heldout["eval_items_checked"])
    else:
        log.info("held-out split verified: none of %d evaluated items seen in training", heldout["eval_items_checked"])
    log.info("wrote %s (%d jobs)", out, len(result["jobs"]))
    print(markdown(extra, rows))
    return 1 if args.strict and not heldout["ok"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
