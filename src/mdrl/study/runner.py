"""The resumable grid runner.

A study's folder holds one sub-folder per job: `baselines/<id>/` (a starting model's evaluation)
and `cells/<id>/` (training + evaluation). A job is finished when its `result.json` exists and still
matches the study (same training settings, same evaluation settings, every suite scored); results
are written atomically (a temporary file, then rename), so a kill leaves either the old state or the
new one, never half a file. Re-running the study skips finished jobs and says so. Within a cell,
`train.json` marks a finished training run, so a kill during evaluation re-evaluates without
retraining, and mdrl.eval's own cache resumes an evaluation item by item.

Training and evaluation are not done here: a `CellRunner` does them. `MdrlCellRunner` builds each
cell's data with mdrl.data, trains with mdrl.train and evaluates with mdrl.eval; tests and users can
plug their own (`mdrl study --runner module:factory`).

Layout of OUT:
    study.json                       the resolved study config
    baselines/<id>/result.json       {scores: {suite: metrics}, ...}
    cells/<id>/train-<key>/          the training run (mdrl.train's run folder), one per training setting
    cells/<id>/train.json            {checkpoint, train_key, ...}   (training done)
    cells/<id>/result.json           {scores, checkpoint, resolved_config, ...}   (cell done)
    cells/<id>/error.json            the last failure of an unfinished cell
    results.json  results.md  report.html  plots/*.png
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol, cast

from mdrl.specs import EvalSpec, deep_merge
from mdrl.study.config import Baseline, Cell, ModelSpec, StudyConfig, config_hash
from mdrl.study.files import read_json, write_json_atomic
from mdrl.study.significance import item_accuracies

log = logging.getLogger(__name__)

RESULT = "result.json"
TRAIN = "train.json"
ERROR = "error.json"


# --------------------------------------------------------------------------- files


# --------------------------------------------------------------------------- the runner protocol


class CellRunner(Protocol):
    """What the grid needs done: resolve a starting model, train a cell, evaluate a model."""

    def model_path(self, model: ModelSpec, work_dir: Path) -> str:
        """The path or hub name to train from and evaluate (e.g. builds the tiny model once)."""
        ...

    def train(self, cell: Cell, model_path: str, settings: Mapping[str, Any], work_dir: Path
              ) -> str | Mapping[str, Any]:
        """Train one cell from `model_path` in `work_dir` (its own folder per training setting, kept
        across restarts so a run can resume); return the checkpoint path (or a mapping with
        `checkpoint` and any numbers worth keeping). `settings` is the cell's mdrl.train config."""
        ...

    def evaluate(self, model_path: str, suites: Sequence[str], template: str, lang: str, work_dir: Path
                 ) -> Mapping[str, Mapping[str, Any]]:
        """Evaluate a model on suites: {suite spec: metrics (at least the study's metric)}."""
        ...


