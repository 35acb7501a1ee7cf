"""Comparisons: models at one step (pass rate, scores, cost, latency) and shadow-run agreement."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel

from analysis_pipeline._config import PIPELINE_STEPS
from analysis_pipeline._errors import InvalidInputError
from analysis_pipeline._records import RunRecord, ShadowArm, ShadowImpact, ShadowRecord, StepRecord
from analysis_pipeline._reports import ModelStats, build_model_report, mean_money, percentile
from analysis_pipeline._shadow import normalise_impact_name
from analysis_pipeline._stores import RunStore

__all__ = [
    "ArmStats",
    "ImpactAgreement",
    "ModelStats",
    "ShadowComparison",
    "compare_models",
    "compare_shadow",
    "comparison_csv",
    "percentile",
    "shadow_comparison",
]


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
    pairs = [
        (run, [s for s in steps if s.step == step and s.status == "completed"])
        for run, steps in zip(runs, all_steps, strict=True)
    ]
    return build_model_report(step, pairs).models


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


class ArmStats(BaseModel):
    """How one arm (``new`` or ``legacy``) did over the shadow runs compared.

    Attributes:
        arm: ``new`` or ``legacy``.
        runs: Shadow runs (every run has both arms).
        served: Runs in which this arm's result was served.
        ok: Runs in which the arm finished.
        errors: Runs in which it raised.
        timeouts: Runs in which it ran past the shadow timeout.
        cancelled: Runs cut short by shutdown.
        total_cost: Sum of known costs in US dollars (None when no run knew its cost).
        mean_cost: Mean of known costs.
        unpriced: Runs whose cost is unknown.
        p50_latency_ms: Median latency over every run of the arm (failures included).
        p95_latency_ms: 95th-percentile latency.
    """

    arm: str
    runs: int
    served: int
    ok: int
    errors: int
    timeouts: int
    cancelled: int
    total_cost: Decimal | None
    mean_cost: Decimal | None
    unpriced: int
    p50_latency_ms: float
    p95_latency_ms: float


class ImpactAgreement(BaseModel):
    """Agreement on one impact name (normalised) over the runs where both arms finished.

    Attributes:
        name: The normalised impact name.
        both: Runs in which both arms found it.
        only_new: Runs in which only the new pipeline found it.
        only_legacy: Runs in which only the legacy analyser found it.
        direction_disagreements: Of ``both``, runs in which the directions differ.
    """

    name: str
    both: int = 0
    only_new: int = 0
    only_legacy: int = 0
    direction_disagreements: int = 0


class ShadowComparison(BaseModel):
    """Agreement of the new pipeline with the legacy analyser over a period of shadow runs.

    Impacts are compared only in runs where both arms finished (``compared``); within one arm,
    impacts with the same normalised name count once (directions that differ become ``mixed``).

    Attributes:
        runs: Shadow runs in the period.
        compared: Runs in which both arms finished (``ok``).
        impacts_both: Impacts found by both arms, summed over compared runs.
        impacts_only_new: Impacts only the new pipeline found.
        impacts_only_legacy: Impacts only the legacy analyser found.
        direction_disagreements: Of ``impacts_both``, those whose directions differ.
        agreement: ``impacts_both`` over all distinct impacts found (None without any).
        arms: Per-arm outcomes, cost and latency (``new`` first).
        by_impact: Per normalised impact name, most often found first.
    """

    runs: int
    compared: int
    impacts_both: int
    impacts_only_new: int
    impacts_only_legacy: int
    direction_disagreements: int
    agreement: float | None
    arms: list[ArmStats]
    by_impact: list[ImpactAgreement]


def _by_name(impacts: Sequence[ShadowImpact]) -> dict[str, str]:
    found: dict[str, str] = {}
    for impact in impacts:
        key = normalise_impact_name(impact.name)
        if key in found and found[key] != impact.direction:
            found[key] = "mixed"
        else:
            found.setdefault(key, impact.direction)
    return found


def _arm_stats(name: str, records: Sequence[ShadowRecord]) -> ArmStats:
    arms: list[ShadowArm] = [getattr(r, name) for r in records]
    costs = [a.cost for a in arms if a.cost is not None]
    latencies = [a.latency_ms for a in arms]
    return ArmStats(
        arm=name,
        runs=len(arms),
        served=sum(1 for r in records if r.served == name),
        ok=sum(1 for a in arms if a.status == "ok"),
        errors=sum(1 for a in arms if a.status == "error"),
        timeouts=sum(1 for a in arms if a.status == "timeout"),
        cancelled=sum(1 for a in arms if a.status == "cancelled"),
        total_cost=sum(costs, Decimal(0)) if costs else None,
        mean_cost=mean_money(costs),
        unpriced=len(arms) - len(costs),
        p50_latency_ms=percentile(latencies, 50),
        p95_latency_ms=percentile(latencies, 95),
    )


def shadow_comparison(records: Sequence[ShadowRecord]) -> ShadowComparison:
    """Agreement, cost and latency per arm over ``records`` (see :class:`ShadowComparison`).

    Args:
        records: Shadow records, as :meth:`RunStore.shadow_results` returns them.

    Returns:
        The comparison.
    """
    per_name: dict[str, ImpactAgreement] = {}
    compared = 0
    for record in records:
        if record.new.status != "ok" or record.legacy.status != "ok":
            continue
        compared += 1
        new, old = _by_name(record.new.impacts), _by_name(record.legacy.impacts)
        for key in new.keys() | old.keys():
            row = per_name.setdefault(key, ImpactAgreement(name=key))
            if key in new and key in old:
                row.both += 1
                row.direction_disagreements += new[key] != old[key]
            elif key in new:
                row.only_new += 1
            else:
                row.only_legacy += 1
    rows = sorted(per_name.values(), key=lambda r: (-(r.both + r.only_new + r.only_legacy), r.name))
    both = sum(r.both for r in rows)
    distinct = sum(r.both + r.only_new + r.only_legacy for r in rows)
    return ShadowComparison(
        runs=len(records),
        compared=compared,
        impacts_both=both,
        impacts_only_new=sum(r.only_new for r in rows),
        impacts_only_legacy=sum(r.only_legacy for r in rows),
        direction_disagreements=sum(r.direction_disagreements for r in rows),
        agreement=both / distinct if distinct else None,
        arms=[_arm_stats("new", records), _arm_stats("legacy", records)],
        by_impact=rows,
    )


async def compare_shadow(
    store: RunStore, since: datetime | None = None, until: datetime | None = None
) -> ShadowComparison:
    """Compare the arms of the shadow runs started in ``[since, until)``.

    Args:
        store: The run store.
        since: Start of the period (inclusive); None for the beginning.
        until: End of the period (exclusive); None for now.

    Returns:
        The comparison (see :class:`ShadowComparison`).
    """
    return shadow_comparison(await store.shadow_results(since=since, until=until, limit=None))
