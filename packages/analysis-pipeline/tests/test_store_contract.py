"""One contract for every run store: local SQLite, PostgreSQL and Supabase."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from analysis_pipeline import (
    InvalidInputError,
    RunNotFoundError,
    RunRecord,
    RunStore,
    ShadowArm,
    ShadowImpact,
    ShadowRecord,
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


async def test_claim_refuses_a_live_lease_and_takes_over_a_dead_one(store: RunStore) -> None:
    from analysis_pipeline import RunInProgressError

    now = datetime.now(UTC)
    live = _run("L", T0, lease_owner="host:1:a", heartbeat_at=now)
    await store.save_run(live)
    with pytest.raises(RunInProgressError) as refused:
        await store.claim_run(live.id, "host:2:b", 30.0)
    assert refused.value.owner == "host:1:a"
    assert (await store.get_run(live.id)).lease_owner == "host:1:a"
    again = await store.claim_run(live.id, "host:1:a", 30.0)  # its own owner may re-claim
    assert again.lease_owner == "host:1:a"

    dead = _run("D", T0, lease_owner="host:1:a", heartbeat_at=now - timedelta(minutes=5))
    await store.save_run(dead)
    claimed = await store.claim_run(dead.id, "host:2:b", 30.0)
    assert (claimed.status, claimed.lease_owner) == ("running", "host:2:b")
    assert claimed.heartbeat_at is not None
    assert claimed.heartbeat_at > now - timedelta(minutes=1)
    stored = await store.get_run(dead.id)
    assert stored.lease_owner == "host:2:b"
    assert await store.heartbeat(dead.id, "host:2:b") is True
    assert await store.heartbeat(dead.id, "host:1:a") is False  # the old owner lost it

    failed = _run("F", T0, status="failed", error="boom", lease_owner="x", heartbeat_at=now)
    await store.save_run(failed)
    taken = await store.claim_run(failed.id, "host:2:b", 30.0)  # not running: claimable
    assert (taken.status, taken.error, taken.lease_owner) == ("running", None, "host:2:b")
    with pytest.raises(RunNotFoundError):
        await store.claim_run("00000000-0000-4000-8000-000000000000", "o", 30.0)
    with pytest.raises(RunNotFoundError):
        await store.claim_run("not-a-uuid", "o", 30.0)


async def test_two_concurrent_claims_of_a_dead_run_one_wins(store: RunStore) -> None:
    import asyncio

    from analysis_pipeline import RunInProgressError

    stale = datetime.now(UTC) - timedelta(minutes=5)
    run = _run("C", T0, lease_owner="dead", heartbeat_at=stale)
    await store.save_run(run)
    outcomes = await asyncio.gather(
        *(store.claim_run(run.id, f"owner-{i}", 30.0) for i in range(4)), return_exceptions=True
    )
    winners = [o for o in outcomes if isinstance(o, RunRecord)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, RunInProgressError) for o in outcomes if o not in winners)
    assert (await store.get_run(run.id)).lease_owner == winners[0].lease_owner


async def test_flag_set_get_and_every_change_audited(store: RunStore) -> None:
    assert await store.get_flag("llm-framework") is None
    assert await store.flag_changes("llm-framework") == []
    before = datetime.now(UTC) - timedelta(seconds=5)
    first = await store.set_flag("llm-framework", enabled=None, percent=10, changed_by="alice")
    assert (first.enabled, first.percent, first.updated_by) == (None, 10.0, "alice")
    off = await store.set_flag("llm-framework", enabled=False, percent=None, changed_by="bob")
    assert (off.enabled, off.percent) == (False, 10.0)  # percent None keeps the stored one
    await store.set_flag("llm-framework", enabled=None, percent=12.5, changed_by="carol")
    await store.set_flag("other-flag", enabled=True, percent=None, changed_by="dave")
    got = await store.get_flag("llm-framework")
    assert got is not None
    assert (got.enabled, got.percent, got.updated_by) == (None, 12.5, "carol")
    assert got.updated_at.tzinfo is not None
    changes = await store.flag_changes("llm-framework")
    assert [(c.changed_by, c.old_enabled, c.old_percent, c.new_enabled, c.new_percent)
            for c in changes] == [
        ("carol", False, 10.0, None, 12.5),
        ("bob", None, 10.0, False, 10.0),
        ("alice", None, None, None, 10.0),
    ]  # fmt: skip
    assert all(c.changed_at >= before and c.changed_at.utcoffset() == timedelta(0)
               for c in changes)  # fmt: skip
    assert [c.changed_by for c in await store.flag_changes("llm-framework", limit=1)] == ["carol"]
    other = await store.get_flag("other-flag")
    assert other is not None
    assert (other.enabled, other.percent) == (True, 0.0)


@pytest.mark.parametrize(
    ("percent", "by"), [(101.0, "alice"), (-1.0, "alice"), (float("nan"), "alice"), (5.0, " ")]
)
async def test_bad_flag_change_is_refused_and_nothing_recorded(
    store: RunStore, percent: float, by: str
) -> None:
    with pytest.raises(InvalidInputError):
        await store.set_flag("f", enabled=None, percent=percent, changed_by=by)
    assert await store.get_flag("f") is None
    assert await store.flag_changes("f") == []


async def test_concurrent_flag_changes_each_audited_exactly(store: RunStore) -> None:
    import asyncio

    await asyncio.gather(
        *(store.set_flag("race", enabled=None, percent=float(i), changed_by=f"u{i}")
          for i in range(6))
    )  # fmt: skip
    changes = list(reversed(await store.flag_changes("race")))
    assert len(changes) == 6
    # Serialised: each change's "old" is the previous change's "new".
    assert changes[0].old_percent is None
    for prev, cur in itertools.pairwise(changes):
        assert cur.old_percent == prev.new_percent
    final = await store.get_flag("race")
    assert final is not None
    assert final.percent == changes[-1].new_percent


def _shadow(bill: str, started: datetime, **arms: ShadowArm) -> ShadowRecord:
    return ShadowRecord(
        bill_id=bill,
        jurisdiction="California",
        served="new",
        started_at=started,
        new=arms.get("new", ShadowArm(status="ok")),
        legacy=arms.get("legacy", ShadowArm(status="ok")),
    )


async def test_shadow_records_round_trip_and_filter(store: RunStore) -> None:
    run = _run("SH", T0)
    await store.save_run(run)
    full = _shadow(
        "SH",
        T0,
        new=ShadowArm(
            status="ok", cost=Decimal("0.0000123456789"), latency_ms=812.5, run_id=run.id,
            impacts=[ShadowImpact(name="housing", direction="increase")],
        ),
        legacy=ShadowArm(
            status="timeout", error="the legacy arm ran past shadow_timeout=2 s", latency_ms=2000,
        ),
    )  # fmt: skip
    await store.record_shadow(full)
    others = [_shadow("A" if i % 2 else "B", T0 + timedelta(hours=i + 1)) for i in range(4)]
    for record in others:
        await store.record_shadow(record)
    assert (await store.shadow_results(bill_id="SH"))[0] == full
    listed = await store.shadow_results()
    assert [r.id for r in listed] == [r.id for r in reversed([full, *others])]
    window = await store.shadow_results(
        since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3)
    )
    assert [r.id for r in window] == [others[1].id, others[0].id]
    assert len(await store.shadow_results(limit=None)) == 5
    assert len(await store.shadow_results(limit=2)) == 2


class TestGenericStoreContract(GenericStoreContract):
    """The testkit's checks every backend of every package passes (see conftest.CONTRACT)."""
