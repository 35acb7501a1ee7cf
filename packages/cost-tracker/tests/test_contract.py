"""One contract, every backend: local SQLite, PostgreSQL, Supabase through loopback PostgREST."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from cost_tracker import (
    BudgetAlert,
    BudgetExceededError,
    CostMetrics,
    InvalidRecordError,
    UnpricedCostError,
)
from llm_common_testkit.contract import GenericStoreContract
from llm_common_testkit.costs import Record, estimate

from .conftest import MakeTracker

NOW = datetime.now(UTC)
TODAY = NOW.date()


def metrics(cost: str | None, **kwargs: object) -> CostMetrics:
    values: dict[str, object] = {"provider": "openrouter", "model": "m1", "project": "contract"}
    values.update(kwargs)
    return CostMetrics(cost=None if cost is None else Decimal(cost), **values)  # type: ignore[arg-type]


async def test_totals_are_exact_and_unpriced_is_counted_apart(make_tracker: MakeTracker) -> None:
    tracker = await make_tracker()
    costs = ["0.0000002", "0.000000000001", "1.1", "0.3333333333333333"]
    for cost in costs:
        await tracker.log_cost(metrics(cost))
    await tracker.log_cost(metrics(None))
    expected = sum((Decimal(c) for c in costs), Decimal(0))
    assert await tracker.get_daily_cost() == expected
    assert await tracker.get_monthly_cost() == expected
    [row] = await tracker.get_cost_breakdown(TODAY, TODAY + timedelta(days=1))
    assert (row.key, row.total_cost, row.calls, row.unpriced_calls) == ("m1", expected, 5, 1)
    assert (await tracker.budget_status()).unpriced_calls == 1


async def test_log_cost_stores_each_idempotency_id_once(make_tracker: MakeTracker) -> None:
    tracker = await make_tracker(daily_budget="10")
    record = metrics("0.25")
    for _ in range(3):
        await tracker.log_cost(record)
    assert await tracker.get_daily_cost() == Decimal("0.25")
    assert (await tracker.budget_status()).spent == Decimal("0.25")


async def test_reserve_refuses_what_would_cross_the_daily_budget(make_tracker: MakeTracker) -> None:
    tracker = await make_tracker(daily_budget="1.00")
    held = await tracker.reserve(estimate(Decimal("0.60")))
    with pytest.raises(BudgetExceededError) as refused:
        await tracker.reserve(estimate(Decimal("0.41")))
    error = refused.value
    assert (error.kind, error.period, error.budget) == ("daily", TODAY, Decimal("1.00"))
    assert (error.spent, error.reserved, error.requested) == (0, Decimal("0.60"), Decimal("0.41"))
    assert "0.41" in str(error)
    exact = await tracker.reserve(estimate(Decimal("0.40")))  # fits exactly
    status = await tracker.budget_status()
    assert (status.reserved, status.open_reservations) == (Decimal("1.00"), 2)
    await tracker.release(held)
    await tracker.release(exact)


async def test_monthly_budget_refuses_too(make_tracker: MakeTracker) -> None:
    tracker = await make_tracker(daily_budget="5", monthly_budget="0.5")
    await tracker.log_cost(metrics("0.45"))
    with pytest.raises(BudgetExceededError) as refused:
        await tracker.reserve(estimate(Decimal("0.06")))
    assert (refused.value.kind, refused.value.period) == ("monthly", TODAY.replace(day=1))
    assert refused.value.spent == Decimal("0.45")
    # The refused monthly hold must not stay on the daily counter.
    assert (await tracker.budget_status("daily")).reserved == 0


async def test_settle_replaces_the_reservation_once(make_tracker: MakeTracker) -> None:
    tracker = await make_tracker(daily_budget="1")
    reservation = await tracker.reserve(estimate(Decimal("0.5")))
    record = Record(idempotency_id=reservation.idempotency_id, cost=Decimal("0.123"))
    await tracker.settle(reservation, record)
    await tracker.settle(reservation, record)  # a retried settle changes nothing
    status = await tracker.budget_status()
    assert (status.spent, status.reserved, status.open_reservations) == (Decimal("0.123"), 0, 0)
    assert await tracker.get_daily_cost() == Decimal("0.123")
    [stored] = await tracker.get_records(TODAY, TODAY + timedelta(days=1))
    assert (stored.prompt_tokens, stored.cached_prompt_tokens, stored.project) == (
        10,
        2,
        "contract",
    )


async def test_release_gives_the_money_back_once(make_tracker: MakeTracker) -> None:
    tracker = await make_tracker(daily_budget="1")
    reservation = await tracker.reserve(estimate(Decimal("0.7")))
    await tracker.release(reservation)
    await tracker.release(reservation)
    status = await tracker.budget_status()
    assert (status.spent, status.reserved, status.open_reservations) == (0, 0, 0)
    await tracker.release(await tracker.reserve(estimate(Decimal("1"))))


async def test_a_billed_failure_after_release_is_still_recorded(make_tracker: MakeTracker) -> None:
    tracker = await make_tracker(daily_budget="1")
    reservation = await tracker.reserve(estimate(Decimal("0.5")))
    await tracker.release(reservation)
    failed = Record(str(uuid.uuid4()), cost=Decimal("0.2"), success=False, error="Timeout")
    await tracker.settle(reservation, failed)
    status = await tracker.budget_status()
    assert (status.spent, status.reserved) == (Decimal("0.2"), 0)
    [row] = await tracker.get_cost_breakdown(TODAY, TODAY + timedelta(days=1), "step")
    assert (row.key, row.failed_calls) == ("generate", 1)


async def test_unpriced_estimates(make_tracker: MakeTracker) -> None:
    budgeted = await make_tracker(daily_budget="1")
    with pytest.raises(UnpricedCostError) as refused:
        await budgeted.reserve(estimate(None))
    assert isinstance(refused.value, BudgetExceededError)
    assert refused.value.requested is None
    free = await make_tracker(project="free")
    reservation = await free.reserve(estimate(None))
    assert not reservation.held
    await free.settle(reservation, Record(reservation.idempotency_id, cost=None))
    [row] = await free.get_cost_breakdown(TODAY, TODAY + timedelta(days=1))
    assert (row.total_cost, row.unpriced_calls) == (0, 1)


async def test_alert_fires_once_per_period_across_replicas(make_tracker: MakeTracker) -> None:
    fired: list[BudgetAlert] = []

    async def on_alert(alert: BudgetAlert) -> None:
        fired.append(alert)

    replicas = [await make_tracker(daily_budget="1", on_alert=on_alert) for _ in range(2)]
    for step, cost in enumerate(["0.5", "0.29", "0.02", "0.1", "0.5"]):
        await replicas[step % 2].log_cost(metrics(cost))
    assert [(a.kind, a.period, a.spent) for a in fired] == [("daily", TODAY, Decimal("0.81"))]
    assert fired[0].budget == 1
    assert fired[0].threshold == Decimal("0.8")
    tomorrow = NOW + timedelta(days=1)
    await replicas[0].log_cost(metrics("0.9", timestamp=tomorrow))
    assert [a.period for a in fired] == [TODAY, tomorrow.date()]


async def test_monthly_alert_is_separate(make_tracker: MakeTracker) -> None:
    fired: list[BudgetAlert] = []
    tracker = await make_tracker(daily_budget="100", monthly_budget="1", on_alert=fired.append)
    await tracker.log_cost(metrics("0.85"))
    await tracker.log_cost(metrics("0.01"))
    assert [(a.kind, a.period) for a in fired] == [("monthly", TODAY.replace(day=1))]


async def test_breakdowns_partition_the_total(make_tracker: MakeTracker) -> None:
    tracker = await make_tracker()
    start = datetime(2026, 3, 1, tzinfo=UTC)
    rows = [
        ("m1", "research", "contract", "0.1", 0),
        ("m1", "generate", "contract", "0.02", 1),
        ("m2", "generate", "other", "0.003", 2),
        ("m2", None, "contract", None, 2),
    ]
    for model, step, project, cost, day in rows:
        await tracker.log_cost(
            metrics(
                cost, model=model, step=step, project=project, timestamp=start + timedelta(days=day)
            )
        )
    end = start + timedelta(days=3)
    total = Decimal("0.123")
    for group_by in ("model", "step", "project", "day"):
        groups = await tracker.get_cost_breakdown(start, end, group_by, all_projects=True)
        assert sum((g.total_cost for g in groups), Decimal(0)) == total, group_by
        assert sum(g.calls for g in groups) == 4
    by_day = await tracker.get_cost_breakdown(start, end, "day", all_projects=True)
    assert [g.key for g in by_day] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    by_step = await tracker.get_cost_breakdown(start, end, "step", all_projects=True)
    assert [g.key for g in by_step] == ["generate", "research", None]
    own = await tracker.get_cost_breakdown(start, end, "project")
    assert [(g.key, g.total_cost) for g in own] == [("contract", Decimal("0.12"))]
    with pytest.raises(InvalidRecordError):
        await tracker.get_cost_breakdown(start, end, "user")  # type: ignore[arg-type]


async def test_days_follow_the_configured_time_zone(make_tracker: MakeTracker) -> None:
    tracker = await make_tracker(tz="America/Los_Angeles")
    # 2026-03-08 is a 23-hour day in Los Angeles (DST starts at 02:00 local).
    inside = [datetime(2026, 3, 8, 8, 0, tzinfo=UTC), datetime(2026, 3, 9, 6, 59, tzinfo=UTC)]
    outside = [datetime(2026, 3, 8, 7, 59, tzinfo=UTC), datetime(2026, 3, 9, 7, 0, tzinfo=UTC)]
    for moment in inside + outside:
        await tracker.log_cost(metrics("1", timestamp=moment))
    assert await tracker.get_daily_cost(date(2026, 3, 8)) == 2
    assert await tracker.get_daily_cost(date(2026, 3, 7)) == 1
    assert await tracker.get_monthly_cost(date(2026, 3, 1)) == 4
    by_day = await tracker.get_cost_breakdown(date(2026, 3, 7), date(2026, 3, 10), "day")
    assert [(g.key, g.calls) for g in by_day] == [
        ("2026-03-07", 1),
        ("2026-03-08", 2),
        ("2026-03-09", 1),
    ]


async def test_abandoned_reservations_are_reclaimed(make_tracker: MakeTracker) -> None:
    crashed = await make_tracker(daily_budget="1", reservation_ttl=0.000001)
    await crashed.reserve(estimate(Decimal("0.9")))  # never settled: the caller "crashed"
    survivor = await make_tracker(daily_budget="1")
    reservation = await survivor.reserve(estimate(Decimal("0.9")))
    status = await survivor.budget_status()
    assert (status.reserved, status.open_reservations) == (Decimal("0.9"), 1)
    await survivor.release(reservation)


async def test_export_csv_and_json_keep_exact_money(make_tracker: MakeTracker) -> None:
    tracker = await make_tracker()
    user = uuid.uuid4()
    await tracker.log_cost(metrics("0.0000002", user_id=user, metadata={"attempt": 2}))
    await tracker.log_cost(metrics(None, success=False, error="RateLimit"))
    end = TODAY + timedelta(days=1)
    rows = list(csv.DictReader(io.StringIO(await tracker.export(TODAY, end, "csv"))))
    assert sorted(r["cost"] for r in rows) == ["", "0.0000002"]
    assert {r["user_id"] for r in rows} == {str(user), ""}
    data = json.loads(await tracker.export(TODAY, end, "json"))
    assert sorted(str(item["cost"]) for item in data) == ["0.0000002", "None"]
    assert [CostMetrics.model_validate(item).metadata for item in data if item["cost"]] == [
        {"attempt": 2}
    ]


async def test_log_cost_files_an_unnamed_project_under_the_trackers(
    make_tracker: MakeTracker,
) -> None:
    # Issue 17, 2c: the record went to "default", so project X's budget read $0 spent.
    tracker = await make_tracker(project="X", daily_budget="1")
    await tracker.log_cost(CostMetrics(provider="openrouter", cost=Decimal("0.9")))
    assert await tracker.get_daily_cost() == Decimal("0.9")
    assert (await tracker.budget_status()).spent == Decimal("0.9")
    with pytest.raises(BudgetExceededError):
        await tracker.reserve(estimate(Decimal("0.2")))
    # A record that names its project is filed where it says.
    await tracker.log_cost(CostMetrics(provider="openrouter", cost=Decimal("5"), project="Y"))
    assert await tracker.get_daily_cost(project="Y") == Decimal("5")
    assert await tracker.get_daily_cost() == Decimal("0.9")


async def test_budget_refusals_are_marked_for_the_producers(make_tracker: MakeTracker) -> None:
    # Issue 17, 2d: llm-client/web-search recognise refusals by this class attribute.
    tracker = await make_tracker(daily_budget="0.01")
    with pytest.raises(BudgetExceededError) as refused:
        await tracker.reserve(estimate(Decimal("0.02")))
    assert getattr(type(refused.value), "is_budget_refusal", False) is True
    with pytest.raises(UnpricedCostError) as unpriced:
        await tracker.reserve(estimate(None))
    assert getattr(type(unpriced.value), "is_budget_refusal", False) is True


async def test_every_refused_caller_sees_the_room_an_expiry_gives_back(
    make_tracker: MakeTracker,
) -> None:
    # Issue 17, 2a: after a crashed process's holds expired, 200 reserves with room for 54 got
    # 1 grant: only the caller whose own reclaim freed something asked again.
    ttl = 1.5
    crashed = await make_tracker(daily_budget="0.54", reservation_ttl=ttl)
    started = asyncio.get_running_loop().time()
    await asyncio.gather(*(crashed.reserve(estimate(Decimal("0.01"))) for _ in range(54)))
    assert (await crashed.budget_status()).reserved == Decimal("0.54")  # all still held
    # The holds expire by the clock: nothing to wait on but the TTL itself.
    await asyncio.sleep(max(0.0, started + ttl + 0.1 - asyncio.get_running_loop().time()))
    survivor = await make_tracker(daily_budget="0.54")
    results = await asyncio.gather(
        *(survivor.reserve(estimate(Decimal("0.01"))) for _ in range(200)),
        return_exceptions=True,
    )
    granted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert (len(granted), len(refused)) == (54, 146)
    status = await survivor.budget_status()
    assert (status.reserved, status.open_reservations) == (Decimal("0.54"), 54)


class TestGenericStoreContract(GenericStoreContract):
    """The testkit's checks every backend of every package passes (see conftest.CONTRACT)."""
