"""Model comparison over logged runs: pass rate, scores, cost, latency percentiles, CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from analysis_pipeline import (
    InvalidInputError,
    LocalRunStore,
    RunRecord,
    StepRecord,
    compare_models,
    comparison_csv,
)
from analysis_pipeline._compare import percentile
from hypothesis import given
from hypothesis import strategies as st

T0 = datetime(2026, 11, 2, tzinfo=UTC)


async def _log(
    store: LocalRunStore, model: str, i: int, *, passed: bool, score: float, cost: str
) -> RunRecord:
    run = RunRecord(
        bill_id=f"B{i}", jurisdiction="CA", status="completed", review_passed=passed,
        review_score=score, cost=Decimal(cost) * 2, started_at=T0 + timedelta(minutes=i),
    )  # fmt: skip
    await store.save_run(run)
    await store.save_step(
        StepRecord(
            run_id=run.id,
            key="generate",
            step="generate",
            model=model,
            cost=Decimal(cost),
            latency_ms=100.0 * (i + 1),
        )
    )
    return run


async def test_compare_per_model(tmp_path: Path) -> None:
    async with LocalRunStore(tmp_path) as store:
        await _compare_per_model(store)


async def _compare_per_model(store: LocalRunStore) -> None:
    a = [await _log(store, "a", i, passed=i < 3, score=0.5 + i / 10, cost="0.01") for i in range(4)]
    await _log(store, "b", 10, passed=True, score=0.9, cost="0.03")
    await store.set_quality(a[0].id, 0.6)
    await store.set_quality(a[1].id, 0.8)
    failed = RunRecord(bill_id="F", jurisdiction="CA", status="failed", started_at=T0)
    await store.save_run(failed)
    await store.save_step(StepRecord(run_id=failed.id, key="generate", step="generate",
                                     model="a", cost=Decimal("0.01"), latency_ms=50))  # fmt: skip

    rows = await compare_models(store, T0 - timedelta(days=1), T0 + timedelta(days=1), "generate")
    by = {r.model: r for r in rows}
    assert [r.model for r in rows] == ["a", "b"]
    assert by["a"].runs == 5
    assert by["a"].completed == 4
    assert by["a"].pass_rate == 0.75
    assert by["a"].mean_review_score == pytest.approx(0.65)
    assert by["a"].mean_quality == pytest.approx(0.7)
    assert by["a"].scored_runs == 2
    assert by["a"].mean_cost == Decimal("0.01")
    assert by["a"].p50_latency_ms == 200.0
    assert by["b"].mean_run_cost == Decimal("0.06")
    window = await compare_models(store, T0 + timedelta(minutes=5), None, "generate")
    assert [r.model for r in window] == ["b"]
    parsed = list(csv.DictReader(io.StringIO(comparison_csv(rows))))
    assert parsed[0]["model"] == "a"
    assert parsed[0]["pass_rate"] == "0.75"


async def test_unknown_step(tmp_path: Path) -> None:
    async with LocalRunStore(tmp_path) as store:
        with pytest.raises(InvalidInputError):
            await compare_models(store, step="summarise")


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_is_bounded_and_monotone(values: list[float], q: float) -> None:
    p = percentile(values, q)
    assert min(values) <= p <= max(values) or p == pytest.approx(min(values))
    assert percentile(values, 0) == min(values)
    assert percentile(values, 100) == max(values)
    assert percentile(values, q) <= percentile(values, min(q + 10, 100)) + 1e-6