class MdrlCellRunner:
    """The real thing: each cell is one mdrl.train run (which builds its data with mdrl.data), and
    every model is evaluated with mdrl.eval."""

    def __init__(self, config: StudyConfig, progress: bool = False) -> None:
        self.config = config
        self.progress = progress

    def model_path(self, model: ModelSpec, work_dir: Path) -> str:
        """Hub names and folders as they are; `tiny:base` / `tiny:instruct` are mdrl's embedded models
        (`mdrl.tiny.recipe.ready_models`: the shipped build, else built once in the cache)."""
        if not model.path.startswith("tiny:"):
            return model.path
        from mdrl.tiny.recipe import FLAVOURS, ready_models

        flavour = model.path.split(":", 1)[1]
        if flavour not in FLAVOURS:
            raise ValueError(f"model {model.name!r}: unknown tiny model {model.path!r}; use tiny:base or tiny:instruct")
        folder, _record = ready_models()
        return str(folder / flavour)

    def check(self, cell: Cell, settings: Mapping[str, Any]) -> None:
        """Validate a cell's train config, and that the study's released files it reads exist, before
        anything runs (a typo or a missing file fails now, not in cell 17)."""
        from mdrl.data.sources import SourceSpec, paper_file

        config = train_config(settings, settings["model"]["path"], Path("unused"))
        for source in config.data.sources:
            spec = source if isinstance(source, SourceSpec) else SourceSpec.parse(source) \
                if isinstance(source, str) else SourceSpec.from_mapping(source)
            if spec.kind == "paper":
                paper_file(spec.path or "", spec.split)  # DataError naming the missing file

    def train(self, cell: Cell, model_path: str, settings: Mapping[str, Any], work_dir: Path) -> dict[str, Any]:
        config = train_config(settings, model_path, work_dir)
        # after the settings were hashed: the bar changes how a cell is watched, not what it trains
        config = replace(config, run=replace(config.run, progress=self.progress))
        run = _train_entry_point()
        outcome = train_outcome(run(config), config)
        if outcome.get("flat_start"):
            log.warning("cell %s: %s started with a mean reward of %s: no GRPO signal there", cell.cell_id,
                        ", ".join(outcome["flat_start"]),
                        ", ".join(f"{outcome['start_reward'][d]:.3f}" for d in outcome["flat_start"]))
        return outcome

    def evaluate(self, model_path: str, suites: Sequence[str], template: str, lang: str, work_dir: Path
                 ) -> dict[str, dict[str, Any]]:
        from mdrl.eval import EvalOptions, SamplingConfig, evaluate
        from mdrl.templates import Template

        settings = self.config.eval
        shared = {f.name: getattr(settings, f.name) for f in fields(EvalSpec)}
        options = EvalOptions(**shared, lang=lang, progress=self.progress)
        summary = evaluate(model_path, list(suites), template=Template(template, lang),
                           sampling=SamplingConfig(**dict(settings.sampling)), out_dir=work_dir,
                           backend=settings.backend, backend_options=dict(settings.backend_options),
                           options=options)
        return scores_from_summary(summary, suites)


def train_config(settings: Mapping[str, Any], model_path: str, output_dir: Path) -> Any:
    """The cell's validated mdrl.train TrainConfig, with the resolved model and its run folder."""
    from mdrl.train.config import TrainConfig

    mapping = deep_merge(settings, {"model": {"path": model_path}, "run": {"output_dir": str(output_dir)}})
    try:
        return TrainConfig.from_dict(mapping)
    except ValueError as exc:
        raise ValueError(f"train config of cell {settings.get('name')!r}: {exc}") from None


def _train_entry_point() -> Callable[[Any], Any]:
    try:
        module = importlib.import_module("mdrl.train")
    except ImportError as exc:
        raise RuntimeError(f"mdrl.train cannot be imported ({exc}); plug a runner with --runner") from None
    for name in ("run_training", "train"):
        entry = getattr(module, name, None)
        if callable(entry):
            return entry
    raise RuntimeError("mdrl.train exposes no run_training()/train() entry point yet; plug a runner with --runner")


def train_outcome(outcome: Any, config: Any) -> dict[str, Any]:
    """Whatever mdrl.train returned -> {checkpoint, ...numbers}."""
    if isinstance(outcome, (str, Path)):
        return {"checkpoint": str(outcome)}
    if isinstance(outcome, Mapping):
        data = dict(outcome)
    elif hasattr(outcome, "__dataclass_fields__"):
        from dataclasses import asdict

        data = asdict(outcome)
    else:
        data = {}
    checkpoint = data.get("checkpoint") or data.get("final_model") or data.get("model_dir")
    if not checkpoint:
        raise RuntimeError(f"mdrl.train returned no trained model for {config.name!r} (got {sorted(data)}); with "
                           "engine verl, run the written launch script on the cluster, then re-run the study")
    data["checkpoint"] = str(checkpoint)
    return {k: v for k, v in data.items() if _jsonable(v)}


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)  # only plain JSON values go into train.json / result.json
    except (TypeError, ValueError):
        return False
    return True


def scores_from_summary(summary: Mapping[str, Any], suites: Sequence[str]) -> dict[str, dict[str, Any]]:
    """mdrl.eval's summary (one model, one template) -> {suite spec as given: its metrics}.

    Runs come back in the order the suites were given; generated suites get canonical names there,
    so the spec the study wrote is kept as the key.
    """
    runs = list(summary["runs"])
    if len(runs) != len(suites):
        raise RuntimeError(f"mdrl.eval returned {len(runs)} runs for {len(suites)} suites")
    keep = ("accuracy", "mean_score", "acc_strict", "acc_flexible", "format_error_rate", "mean_length",
            "length_unit", "n_items", "n_samples", "breakdown", "fail_reasons", "suite", "samples_file")
    out = {}
    for spec, run in zip(suites, runs):
        out[spec] = {key: run[key] for key in run if key in keep or key.startswith("pass@")}
    return out


