"""One contract for every run store: local SQLite, PostgreSQL and Supabase."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from analysis_pipeline import (
    InvalidInputError,
    RunNotFoundError,
    RunRecord,
    RunStore,
    StepRecord,
)
from llm_common_testkit.contract import GenericStoreContract

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _run(bill: str, started: datetime, **extra: object) -> RunRecord:
    return RunRecord(
        bill_id=bill,
        jurisdiction="California",
        models={"generate": ["a", "b"], "review": ["c"]},
        inputs_hash="h" * 64,
        inputs={"bill_text": "SEC. 1. Text $5.", "max_rounds": 2},
        started_at=started,
        **extra,  # type: ignore[arg-type]
    )


async def test_run_round_trip_keeps_every_field(store: RunStore) -> None:
    run = _run(
        "CA-AB1-2026",
        T0,
        status="completed",
        analysis={"summary": "s", "impacts": []},
        review={"passed": True, "score": 0.8},
        review_passed=True,
        review_score=0.8,
        rounds=2,
        cost=Decimal("0.0000123456789"),
        prompt_tokens=1200,
        completion_tokens=300,
        latency_ms=812.5,
        completed_at=T0 + timedelta(seconds=3),
    )
    await store.save_run(run)
    got = await store.get_run(run.id)
    assert got == run


async def test_save_run_replaces(store: RunStore) -> None:
    run = _run("B", T0)
    await store.save_run(run)
    await store.save_run(run.model_copy(update={"status": "failed", "error": "boom"}))
    got = await store.get_run(run.id)
    assert (got.status, got.error) == ("failed", "boom")


async def test_unknown_run_is_a_typed_error(store: RunStore) -> None:
    with pytest.raises(RunNotFoundError):
        await store.get_run("00000000-0000-4000-8000-000000000000")
    with pytest.raises(RunNotFoundError):
        await store.get_run("not-a-uuid")
    with pytest.raises(RunNotFoundError):
        await store.set_quality("00000000-0000-4000-8000-000000000000", 0.5)


async def test_list_runs_filters_and_orders_newest_first(store: RunStore) -> None:
    runs = [_run("A" if i % 2 else "B", T0 + timedelta(hours=i)) for i in range(5)]
    for run in runs:
        await store.save_run(run)
    listed = await store.list_runs()
    assert [r.id for r in listed] == [r.id for r in reversed(runs)]
    window = await store.list_runs(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3))
    assert [r.id for r in window] == [runs[2].id, runs[1].id]
    only_a = await store.list_runs(bill_id="A", limit=1)
    assert [r.id for r in only_a] == [runs[3].id]


async def test_steps_upsert_by_key_and_keep_order(store: RunStore) -> None:
    run = _run("S", T0)
    await store.save_run(run)
    keys = [("research", 0), ("generate", 0), ("review", 1), ("refine", 1), ("review", 2)]
    for i, (step, round_no) in enumerate(keys):
        key = step if round_no == 0 else f"{step}:{round_no}"
        await store.save_step(
            StepRecord(
                run_id=run.id,
                key=key,
                step=step,  # type: ignore[arg-type]
                round=round_no,
                model="m",
                output={"i": i},
                cost=Decimal("0.001") * i,
                prompt_tokens=10 * i,
                started_at=T0 + timedelta(seconds=i),
            )
        )
    failed = StepRecord(
        run_id=run.id, key="review:2", step="review", round=2, status="failed",
        error="ServerError: 500", started_at=T0 + timedelta(seconds=4),
    )  # fmt: skip
    await store.save_step(failed)
    steps = await store.list_steps(run.id)
    assert [s.key for s in steps] == ["research", "generate", "review:1", "refine:1", "review:2"]
    assert steps[2].output == {"i": 2}
    assert steps[2].cost == Decimal("0.002")
    assert steps[-1].status == "failed"
    assert steps[-1].error == "ServerError: 500"


async def test_quality_score(store: RunStore) -> None:
    run = _run("Q", T0)
    await store.save_run(run)
    await store.set_quality(run.id, 0.75)
    assert (await store.get_run(run.id)).quality_score == 0.75
    with pytest.raises(InvalidInputError):
        await store.set_quality(run.id, 1.5)


async def test_model_configs_replace_per_step(store: RunStore) -> None:
    assert await store.get_model_configs() == {}
    await store.set_model_config("generate", ["x", "y"])
    await store.set_model_config("review", ["z"])
    await store.set_model_config("generate", ["y2"])
    assert await store.get_model_configs() == {"generate": ["y2"], "review": ["z"]}


class TestGenericStoreContract(GenericStoreContract):
    """The testkit's checks every backend of every package passes (see conftest.CONTRACT)."""
