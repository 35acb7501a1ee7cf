"""What the run store reports for comparisons and the admin dashboard.

Every backend answers the same questions (:meth:`RunStore.model_report`,
:meth:`RunStore.run_page`, :meth:`RunStore.model_config_changes`): PostgreSQL and Supabase in
SQL (``pipeline_model_report``, ``pipeline_run_page``), the local store with
:func:`build_model_report` over its rows. The definitions live here, once.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from pydantic import BaseModel

from analysis_pipeline._errors import InvalidInputError
from analysis_pipeline._records import RunRecord, RunStatus, StepRecord
from analysis_pipeline._registry import STEP_NAMES

__all__ = [
    "ModelConfigChange",
    "ModelDay",
    "ModelReport",
    "ModelStats",
    "RunFilter",
    "RunPage",
    "RunSummary",
    "build_model_report",
    "check_page",
    "check_step",
    "mean_money",
    "percentile",
]

MAX_PAGE = 10_000
"""Largest page a run store hands out at once (the CSV export's cap)."""


class ModelStats(BaseModel):
    """How one model did at one step over a period.

    A run counts for the model that first answered the step in it; its step cost and latency
    are summed over the step's completed rounds.

    Attributes:
        model: Model that answered the step.
        step: The step compared.
        runs: Runs in which the model answered the step.
        completed: Of those, runs that completed.
        pass_rate: Share of completed runs whose final review passed (None without any).
        mean_review_score: Mean review score of completed runs.
        mean_quality: Mean manual quality score of scored runs (None when none is scored).
        scored_runs: Runs with a manual quality score.
        mean_cost: Mean cost of the step per run in US dollars (None when all unpriced).
        mean_run_cost: Mean cost of the whole run.
        p50_latency_ms: Median step latency.
        p95_latency_ms: 95th-percentile step latency.
    """

    model: str
    step: str
    runs: int
    completed: int
    pass_rate: float | None
    mean_review_score: float | None
    mean_quality: float | None
    scored_runs: int
    mean_cost: Decimal | None
    mean_run_cost: Decimal | None
    p50_latency_ms: float
    p95_latency_ms: float

    @property
    def quality_per_dollar(self) -> float | None:
        """Quality bought per dollar of the step: manual quality (else review score) / cost.

        None when the step was unpriced, free, or nothing scored it.
        """
        quality = self.mean_quality if self.mean_quality is not None else self.mean_review_score
        if quality is None or self.mean_cost is None or self.mean_cost <= 0:
            return None
        return quality / float(self.mean_cost)


class ModelDay(BaseModel):
    """One model at one step on one UTC day (the Models page's chart).

    Attributes:
        day: The UTC day runs started on.
        model: Model that answered the step.
        runs: Runs of that day.
        mean_review_score: Mean review score of its completed runs (None without any).
        mean_cost: Mean step cost per run (None when all unpriced).
    """

    day: date
    model: str
    runs: int
    mean_review_score: float | None
    mean_cost: Decimal | None


class ModelReport(BaseModel):
    """Per-model statistics of one step and their daily series.

    Attributes:
        step: The step reported.
        models: One row per model, most runs first.
        daily: One row per day and model, oldest first.
    """

    step: str
    models: list[ModelStats]
    daily: list[ModelDay]


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs a run page lists.

    Attributes:
        status: ``running``, ``completed`` or ``failed``; None for all.
        bill: Part of the bill id (case-insensitive); None for all.
        jurisdiction: Exact jurisdiction; None for all.
        model: A model that answered some step of the run; None for all.
        since: Runs started at or after this (UTC); None for the beginning.
        until: Runs started before this; None for now.
    """

    status: RunStatus | None = None
    bill: str | None = None
    jurisdiction: str | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class RunSummary(BaseModel):
    """A run as a list shows it (no inputs, models, analysis or steps).

    Attributes:
        id: Run id.
        bill_id: The bill analysed.
        jurisdiction: Its jurisdiction.
        status: ``running``, ``completed`` or ``failed``.
        review_passed: Whether the final review passed.
        review_score: Review score of the kept analysis.
        quality_score: Manual quality score.
        rounds: Review rounds.
        cost: Total cost in US dollars (None when unpriced).
        latency_ms: Wall time.
        error: Why the run failed.
        started_at: Start (UTC).
        completed_at: End (UTC).
    """

    id: str
    bill_id: str
    jurisdiction: str
    status: RunStatus
    review_passed: bool | None
    review_score: float | None
    quality_score: float | None
    rounds: int
    cost: Decimal | None
    latency_ms: float
    error: str | None
    started_at: datetime
    completed_at: datetime | None


class RunPage(BaseModel):
    """One page of runs, newest first.

    Attributes:
        runs: The runs of the page.
        total: How many runs match the filter in all.
        offset: Runs skipped before the page.
        limit: Page size asked for.
    """

    runs: list[RunSummary]
    total: int
    offset: int
    limit: int


class ModelConfigChange(BaseModel):
    """One change of a step's model chain (the audit trail of ``set_model_config``).

    Attributes:
        step: The step changed.
        old_models: The chain before (empty when none was configured).
        new_models: The chain after.
        changed_by: Who changed it (None when the caller did not say).
        changed_at: When (UTC).
    """

    step: str
    old_models: list[str]
    new_models: list[str]
    changed_by: str | None
    changed_at: datetime


def check_step(step: str) -> str:
    """Return ``step``; raise ``InvalidInputError`` when no registered step has that name."""
    if step not in STEP_NAMES:
        raise InvalidInputError(f"unknown step {step!r}; steps are {', '.join(STEP_NAMES)}")
    return step


def check_page(offset: int, limit: int) -> None:
    """Raise ``InvalidInputError`` unless ``0 <= offset`` and ``1 <= limit <= MAX_PAGE``."""
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(
            f"a page needs offset >= 0 and 1 <= limit <= {MAX_PAGE}, got {offset}, {limit}"
        )


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (``q`` in 0..100) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def mean_money(values: Iterable[Decimal | None]) -> Decimal | None:
    """Exact mean of the known amounts (None when none is known: unpriced, never $0)."""
    known = [v for v in values if v is not None]
    return sum(known, Decimal(0)) / len(known) if known else None


@dataclass(frozen=True, slots=True)
class _Entry:
    run: RunRecord
    model: str
    cost: Decimal | None
    latency: float


def _entry(run: RunRecord, steps: Sequence[StepRecord]) -> _Entry:
    cost: Decimal | None = None
    for s in steps:
        if s.cost is not None:
            cost = (cost or Decimal(0)) + s.cost
    return _Entry(run, steps[0].model or "?", cost, sum(s.latency_ms for s in steps))


def _stats(model: str, step: str, entries: list[_Entry]) -> ModelStats:
    done = [e.run for e in entries if e.run.status == "completed"]
    scored = [e.run.quality_score for e in entries if e.run.quality_score is not None]
    latencies = [e.latency for e in entries]
    return ModelStats(
        model=model,
        step=step,
        runs=len(entries),
        completed=len(done),
        pass_rate=_mean([1.0 if r.review_passed else 0.0 for r in done]),
        mean_review_score=_mean([r.review_score for r in done if r.review_score is not None]),
        mean_quality=_mean(scored),
        scored_runs=len(scored),
        mean_cost=mean_money(e.cost for e in entries),
        mean_run_cost=mean_money(e.run.cost for e in entries),
        p50_latency_ms=percentile(latencies, 50),
        p95_latency_ms=percentile(latencies, 95),
    )


def build_model_report(
    step: str, runs: Iterable[tuple[RunRecord, Sequence[StepRecord]]]
) -> ModelReport:
    """Aggregate runs and their completed ``step`` records (in start order) into a report.

    Args:
        step: The step reported.
        runs: Each run with its completed records of ``step``; runs without any are skipped.

    Returns:
        The report (the definition the SQL backends implement too).
    """
    per_model: dict[str, list[_Entry]] = defaultdict(list)
    per_day: dict[tuple[date, str], list[_Entry]] = defaultdict(list)
    for run, steps in runs:
        if not steps:
            continue
        entry = _entry(run, steps)
        per_model[entry.model].append(entry)
        per_day[(run.started_at.astimezone(UTC).date(), entry.model)].append(entry)
    models = [_stats(model, step, entries) for model, entries in per_model.items()]
    models.sort(key=lambda r: (-r.runs, r.model))
    daily = [
        ModelDay(
            day=day,
            model=model,
            runs=len(entries),
            mean_review_score=_mean(
                [
                    e.run.review_score
                    for e in entries
                    if e.run.status == "completed" and e.run.review_score is not None
                ]
            ),
            mean_cost=mean_money(e.cost for e in entries),
        )
        for (day, model), entries in sorted(per_day.items())
    ]
    return ModelReport(step=step, models=models, daily=daily)
