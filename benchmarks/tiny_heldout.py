"""How "held-out" are a study's generated evaluation suites? Accuracy on the items the models never saw.

The tiny world's item spaces are small (code level 1 is `f(x) = a*x + b`, a in -9..9, b in -20..20:
779 functions), so a suite generated with another seed still repeats many training questions. For every
job of a finished `mdrl study` folder and every suite, this script counts the eval items seen in training
and reports accuracy on all items and on the unseen ones, and for cells the change against the baseline
of the same model (template, language) on both item sets.

What "seen" means. An eval item is *seen* by a job when its question text (Problem.question, whitespace
collapsed), together with its domain, equals the question of an item that job's model was trained on:
  * SFT: the tiny model's own supervised items, `mdrl.tiny.recipe.generated(source, items_per_source,
    item_seed)` for every recipe source (only items with a reference, as `training_examples` keeps):
    the base stage's seed for base models, the base and instruct seeds for instruct models. The recipe is
    the one recorded with the model (`mdrl_recipe.json` next to a model folder), `TinyRecipe()` for
    `tiny:base` / `tiny:instruct`, or `--recipe FILE`. Other models have no known SFT set (logged).
  * GRPO (cells only): every prompt of the cell's built training epoch, read from its run folder
    (`train-<key>/data/items.jsonl` of TRL, `data/train.parquet` of veRL), else rebuilt from the cell's
    resolved train config with mdrl.train's own `build_config_for` + mdrl.data's `build_dataset`. The
    whole epoch counts even when `max_steps` stops training before its end (an upper bound on exposure:
    an item called unseen was certainly never a training prompt).
The eval item's question is recovered by regenerating the suite with mdrl.eval's `load_suite` under the
job's recorded eval settings and matching `item_id`; an item whose recorded fingerprint differs (the
generator changed since the run) or whose recorded prompt does not contain the question is counted as
`unknown` and left out of every accuracy. Matching is textual, so a question asked in another language
(`lang: zh`) than its training twin, or the same sum with its operands swapped, is not caught.

Accuracy is mdrl.eval's: the mean over items of each item's mean `acc` over its samples.

    python benchmarks/tiny_heldout.py STUDY_DIR [--out FILE.json] [--recipe mdrl_recipe.json]

Prints one markdown table (means over seeds per model, mixture and suite; other varying axes get their own
columns) and writes every job's numbers to --out (default STUDY_DIR/heldout.json).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("tiny_heldout")

Key = tuple[str, str]  # (domain, question with whitespace collapsed)
SEEN = ("an eval item is seen when (domain, question text with whitespace collapsed) equals that of an "
        "item the job's model was trained on: the tiny recipe's SFT items (base seed; + instruct seed for "
        "instruct models) and, for cells, every prompt of the cell's built GRPO epoch")


def question_key(domain: str, question: str) -> Key:
    return domain, " ".join(question.split())


def _keys(problems: Iterable[Any]) -> frozenset[Key]:
    return frozenset(question_key(p.domain, p.question) for p in problems)


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


def model_sft(model_path: str, kind: str | None, override: Path | None
              ) -> tuple[frozenset[Key], dict[str, Any]]:
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


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


# --------------------------------------------------------------------------- the study


def suite_numbers(job_id: str, score: Mapping[str, Any], items: Mapping[str, tuple[Key, str]],
                  accuracy: Mapping[str, tuple[float, str, str | None]], sft: frozenset[Key],
                  grpo: frozenset[Key]) -> tuple[dict[str, Any], dict[str, float], set[str]]:
    """One job's numbers on one suite, its per-item accuracy (matched items) and its seen item ids."""
    known = {i: acc for i, (acc, fp, prompt) in accuracy.items() if matches(items.get(i), fp, prompt)}
    seen_sft = {i for i in known if items[i][0] in sft}
    seen_grpo = {i for i in known if items[i][0] in grpo}
    seen = seen_sft | seen_grpo
    numbers: dict[str, Any] = {"n": len(known), "unknown": len(accuracy) - len(known), "seen": len(seen),
                               "seen_sft": len(seen_sft), "seen_grpo": len(seen_grpo),
                               "seen_frac": len(seen) / len(known) if known else None,
                               "acc_all": _mean(known.values()),
                               "acc_unseen": _mean(a for i, a in known.items() if i not in seen),
                               "acc_seen": _mean(a for i, a in known.items() if i in seen),
                               "recorded_accuracy": score.get("accuracy")}
    recorded = score.get("accuracy")
    if numbers["unknown"]:
        log.warning("%s: %d items of %s do not match the regenerated suite (id, fingerprint or prompt)",
                    job_id, numbers["unknown"], score.get("suite"))
    elif recorded is not None and known and abs(recorded - numbers["acc_all"]) > 1e-9:
        log.warning("%s: %s accuracy %.4f from the samples, %.4f recorded", job_id, score.get("suite"),
                    numbers["acc_all"], recorded)
    return numbers, known, seen


