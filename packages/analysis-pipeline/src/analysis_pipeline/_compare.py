"""Model comparison: pass rate, review and manual quality scores, cost and latency per model."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Sequence
from datetime import datetime

from analysis_pipeline._config import PIPELINE_STEPS
from analysis_pipeline._errors import InvalidInputError
from analysis_pipeline._records import RunRecord, StepRecord
from analysis_pipeline._reports import ModelStats, build_model_report, percentile
from analysis_pipeline._stores import RunStore

__all__ = ["ModelStats", "compare_models", "comparison_csv", "percentile"]


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
