"""TRL reward adapter: mdrl's verifiers as GRPOTrainer reward functions, one per domain.

TRL calls every reward function on the whole rollout batch with the dataset's columns as keyword
arguments (`completions, **columns -> list[float | None]`). A domain's function returns None on the
rows of other domains, so TRL logs `rewards/<domain>/mean` for each domain separately and sums the
non-None values into the reward. All functions of one run share a `BatchScorer`, which scores the
batch once (every row, through `mdrl.compute_score` on `workers` threads, or the domain's own
batch scorer (`Domain.score_batch`) where it has one: code rows go to the sandbox pool in one round), then:
  * logs `rewards/<domain>/acc`, `rewards/<domain>/length` (completion tokens),
    `rewards/<domain>/zero_std_groups` (share of that domain's groups whose rewards are all equal)
    and `data/<domain>/prompts` (prompts of that domain in the batch) through TRL's `log_metric`;
  * hands the consumed rows (domain, difficulty, row id) to an optional ledger, which is how the
    engine proves mixture proportions and curriculum order on what the trainer actually consumed.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, cast

from mdrl.domains.base import DataError
from mdrl.domains.registry import domain_for_source, get_domain
from mdrl.reward import compute_score
from mdrl.verify.shaping import RewardConfig

log = logging.getLogger(__name__)

#: Called once per rollout batch with (trainer_state or None, consumed rows as dicts).
BatchHook = Callable[[Any, list[dict[str, Any]]], None]
#: A domain's starting reward is the mean over its first START_SAMPLES scored completions; at or
#: below FLAT_LOW or at or above FLAT_HIGH nearly every GRPO group has equal rewards: no signal.
START_SAMPLES = 32
FLAT_LOW, FLAT_HIGH = 0.02, 0.98


@dataclass(frozen=True)
class RowScore:
    """The verdict on one completion, with what the metrics need."""

    domain: str
    score: float
    acc: bool
    reason: str
    length: int


def completion_text(completion: Any) -> Any:
    """TRL hands text completions as strings and conversational ones as message lists."""
    if isinstance(completion, list):
        for message in reversed(completion):
            if isinstance(message, Mapping) and message.get("role") == "assistant":
                return message.get("content")
        return completion[-1].get("content") if completion and isinstance(completion[-1], Mapping) else None
    return completion


def _extra_info(value: Any) -> Mapping[str, Any] | None:
    # The HF export stores extra_info as JSON text so the column has one type.
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, Mapping) else None
    return value if isinstance(value, Mapping) else None


def _column(columns: Mapping[str, Any], name: str, n: int) -> list[Any]:
    values = columns.get(name)
    return list(values) if values is not None else [None] * n


class BatchScorer:
    """Scores each rollout batch once and serves every domain's reward function from that result."""

    def __init__(
        self,
        rewards: Mapping[str, RewardConfig],
        num_generations: int | None = None,
        workers: int = 1,
        on_batch: BatchHook | None = None,
    ) -> None:
        self.rewards = dict(rewards)
        self.num_generations = num_generations
        self.workers = max(1, workers)
        self.on_batch = on_batch
        self._batch: Sequence[Any] | None = None  # identity of the batch the cache belongs to
        self._scores: list[RowScore] = []
        self._first: dict[str, list[float]] = {}
        #: domain -> mean reward over its first START_SAMPLES completions (once it has that many).
        self.start_reward: dict[str, float] = {}

    def scores(self, completions: Sequence[Any], columns: Mapping[str, Any]) -> list[RowScore]:
        # TRL passes the same `completions` list object to every reward function of one batch.
        if completions is not self._batch:
            self._scores = self._score(completions, columns)
            self._batch = completions
            self._report(completions, columns)
            self._watch_start()
        return self._scores

    def _watch_start(self) -> None:
        """Warn once per domain whose starting reward leaves GRPO nothing to learn from."""
        for score in self._scores:
            if score.domain not in self.start_reward:
                self._first.setdefault(score.domain, []).append(score.score)
        for domain, values in list(self._first.items()):
            if len(values) < START_SAMPLES:
                continue
            mean = sum(values[:START_SAMPLES]) / START_SAMPLES
            self.start_reward[domain] = mean
            del self._first[domain]
            if mean <= FLAT_LOW or mean >= FLAT_HIGH:
                log.warning(
                    "%s: mean reward %.3f over its first %d completions: nearly every group's rewards are "
                    "equal, so GRPO gets no signal from this domain; choose levels, a template or a reward "
                    "(proportional) where the model starts between those ends", domain, mean, START_SAMPLES)

    def flat_start(self) -> list[str]:
        """Domains whose starting reward is at or beyond FLAT_LOW / FLAT_HIGH."""
        return sorted(d for d, mean in self.start_reward.items() if mean <= FLAT_LOW or mean >= FLAT_HIGH)

    def _score_one(self, row: tuple[Any, ...]) -> dict[str, Any]:
        completion, data_source, ground_truth, extra, domain = row
        return compute_score(
            data_source,
            completion_text(completion),
            ground_truth,
            _extra_info(extra),
            reward=self.rewards.get(domain),
        )

    def _score_batched(self, domain: str, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]] | None:
        """The domain's batch scorer (code: one sandbox-pool round for the batch), if it has one."""
        score_batch = get_domain(domain).score_batch
        if score_batch is None:
            return None
        try:
            return list(
                score_batch(
                    [completion_text(r[0]) for r in rows],
                    [r[2] for r in rows],
                    [_extra_info(r[3]) for r in rows],
                    reward=self.rewards.get(domain),
                )
            )
        except DataError:
            raise
        except Exception as exc:  # the batch path failing must not stop training: score row by row
            log.warning("%s's batch scorer failed (%r); scoring %d rows one by one", domain, exc, len(rows))
            return None

    def _score(self, completions: Sequence[Any], columns: Mapping[str, Any]) -> list[RowScore]:
        n = len(completions)
        if columns.get("data_source") is None or columns.get("ground_truth") is None:
            raise KeyError(
                "the training dataset needs data_source and ground_truth columns for mdrl's rewards"
            )
        sources = _column(columns, "data_source", n)
        domains = [
            d if isinstance(d, str) and d else domain_for_source(s).name
            for d, s in zip(_column(columns, "domain", n), sources)
        ]
        rows = list(
            zip(
                completions,
                sources,
                _column(columns, "ground_truth", n),
                _column(columns, "extra_info", n),
                domains,
            )
        )
        results: list[dict[str, Any] | None] = [None] * n
        for domain in sorted(set(domains)):
            where = [i for i in range(n) if domains[i] == domain]
            batched = self._score_batched(domain, [rows[i] for i in where])
            if batched is not None:
                for i, result in zip(where, batched):
                    results[i] = result
        todo = [i for i in range(n) if results[i] is None]
        if self.workers == 1 or len(todo) <= 1:
            scored = [self._score_one(rows[i]) for i in todo]
        else:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(todo))) as pool:
                scored = list(pool.map(self._score_one, [rows[i] for i in todo]))
        for i, result in zip(todo, scored):
            results[i] = result
        ids = _column(columns, "completion_ids", n)
        out = []
        for i, result in enumerate(cast("list[dict[str, Any]]", results)):  # both paths scored every row
            text = completion_text(completions[i])
            length = len(ids[i]) if ids[i] is not None else len(text or "")
            out.append(
                RowScore(
                    domains[i], float(result["score"]), bool(result["acc"]), str(result["reason"]), length
                )
            )
        return out

    def _groups(self, prompts: Sequence[Any] | None, n: int) -> list[range]:
        """Consecutive rows sharing a prompt (TRL's sampler repeats each prompt num_generations times)."""
        size = self.num_generations or 1
        if size <= 1 or n % size:
            return []
        groups = [range(start, start + size) for start in range(0, n, size)]
        if prompts is not None and any(prompts[i] != prompts[g.start] for g in groups for i in g):
            return []  # a process holding partial groups: no honest per-group statistic here
        return groups

    def _report(self, completions: Sequence[Any], columns: Mapping[str, Any]) -> None:
        scores = self._scores
        n = len(scores)
        log_metric = columns.get("log_metric")
        groups = self._groups(columns.get("prompts"), n)
        row_ids = _column(columns, "mdrl_row", n)
        if any(r is not None for r in row_ids):  # one entry per prompt: where the plan's row id changes
            starts = [i for i in range(n) if i == 0 or row_ids[i] != row_ids[i - 1]]
        else:
            starts = [g.start for g in groups] if groups else list(range(n))
        if callable(log_metric):
            for domain in sorted({s.domain for s in scores}):
                mine = [s for s in scores if s.domain == domain]
                log_metric(f"rewards/{domain}/acc", sum(s.acc for s in mine) / len(mine))
                log_metric(f"rewards/{domain}/length", sum(s.length for s in mine) / len(mine))
                log_metric(f"data/{domain}/prompts", float(sum(scores[i].domain == domain for i in starts)))
                own_groups = [g for g in groups if scores[g.start].domain == domain]
                if own_groups:
                    flat = sum(len({scores[i].score for i in g}) == 1 for g in own_groups)
                    log_metric(f"rewards/{domain}/zero_std_groups", flat / len(own_groups))
        if self.on_batch is not None:
            epochs = _column(columns, "mdrl_epoch", n)
            difficulties = _column(columns, "difficulty", n)
            consumed = [
                {
                    "row": row_ids[i],
                    "epoch": epochs[i],
                    "domain": scores[i].domain,
                    "difficulty": difficulties[i],
                }
                for i in starts
            ]
            self.on_batch(columns.get("trainer_state"), consumed)


