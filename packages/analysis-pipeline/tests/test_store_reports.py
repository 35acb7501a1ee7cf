"""The dashboard's store questions on every backend: model report, run pages, config audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from analysis_pipeline import InvalidInputError, RunRecord, RunStore, StepRecord
from analysis_pipeline._reports import RunFilter, build_model_report

T0 = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


async def _seed(store: RunStore) -> list[RunRecord]:
    """Six runs over two days: model a answers generate in four, b in two (one unpriced)."""
    plan = [
        ("a", "completed", True, 0.9, 0.8, "0.010", 100.0, "California"),
        ("a", "completed", False, 0.5, None, "0.030", 300.0, "California"),
        ("a", "failed", None, None, None, "0.020", 200.0, "Indiana"),
        ("b", "completed", True, 0.7, 0.6, "0.005", 50.0, "California"),
        ("b", "completed", True, 0.8, None, None, 70.0, "US"),
        ("a", "completed", True, 1.0, None, "0.040", 400.0, "California"),
    ]
    runs = []
    for i, (model, status, passed, score, quality, cost, latency, where) in enumerate(plan):
        started = T0 + timedelta(hours=10 * i)  # two UTC days
        run = RunRecord(
            bill_id=f"CA-AB{i}-2026",
            jurisdiction=where,
            status=status,  # type: ignore[arg-type]
            review_passed=passed,
            review_score=score,
            quality_score=quality,
            cost=Decimal("0.1") * (i + 1),
            started_at=started,
            models={"generate": [model]},
        )
        await store.save_run(run)
        price = None if cost is None else Decimal(cost)
        await store.save_step(
            StepRecord(run_id=run.id, key="research", step="research", model="r",
                       cost=Decimal("0.001"), started_at=started)
        )  # fmt: skip
        await store.save_step(
            StepRecord(run_id=run.id, key="generate", step="generate", model=model, cost=price,
                       latency_ms=latency, started_at=started + timedelta(seconds=1))
        )  # fmt: skip
        runs.append(run)
    return runs


async def test_model_report_per_model_and_day(store: RunStore) -> None:
    await _seed(store)
    report = await store.model_report("generate")
    by = {m.model: m for m in report.models}
    assert [m.model for m in report.models] == ["a", "b"]  # most runs first
    a, b = by["a"], by["b"]
    assert (a.runs, a.completed, b.runs, b.completed) == (4, 3, 2, 2)
    assert a.pass_rate == pytest.approx(2 / 3)
    assert a.mean_review_score == pytest.approx((0.9 + 0.5 + 1.0) / 3)
    assert (a.mean_quality, a.scored_runs) == (pytest.approx(0.8), 1)
    assert a.mean_cost == Decimal("0.025")
    assert b.mean_cost == Decimal("0.005")  # the unpriced run is left out, never counted as $0
    assert a.p50_latency_ms == pytest.approx(250.0)
    assert a.p95_latency_ms == pytest.approx(385.0)
    assert a.quality_per_dollar == pytest.approx(0.8 / 0.025)
    days = [(d.day.isoformat(), d.model, d.runs) for d in report.daily]
    assert days == [
        ("2026-11-03", "a", 2), ("2026-11-04", "a", 1), ("2026-11-04", "b", 1),
        ("2026-11-05", "a", 1), ("2026-11-05", "b", 1),
    ]  # fmt: skip
    only = await store.model_report("generate", jurisdiction="US")
    assert [(m.model, m.runs) for m in only.models] == [("b", 1)]
    window = await store.model_report("generate", since=T0 + timedelta(hours=25))
    assert sum(m.runs for m in window.models) == 3
    with pytest.raises(InvalidInputError):
        await store.model_report("summarise")


async def test_model_report_matches_the_python_definition(store: RunStore) -> None:
    runs = await _seed(store)
    pairs = []
    for run in runs:
        stored = await store.get_run(run.id)
        steps = [s for s in await store.list_steps(run.id) if s.step == "generate"]
        pairs.append((stored, steps))
    expected = build_model_report("generate", pairs)
    got = await store.model_report("generate")
    assert [m.model for m in got.models] == [m.model for m in expected.models]
    for mine, theirs in zip(got.models, expected.models, strict=True):
        assert mine.runs == theirs.runs
        assert mine.mean_cost == theirs.mean_cost
        assert mine.p95_latency_ms == pytest.approx(theirs.p95_latency_ms)


async def test_run_page_filters_pages_and_counts(store: RunStore) -> None:
    runs = await _seed(store)
    newest_first = [r.id for r in reversed(runs)]
    page = await store.run_page(limit=4)
    assert (page.total, [r.id for r in page.runs]) == (6, newest_first[:4])
    second = await store.run_page(offset=4, limit=4)
    assert [r.id for r in second.runs] == newest_first[4:]
    assert second.runs[-1].cost == Decimal("0.1")
    failed = await store.run_page(RunFilter(status="failed"))
    assert [r.id for r in failed.runs] == [runs[2].id]
    assert (await store.run_page(RunFilter(bill="ab4"))).total == 1  # part of the id, any case
    assert (await store.run_page(RunFilter(model="b"))).total == 2
    assert (await store.run_page(RunFilter(jurisdiction="California"))).total == 4
    window = RunFilter(since=T0 + timedelta(hours=10), until=T0 + timedelta(hours=30))
    assert [r.id for r in (await store.run_page(window)).runs] == [runs[2].id, runs[1].id]
    with pytest.raises(InvalidInputError):
        await store.run_page(limit=0)


async def test_every_model_config_change_is_audited(store: RunStore) -> None:
    await store.set_model_config("generate", ["x", "y"], changed_by="alice@example.org")
    await store.set_model_config("review", ["z"])
    await store.set_model_config("generate", ["y2"], changed_by="bob")
    assert await store.get_model_configs() == {"generate": ["y2"], "review": ["z"]}
    changes = await store.model_config_changes()
    assert [(c.step, c.old_models, c.new_models, c.changed_by) for c in changes] == [
        ("generate", ["x", "y"], ["y2"], "bob"),
        ("review", [], ["z"], None),
        ("generate", [], ["x", "y"], "alice@example.org"),
    ]
    assert all(c.changed_at.tzinfo is not None for c in changes)
    assert changes[0].changed_at >= changes[-1].changed_at
    assert len(await store.model_config_changes(step="generate", limit=1)) == 1