def analyse_job(folder: Path, kind: str, record: Mapping[str, Any], model_kinds: Mapping[str, Any],
                recipe_override: Path | None) -> tuple[dict[str, Any], dict[str, dict[str, float]],
                                                      dict[str, set[str]]]:
    """A baseline's or cell's numbers per suite, with per-item accuracies and seen ids for the deltas."""
    resolved, axes = record.get("resolved_config", {}), dict(record.get("axes", {}))
    grpo: frozenset[Key] = frozenset()
    grpo_from = None
    if kind == "baseline":
        model_path = str(record.get("model_path") or resolved["model"]["path"])
    else:
        model_path = str(resolved["train"]["model"]["path"])
        try:
            problems, grpo_from = grpo_problems(resolved["train"], cell_run_dir(folder, record))
            grpo = _keys(problems)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("%s: GRPO prompts neither on disk nor rebuildable (%s): only SFT items count as seen",
                        folder.name, exc)
            grpo_from = f"unavailable: {exc}"
    sft, sft_info = model_sft(model_path, model_kinds.get(axes.get("model", "")), recipe_override)
    job_id = str(record.get("cell_id", folder.name))
    job: dict[str, Any] = {"id": job_id, "kind": kind, "axes": axes, "model_path": model_path,
                           "sft": sft_info, "grpo_source": grpo_from, "grpo_unique_questions": len(grpo),
                           "suites": {}}
    evals = resolved.get("eval", {})
    lang = str(evals.get("lang", axes.get("lang", "en")))
    per_item: dict[str, dict[str, float]] = {}
    seen_ids: dict[str, set[str]] = {}
    for spec, score in record.get("scores", {}).items():
        try:
            name, items = suite_items(spec, evals.get("data_root"), evals.get("limit"), evals.get("gen_n"),
                                      evals.get("gen_seed"), lang)
        except (OSError, ValueError, KeyError) as exc:  # e.g. a file suite whose data is absent here
            log.warning("%s: suite %s cannot be loaded (%s); skipped", job_id, spec, exc)
            continue
        accuracy = item_accuracy(read_samples(folder, score, name))
        if not accuracy:
            log.warning("%s: no samples found for %s", job_id, spec)
            continue
        job["suites"][spec], per_item[spec], seen_ids[spec] = suite_numbers(
            job_id, {**score, "suite": spec}, items, accuracy, sft, grpo)
    return job, per_item, seen_ids