def load_runner(spec: str, config: StudyConfig) -> CellRunner:
    """`package.module:factory` -> factory(config), for `mdrl study --runner`."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"runner {spec!r}: use package.module:factory")
    factory = getattr(importlib.import_module(module_name), attr, None)
    if factory is None:
        raise ValueError(f"runner {spec!r}: {module_name} has no {attr!r}")
    return factory(config)


# --------------------------------------------------------------------------- the plan


FINISHED, EVALUATE, RUN, STALE = "finished", "evaluate", "run", "stale"


@dataclass
class Job:
    """One unit of the grid: a baseline evaluation or a cell (train + evaluate)."""

    kind: str  # "baseline" | "cell"
    unit: Baseline | Cell
    folder: Path
    train_key: str | None
    eval_key: str
    status: str = RUN
    #: suites still to evaluate (all when status is RUN/STALE)
    missing: list[str] = field(default_factory=list)
    #: a cell's further evaluation templates (eval.templates) -> the suites still to evaluate under each
    missing_templates: dict[str, list[str]] = field(default_factory=dict)

    @property
    def cell_id(self) -> str:
        return self.unit.cell_id

    @property
    def label(self) -> str:
        return self.unit.label


@dataclass
class Plan:
    jobs: list[Job]

    def count(self, *statuses: str) -> int:
        return sum(job.status in statuses for job in self.jobs)

    @property
    def pending(self) -> list[Job]:
        return [job for job in self.jobs if job.status != FINISHED]

    def summary(self) -> str:
        """'skipped 4 finished cells, running 8' (+ what the 8 are)."""
        skipped, running = self.count(FINISHED), len(self.pending)
        text = f"skipped {skipped} finished cells, running {running}"
        details = []
        evaluate_only = sum(job.status == EVALUATE and job.kind == "cell" for job in self.jobs)
        stale = self.count(STALE)
        baselines = sum(job.kind == "baseline" for job in self.pending)
        if baselines:
            details.append(f"{baselines} baseline evaluation{'s' * (baselines != 1)}")
        if evaluate_only:
            details.append(f"{evaluate_only} need evaluation only")
        if stale:
            details.append(f"{stale} rerun because their settings changed")
        if details:
            text += f" ({'; '.join(details)})"
        return text


@dataclass
class StudyResults:
    """What `run_study` returns: counts, failures, the tables and where the outputs are."""

    out_dir: Path
    counts: dict[str, int]
    failed: list[dict[str, Any]]
    results: dict[str, Any]
    paths: dict[str, Path]
    markdown: str

    @property
    def report_path(self) -> Path:
        return self.paths["report"]


# --------------------------------------------------------------------------- the study


class Study:
    """A study config bound to an output folder and a CellRunner."""

    def __init__(self, config: StudyConfig, out_dir: str | Path, runner: CellRunner | None = None) -> None:
        self.config = config
        self.out_dir = Path(out_dir)
        self.runner = runner if runner is not None else MdrlCellRunner(config)
        self._model_paths: dict[str, str] = {}

    # ----------------------------------------------------------------- planning

    def jobs(self) -> list[Job]:
        config = self.config
        jobs = []
        for base in config.baselines():
            jobs.append(Job("baseline", base, self.out_dir / "baselines" / base.cell_id, None,
                            config_hash(config.eval_settings(base.template, base.lang) | {"model": base.model.path})))
        for cell in config.cells():
            jobs.append(Job("cell", cell, self.out_dir / "cells" / cell.cell_id,
                            config_hash(config.train_settings(cell)),
                            config_hash(config.eval_settings(cell.template, cell.lang))))
        return jobs

    def plan(self) -> Plan:
        """Each job's status from what is on disk."""
        jobs = self.jobs()
        suites = list(self.config.suites)
        for job in jobs:
            result = read_json(job.folder / RESULT)
            trained = read_json(job.folder / TRAIN) if job.kind == "cell" else None
            extra = self.config.eval_templates(cast(Cell, job.unit)) if job.kind == "cell" else []
            job.missing, job.missing_templates = suites, {t: suites for t in extra}
            same_training = job.kind == "baseline" or (
                result is not None and result.get("train_key") == job.train_key)
            if result is not None and same_training and result.get("eval_key") == job.eval_key:
                job.missing = [s for s in suites if s not in result.get("scores", {})]
                done = result.get("template_scores", {})
                job.missing_templates = {t: [s for s in suites if s not in done.get(t, {})] for t in extra}
                job.missing_templates = {t: left for t, left in job.missing_templates.items() if left}
                if not job.missing and not job.missing_templates:
                    job.status = FINISHED
                    continue
                if job.kind == "baseline" or _checkpoint_exists(result):
                    job.status = EVALUATE
                    continue
                job.missing, job.missing_templates = suites, {t: suites for t in extra}
            if job.kind == "baseline" and result is not None:  # new evaluation settings: evaluate again
                job.status = EVALUATE
                continue
            if job.kind == "cell" and trained is not None and trained.get("train_key") == job.train_key \
                    and _checkpoint_exists(trained):
                job.status = EVALUATE
                continue
            job.status = STALE if result is not None or trained is not None else RUN
        return Plan(jobs)

    def check(self, plan: Plan | None = None) -> None:
        """Let the runner validate every pending cell's settings (when it can) before anything runs."""
        check = getattr(self.runner, "check", None)
        if check is None:
            return
        for job in (plan or self.plan()).pending:
            if job.kind == "cell":
                check(job.unit, self.config.train_settings(cast(Cell, job.unit)))

    # ----------------------------------------------------------------- running

    def run(self, plan: Plan | None = None, progress: bool = False, fail_fast: bool = False,
            write_outputs: bool = True, workers: int = 1) -> StudyResults:
        """Run the pending jobs; `workers` > 1 runs that many jobs at once, each in its own process."""
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        plan = plan or self.plan()
        self.check(plan)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive(self.out_dir / ".lock"):
            return self._run(plan, progress, fail_fast, write_outputs, workers)

    def _run(self, plan: Plan, progress: bool, fail_fast: bool, write_outputs: bool, workers: int
             ) -> StudyResults:
        write_json_atomic(self.out_dir / "study.json", self.config.resolved())
        log.info("%s: %s", self.config.name, plan.summary())
        failed: list[dict[str, Any]] = []
        ran = 0
        pending = plan.pending
        bar = _progress_bar(len(pending), progress)
        try:
            for job, error in self._execute(pending, workers, fail_fast, bar):
                if error is None:
                    ran += 1
                else:
                    log.error("%s failed: %s", job.cell_id, error["error"])
                    write_json_atomic(job.folder / ERROR, error)
                    failed.append(error)
                bar.update(1)
        finally:
            bar.close()
        counts = {"planned": len(plan.jobs), "skipped": plan.count(FINISHED), "ran": ran, "failed": len(failed),
                  "evaluate_only": plan.count(EVALUATE), "stale": plan.count(STALE)}
        if not write_outputs:
            return StudyResults(self.out_dir, counts, failed, {}, {}, "")
        return self.report(counts, failed)

    def _execute(self, pending: Sequence[Job], workers: int, fail_fast: bool, bar: Any
                 ) -> Iterator[tuple[Job, dict[str, Any] | None]]:
        """Yield (job, None) for each finished job and (job, error record) for each failed one."""
        if workers == 1 or len(pending) <= 1:
            for job in pending:
                bar.set_description(f"{job.kind} {job.cell_id}"[:60])
                try:
                    self._run_job(job)
                except Exception:  # one broken cell must not sink a week-long grid
                    if fail_fast:
                        raise
                    yield job, _error_record(job)
                    continue
                yield job, None
            return
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        # models are resolved (built, downloaded) once here, not raced for by the workers; one that fails
        # here fails again in its jobs' workers, which record the error as a sequential run would
        for job in pending:
            with contextlib.suppress(Exception):
                self._model(job.unit.model)
        threads = _worker_threads(workers)
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_worker_init, initargs=(threads, os.getpid())) as pool:
            futures = {pool.submit(_run_job_in_worker, self.config, self.out_dir, self.runner,
                                   dict(self._model_paths), job): job for job in pending}
            bar.set_description(f"{workers} workers")
            remaining = set(futures)
            while remaining:
                done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for future in done:
                    error = future.result()
                    if error is not None and fail_fast:
                        for other in remaining:
                            other.cancel()
                        raise RuntimeError(f"{futures[future].cell_id} failed: {error['error']}")
                    yield futures[future], error

    def _model(self, model: ModelSpec) -> str:
        if model.name not in self._model_paths:
            self._model_paths[model.name] = self.runner.model_path(model, self.out_dir)
        return self._model_paths[model.name]

    def _run_job(self, job: Job) -> None:
        (job.folder / ERROR).unlink(missing_ok=True)
        if job.kind == "baseline":
            self._run_baseline(job)
        else:
            self._run_cell(job)

    def _run_baseline(self, job: Job) -> None:
        base = cast(Baseline, job.unit)
        started = time.perf_counter()
        scores = self._previous_scores(job)
        scores.update(self._evaluate(self._model(base.model), job, base.template, base.lang))
        record = {"kind": "baseline", "cell_id": job.cell_id, "label": base.label,
                  "axes": {"model": base.model.name, "template": base.template, "lang": base.lang},
                  "model_path": base.model.path, "eval_key": job.eval_key, "scores": _ordered(scores, self.config.suites),
                  "seconds": {"eval": round(time.perf_counter() - started, 3)},
                  "resolved_config": {"model": {"name": base.model.name, "path": base.model.path,
                                                "kind": base.model.kind},
                                      "eval": self.config.eval_settings(base.template, base.lang)},
                  "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_json_atomic(job.folder / RESULT, record)

    def _run_cell(self, job: Job) -> None:
        cell = cast(Cell, job.unit)
        settings = self.config.train_settings(cell)
        trained = None
        if job.status == EVALUATE:  # training is done: its record is in train.json (and result.json)
            trained = next((r for r in (read_json(job.folder / RESULT), read_json(job.folder / TRAIN))
                            if r is not None and r.get("train_key") == job.train_key and _checkpoint_exists(r)),
                           None)
        train_seconds = 0.0
        if trained is None:
            started = time.perf_counter()
            # one folder per training setting: an interrupted run resumes from its own checkpoints, and
            # a run with changed settings starts fresh instead of mixing into the old one
            outcome = self.runner.train(cell, self._model(cell.model), settings,
                                        job.folder / f"train-{job.train_key}")
            outcome = {"checkpoint": str(outcome)} if isinstance(outcome, (str, Path)) else dict(outcome)
            if not outcome.get("checkpoint"):
                raise RuntimeError(f"the runner's train() gave no checkpoint for {cell.cell_id}")
            train_seconds = time.perf_counter() - started
            trained = {"train_key": job.train_key, "checkpoint": str(outcome["checkpoint"]),
                       "train": {k: v for k, v in outcome.items() if k != "checkpoint"},
                       "seconds": {"train": round(train_seconds, 3)}}
            write_json_atomic(job.folder / TRAIN, trained)
        started = time.perf_counter()
        previous = self._previous_result(job)
        scores = self._previous_scores(job, previous)
        scores.update(self._evaluate(trained["checkpoint"], job, cell.template, cell.lang))
        template_scores = {t: dict(v) for t, v in (previous or {}).get("template_scores", {}).items()
                           if t in self.config.eval_templates(cell)}
        for template, suites in job.missing_templates.items():
            template_scores.setdefault(template, {}).update(
                self._evaluate(trained["checkpoint"], job, template, cell.lang, suites))
        record = {
            "kind": "cell", "cell_id": job.cell_id, "label": cell.label,
            "axes": {"model": cell.model.name, "mixture": cell.mixture.name, "reward": cell.reward.name,
                     "template": cell.template, "curriculum": cell.curriculum, "lang": cell.lang,
                     "seed": cell.seed},
            "variant": list(cell.variant), "mixture_keys": list(cell.mixture.keys),
            "train_key": job.train_key, "eval_key": job.eval_key,
            "checkpoint": trained["checkpoint"], "train": trained.get("train", {}),
            "scores": _ordered(scores, self.config.suites),
            "template_scores": {t: _ordered(v, self.config.suites) for t, v in template_scores.items()},
            "seconds": {"train": trained.get("seconds", {}).get("train", round(train_seconds, 3)),
                        "eval": round(time.perf_counter() - started, 3)},
            "resolved_config": {"train": settings, "eval": self.config.eval_settings(cell.template, cell.lang),
                                "suites": list(self.config.suites)},
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        write_json_atomic(job.folder / RESULT, record)

    def _previous_result(self, job: Job) -> dict[str, Any] | None:
        """result.json while it still holds (same training, same evaluation settings)."""
        if job.status != EVALUATE:
            return None
        previous = read_json(job.folder / RESULT)
        if previous is None or previous.get("eval_key") != job.eval_key or \
                previous.get("train_key") != job.train_key:
            return None
        return previous

    def _previous_scores(self, job: Job, previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Scores already in result.json that still hold, for the suites not evaluated again."""
        previous = previous if previous is not None else self._previous_result(job)
        if previous is None:
            return {}
        return {s: v for s, v in previous.get("scores", {}).items() if s not in job.missing}

    def _evaluate(self, model_path: str, job: Job, template: str, lang: str,
                  suites: Sequence[str] | None = None) -> dict[str, Any]:
        missing = list(suites) if suites is not None else list(job.missing)
        if not missing:
            return {}
        scores = self.runner.evaluate(model_path, missing, template, lang, job.folder / "eval")
        absent = [s for s in missing if s not in scores]
        if absent:
            raise RuntimeError(f"the runner's evaluate() gave no scores for {absent}")
        metric = self.config.eval.metric
        for suite in missing:
            if metric not in scores[suite]:
                raise RuntimeError(f"suite {suite!r} has no {metric!r} among {sorted(scores[suite])}")
        return {s: _with_items(scores[s]) for s in missing}

    # ----------------------------------------------------------------- collecting and reporting

    def records(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Finished cells and baselines of the current grid (stale or partial results left out)."""
        plan = self.plan()
        cells, baselines = [], []
        for job in plan.jobs:
            if job.status != FINISHED:
                continue
            record = read_json(job.folder / RESULT)
            if record is None:
                continue
            if job.kind == "cell":  # from the mixture's definition (part of the train key), not as once stored
                record["mixture_keys"] = list(cast(Cell, job.unit).mixture.keys)
            # runs recorded before per-item accuracies were kept get them from their samples files
            record["scores"] = {s: _with_items(v, self.out_dir) for s, v in record.get("scores", {}).items()}
            record["template_scores"] = {t: {s: _with_items(v, self.out_dir) for s, v in scores.items()}
                                         for t, scores in record.get("template_scores", {}).items()}
            (baselines if job.kind == "baseline" else cells).append(record)
        return cells, baselines

    def report(self, counts: Mapping[str, int] | None = None, failed: Sequence[Mapping[str, Any]] = ()
               ) -> StudyResults:
        """Tables, plots, results.json/md and report.html from every finished job."""
        from mdrl.study.report import write_outputs

        cells, baselines = self.records()
        plan_counts = dict(counts) if counts is not None else _counts_of(self.plan())
        results, paths, markdown = write_outputs(self.config, self.out_dir, cells, baselines, plan_counts,
                                                 list(failed) or _recorded_failures(self.out_dir, self.jobs()))
        return StudyResults(self.out_dir, plan_counts, list(failed), results, paths, markdown)


def _error_record(job: Job) -> dict[str, Any]:
    """error.json of a job whose exception is being handled."""
    kind, exc = sys.exc_info()[:2]
    return {"cell_id": job.cell_id, "kind": job.kind, "error": f"{getattr(kind, '__name__', kind)}: {exc}",
            "traceback": traceback.format_exc(), "at": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _worker_threads(workers: int) -> int:
    """torch threads for each of `workers` processes: the cores shared out, capped by the parent's own
    setting (`mdrl demo --threads`). A spawned worker would otherwise take every core, and N workers x all
    cores thrash: two tiny-model GRPO runs side by side on 2 cores took 11-16 s a step with 2 threads
    each, 3-5 s with 1 each."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    share = max(1, cores // workers)
    torch = sys.modules.get("torch")
    return min(share, torch.get_num_threads()) if torch is not None else share


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGTERM this worker when the study process dies: a killed `mdrl study -j N` must not
    leave its workers (and their sandbox servers) training on, unseen, with the cores it gave up."""
    if not sys.platform.startswith("linux"):
        return
    from mdrl.sandbox._seccomp import prctl

    pr_set_pdeathsig = 1
    try:
        prctl(pr_set_pdeathsig, signal.SIGTERM)
    except OSError as exc:
        log.warning("worker %d: %s", os.getpid(), exc)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _worker_init(threads: int, parent: int) -> None:
    _die_with_parent(parent)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    else:  # read by torch when a job imports it; importing it here would slow down jobs that never do
        os.environ["OMP_NUM_THREADS"] = str(threads)


def _run_job_in_worker(config: StudyConfig, out_dir: Path, runner: CellRunner, model_paths: dict[str, str],
                       job: Job) -> dict[str, Any] | None:
    """One job in a worker process: None when it finished, else its error record."""
    study = Study(config, out_dir, runner)
    study._model_paths = model_paths
    try:
        study._run_job(job)
    except Exception:
        return _error_record(job)
    return None


class StudyLockedError(RuntimeError):
    """Another process is running this study folder."""


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an advisory lock on the study folder: two runners on one folder would train the same cells.
    The kernel drops it when the process dies, so a killed run never leaves a stale lock behind."""
    import fcntl

    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            raise StudyLockedError(f"another mdrl study is running in {path.parent} (pid {owner})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _with_items(score: Mapping[str, Any], root: Path | None = None) -> dict[str, Any]:
    """A suite's metrics plus its per-item accuracies (read from the samples file mdrl.eval wrote, a
    relative path taken from `root`), which the report pairs with the starting model's for standard
    errors of the deltas."""
    out = dict(score)
    if "items" in out or not score.get("samples_file"):
        return out
    path = Path(str(score["samples_file"]))
    if not path.is_absolute() and root is not None:
        path = root / path
    if path.is_file():
        with path.open(encoding="utf-8") as handle:
            out["items"] = item_accuracies(json.loads(line) for line in handle if line.strip())
    return out


def _checkpoint_exists(record: Mapping[str, Any]) -> bool:
    checkpoint = record.get("checkpoint")
    return bool(checkpoint) and Path(str(checkpoint)).exists()


def _ordered(scores: Mapping[str, Any], suites: Sequence[str]) -> dict[str, Any]:
    return {s: scores[s] for s in suites if s in scores} | {s: v for s, v in scores.items() if s not in suites}


def _counts_of(plan: Plan) -> dict[str, int]:
    return {"planned": len(plan.jobs), "finished": plan.count(FINISHED), "pending": len(plan.pending)}


def _recorded_failures(out_dir: Path, jobs: Sequence[Job]) -> list[dict[str, Any]]:
    failures = []
    for job in jobs:
        error = read_json(job.folder / ERROR)
        if error is not None and not (job.folder / RESULT).exists():
            failures.append(error)
    return failures


class _NoBar:
    def set_description(self, _text: str) -> None:
        pass

    def update(self, _n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="cell", file=sys.stderr, dynamic_ncols=True)


def run_study(config: StudyConfig | Mapping[str, Any] | str | Path, out_dir: str | Path,
              runner: CellRunner | Callable[[StudyConfig], CellRunner] | None = None,
              progress: bool = False, fail_fast: bool = False, workers: int = 1) -> StudyResults:
    """Run (or resume) a study and write its outputs; the public entry point for `mdrl study` and
    `mdrl demo`.

    `config`: a StudyConfig, its mapping, or a YAML path. `runner`: a CellRunner, a factory taking the
    config, or None for MdrlCellRunner. `workers` > 1 runs that many jobs at once (separate processes;
    the runner must be picklable). Returns counts (`skipped`, `ran`, `failed`, ...), the tables
    (`results`, as in results.json), `markdown` and the output `paths` (`report`, `results_json`, ...).
    """
    if isinstance(config, (str, Path)):
        config = StudyConfig.from_yaml(config)
    elif not isinstance(config, StudyConfig):
        config = StudyConfig.from_mapping(config)
    if runner is not None and (isinstance(runner, type) or not hasattr(runner, "train")):
        runner = runner(config)  # a factory (a class or a function of the config)
    if runner is None:
        runner = MdrlCellRunner(config, progress=progress)
    return Study(config, out_dir, runner).run(progress=progress, fail_fast=fail_fast, workers=workers)