class DomainReward:
    """TRL reward function of one domain: its rows' scores, None elsewhere. TRL logs it by `__name__`."""

    def __init__(self, domain: str, scorer: BatchScorer) -> None:
        self.domain = domain
        self.scorer = scorer
        self.__name__ = domain

    def __call__(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        return [
            s.score if s.domain == self.domain else None for s in self.scorer.scores(completions, columns)
        ]

    def __repr__(self) -> str:
        return f"DomainReward({self.domain!r})"


def reward_configs(
    domains: Sequence[str],
    mode: str | None = None,
    format_weight: float | None = None,
    per_domain: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, RewardConfig]:
    """Each domain's RewardConfig: its default, then the run-wide knobs, then its own overrides."""
    from mdrl.train.config import RewardSettings

    settings = RewardSettings(mode=mode, format_weight=format_weight, domains=dict(per_domain or {}))
    return {name: settings.for_domain(name, get_domain(name).default_reward) for name in domains}


def make_reward_funcs(
    domains: Sequence[str],
    rewards: Mapping[str, RewardConfig] | None = None,
    num_generations: int | None = None,
    workers: int = 1,
    on_batch: BatchHook | None = None,
) -> list[DomainReward]:
    """One TRL reward function per domain, sharing one scorer. Pass them as `GRPOTrainer(reward_funcs=...)`.

    `rewards` maps a domain to its RewardConfig (default: each domain's own default). Rows whose domain
    is not in `domains` get no reward from any function (TRL then warns and gives them no advantage).
    """
    if not domains:
        raise ValueError("make_reward_funcs needs at least one domain")
    names = [get_domain(name).name for name in domains]  # raises on a typo, with suggestions
    configs = dict(rewards) if rewards is not None else {n: get_domain(n).default_reward for n in names}
    scorer = BatchScorer(configs, num_generations=num_generations, workers=workers, on_batch=on_batch)
    return [DomainReward(name, scorer) for name in names]