def analyse(study_dir: Path, recipe_override: Path | None = None) -> dict[str, Any]:
    """Every finished job of the study folder (see the module doc)."""
    study = json.loads((study_dir / "study.json").read_text(encoding="utf-8"))
    model_kinds = {m["name"]: m.get("kind") for m in study.get("models", [])}
    jobs: list[dict[str, Any]] = []
    per_item: dict[str, dict[str, dict[str, float]]] = {}  # job id -> suite -> {item_id: acc}
    seen_ids: dict[str, dict[str, set[str]]] = {}  # job id -> suite -> seen item ids
    for kind in ("baseline", "cell"):
        for folder in sorted(p for p in (study_dir / f"{kind}s").glob("*") if p.is_dir()):
            try:
                record = json.loads((folder / "result.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                log.info("skipping %s: no finished result.json", folder.name)
                continue
            job, per_item[folder.name], seen_ids[folder.name] = analyse_job(
                folder, kind, record, model_kinds, recipe_override)
            job["id"] = folder.name
            jobs.append(job)
    add_deltas(jobs, per_item, seen_ids)
    return {"study_dir": str(study_dir), "suites": list(study.get("suites", [])), "seen_definition": SEEN,
            "jobs": jobs}


def add_deltas(jobs: list[dict[str, Any]], per_item: Mapping[str, Mapping[str, Mapping[str, float]]],
               seen_ids: Mapping[str, Mapping[str, set[str]]]) -> None:
    """Cell minus baseline of the same model/template/lang, on all items and on the cell's unseen items."""
    def match(axes: Mapping[str, Any]) -> tuple[Any, ...]:
        return axes.get("model"), axes.get("template"), axes.get("lang")

    baselines = {match(j["axes"]): j["id"] for j in jobs if j["kind"] == "baseline"}
    for job in (j for j in jobs if j["kind"] == "cell"):
        base = baselines.get(match(job["axes"]))
        job["baseline"] = base
        for spec, numbers in job["suites"].items():
            base_acc = per_item.get(base, {}).get(spec) if base else None
            cell_acc, seen = per_item[job["id"]][spec], seen_ids[job["id"]][spec]
            common = [i for i in cell_acc if base_acc and i in base_acc]
            for label, ids in (("all", common), ("unseen", [i for i in common if i not in seen])):
                b = _mean(base_acc[i] for i in ids) if base_acc else None
                c = _mean(cell_acc[i] for i in ids)
                numbers[f"baseline_{label}"] = b
                numbers[f"delta_{label}"] = c - b if b is not None and c is not None else None


# --------------------------------------------------------------------------- the table

FIELDS = ("n", "seen_frac", "acc_all", "acc_unseen", "delta_all", "delta_unseen")


def _fmt(value: float | None, percent: bool = True, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:+.1f}" if signed else (f"{100 * value:.1f}" if percent else f"{value:g}")


def _avg(members: Sequence[Mapping[str, Any]], name: str) -> float | None:
    values = [numbers[name] for numbers in members if numbers.get(name) is not None]
    return statistics.fmean(values) if values else None


def _extra_axes(jobs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Axes besides model, mixture and seed that vary between cells of one model (template follows model)."""
    values: dict[tuple[str, Any], set[str]] = defaultdict(set)
    for job in (j for j in jobs if j["kind"] == "cell"):
        for name, value in job["axes"].items():
            values[(name, job["axes"].get("model"))].add(str(value))
    fixed = ("model", "mixture", "seed")
    return sorted({name for (name, _), found in values.items() if name not in fixed and len(found) > 1})


def table(result: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Markdown table: per (model, mixture, other varying axes, suite) the mean over seeds."""
    jobs, extra = result["jobs"], _extra_axes(result["jobs"])
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = defaultdict(list)
    for job in jobs:
        axes = job["axes"]
        label = (str(axes.get("model")), str(axes.get("mixture", "(baseline)")),
                 *(str(axes.get(k, "-")) for k in extra))
        for spec, numbers in job["suites"].items():
            groups[(*label, spec)].append(numbers)
    order = {s: i for i, s in enumerate(result["suites"])}
    columns = ["model", "mixture", *extra, "suite", "seeds", "n", "seen %", "acc all", "acc unseen",
               "Δ all", "Δ unseen"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    rows = []
    def sort_key(key: tuple[str, ...]) -> tuple[Any, ...]:
        return key[0], key[1] != "(baseline)", key[1:-1], order.get(key[-1], len(order))

    for key in sorted(groups, key=sort_key):
        members = groups[key]
        row = {"group": list(key[:-1]), "suite": key[-1], "seeds": len(members),
               **{name: _avg(members, name) for name in FIELDS}}
        rows.append(row)
        shown = [_fmt(row["n"], percent=False), _fmt(row["seen_frac"]), _fmt(row["acc_all"]),
                 _fmt(row["acc_unseen"]), _fmt(row["delta_all"], signed=True),
                 _fmt(row["delta_unseen"], signed=True)]
        lines.append("| " + " | ".join([*key, str(len(members)), *shown]) + " |")
    return "\n".join(lines), rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("study_dir", type=Path, help="the output folder of `mdrl study`")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default STUDY_DIR/heldout.json)")
    parser.add_argument("--recipe", type=Path, default=None,
                        help="a tiny recipe JSON (mdrl_recipe.json or TinyRecipe.to_dict()) for every model")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not (args.study_dir / "study.json").is_file():
        parser.error(f"{args.study_dir} holds no study.json: give the output folder of `mdrl study`")
    result = analyse(args.study_dir, args.recipe)
    markdown, rows = table(result)
    result["table"] = rows
    out = args.out or args.study_dir / "heldout.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("wrote %s (%d jobs)", out, len(result["jobs"]))
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
