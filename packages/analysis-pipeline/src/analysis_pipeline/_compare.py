"""Model comparison: pass rate, review and manual quality scores, cost and latency per model."""

from __future__ import annotations

import asyncio
import csv
import io
import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel

from analysis_pipeline._config import PIPELINE_STEPS
from analysis_pipeline._errors import InvalidInputError
from analysis_pipeline._records import RunRecord, StepRecord
from analysis_pipeline._stores import RunStore

__all__ = ["ModelStats", "compare_models", "comparison_csv", "percentile"]


class ModelStats(BaseModel):
    """How one model did at one step over a period.

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


def _mean_money(values: Sequence[Decimal | None]) -> Decimal | None:
    known = [v for v in values if v is not None]
    return sum(known, Decimal(0)) / len(known) if known else None


async def compare_models(
    store: RunStore,
    since: datetime | None = None,
    until: datetime | None = None,
    step: str = "generate",
) -> list[ModelStats]:
    """Compare the models that answered ``step`` in runs started in ``[since, until)``.

    Args:
        store: The run store.
        since: Start of the period (inclusive); None for the beginning.
        until: End of the period (exclusive); None for now.
        step: ``research``, ``condense``, ``generate``, ``review`` or ``refine``.

    Returns:
        One row per model, most runs first.

    Raises:
        InvalidInputError: Unknown step.
    """
    if step not in PIPELINE_STEPS:
        raise InvalidInputError(f"unknown step {step!r}; steps are {', '.join(PIPELINE_STEPS)}")
    runs = await store.list_runs(since=since, until=until, limit=None)
    gate = asyncio.Semaphore(8)

    async def steps_of(run: RunRecord) -> list[StepRecord]:
        async with gate:
            return await store.list_steps(run.id)

    all_steps = await asyncio.gather(*(steps_of(r) for r in runs))
    per_model: dict[str, list[tuple[RunRecord, Decimal | None, float]]] = defaultdict(list)
    for run, steps in zip(runs, all_steps, strict=True):
        mine = [s for s in steps if s.step == step and s.status == "completed"]
        if not mine:
            continue
        cost: Decimal | None = None
        for s in mine:
            if s.cost is not None:
                cost = (cost or Decimal(0)) + s.cost
        latency = sum(s.latency_ms for s in mine)
        per_model[mine[0].model or "?"].append((run, cost, latency))
    rows: list[ModelStats] = []
    for model, entries in per_model.items():
        done = [r for r, _, _ in entries if r.status == "completed"]
        scored = [r.quality_score for r, _, _ in entries if r.quality_score is not None]
        latencies = [lat for _, _, lat in entries]
        rows.append(
            ModelStats(
                model=model,
                step=step,
                runs=len(entries),
                completed=len(done),
                pass_rate=_mean([1.0 if r.review_passed else 0.0 for r in done]),
                mean_review_score=_mean(
                    [r.review_score for r in done if r.review_score is not None]
                ),
                mean_quality=_mean(scored),
                scored_runs=len(scored),
                mean_cost=_mean_money([c for _, c, _ in entries]),
                mean_run_cost=_mean_money([r.cost for r, _, _ in entries]),
                p50_latency_ms=percentile(latencies, 50),
                p95_latency_ms=percentile(latencies, 95),
            )
        )
    rows.sort(key=lambda r: (-r.runs, r.model))
    return rows


def comparison_csv(rows: Sequence[ModelStats]) -> str:
    """Render comparison rows as CSV (header included; empty cells for unknown values).

    Args:
        rows: What :func:`compare_models` returned.

    Returns:
        CSV text.
    """
    out = io.StringIO()
    fields = list(ModelStats.model_fields)
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        data = row.model_dump()
        writer.writerow({k: "" if data[k] is None else data[k] for k in fields})
    return out.getvalue()
