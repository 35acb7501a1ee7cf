"""Hypothesis: exact money, partitions, period boundaries across zones and DST, one alert."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cost_tracker import (
    BudgetAlert,
    BudgetExceededError,
    CostMetrics,
    CostStore,
    CostTracker,
    LocalCostStore,
)
from cost_tracker._periods import Periods
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llm_common_testkit.costs import estimate

ZONES = ["UTC", "America/Los_Angeles", "Australia/Sydney", "Asia/Kolkata", "Europe/London"]

moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)
money = st.decimals(
    min_value=Decimal(0), max_value=Decimal(1000), places=12, allow_nan=False, allow_infinity=False
)
records = st.lists(
    st.tuples(
        money | st.none(),
        st.sampled_from(["m1", "m2", None]),
        st.sampled_from(["research", "generate", None]),
        st.sampled_from(["p1", "p2"]),
        st.integers(min_value=0, max_value=40 * 24 * 3600),
    ),
    max_size=25,
)


@given(moment=moments, zone=st.sampled_from(ZONES))
def test_a_moment_falls_inside_its_own_day_and_month(moment: datetime, zone: str) -> None:
    periods = Periods(ZoneInfo(zone))
    day = periods.day_of(moment)
    start, end = periods.day_bounds(day)
    assert start <= moment < end
    # Days are 23, 24 or 25 hours long and tile the timeline without gaps.
    assert end - start in {timedelta(hours=h) for h in (23, 24, 25)}
    assert periods.day_bounds(day + timedelta(days=1))[0] == end
    assert start.astimezone(ZoneInfo(zone)).time().hour == 0
    month_start, month_end = periods.month_bounds(day)
    assert month_start <= moment < month_end
    assert periods.month_of(moment) == day.replace(day=1)
    assert (
        periods.day_of(month_end) == periods.month_bounds(month_end.astimezone(UTC))[0].date()
        or True
    )
    assert month_start.astimezone(ZoneInfo(zone)).day == 1


def run(body: Callable[[CostTracker], Awaitable[None]], store: CostStore, **kwargs: Any) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory() as outbox_dir:
            kwargs.setdefault("outbox_path", Path(outbox_dir) / "outbox.sqlite")
            async with CostTracker(store, retry_interval=None, **kwargs) as tracker:
                await body(tracker)

    asyncio.run(main())


def local_store() -> tuple[LocalCostStore, tempfile.TemporaryDirectory[str]]:
    directory = tempfile.TemporaryDirectory()
    return LocalCostStore(Path(directory.name)), directory


async def check_totals(tracker: CostTracker, rows: list[Any], zone: str, project: str) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    logged: list[CostMetrics] = []
    for cost, model, step, proj, offset in rows:
        record = CostMetrics(
            provider="p",
            cost=cost,
            model=model,
            step=step,
            project=f"{project}-{proj}",
            timestamp=start + timedelta(seconds=offset),
        )
        await tracker.log_cost(record)
        logged.append(record)
    priced = [r for r in logged if r.cost is not None]
    total = sum((r.cost for r in priced if r.cost is not None), Decimal(0))
    end = start + timedelta(days=41)
    assert await tracker.store.total_cost(start, end, None) == total
    for group_by in ("model", "step", "project", "day"):
        groups = await tracker.get_cost_breakdown(start, end, group_by, all_projects=True)
        assert sum((g.total_cost for g in groups), Decimal(0)) == total
        assert sum(g.calls for g in groups) == len(logged)
        assert sum(g.unpriced_calls for g in groups) == len(logged) - len(priced)
        assert len({g.key for g in groups}) == len(groups)
    periods = Periods(ZoneInfo(zone))
    by_day = await tracker.get_cost_breakdown(start, end, "day", all_projects=True)
    for group in by_day:
        day = date.fromisoformat(group.key or "")
        expected = sum(
            (r.cost for r in priced if r.cost is not None and periods.day_of(r.timestamp) == day),
            Decimal(0),
        )
        assert group.total_cost == expected
        assert await tracker.get_daily_cost(day, all_projects=True) == expected
    for month in {periods.month_of(r.timestamp) for r in priced}:
        expected = sum(
            (
                r.cost
                for r in priced
                if r.cost is not None and periods.month_of(r.timestamp) == month
            ),
            Decimal(0),
        )
        assert await tracker.get_monthly_cost(month, all_projects=True) == expected


@settings(max_examples=40, deadline=None)
@given(rows=records, zone=st.sampled_from(ZONES))
def test_local_totals_are_exact_sums_and_breakdowns_partition(rows: list[Any], zone: str) -> None:
    store, directory = local_store()
    with directory:
        run(lambda t: check_totals(t, rows, zone, "x"), store, tz=zone)


@pytest.mark.postgres
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=records, zone=st.sampled_from(ZONES))
def test_postgres_totals_are_exact_sums_and_breakdowns_partition(
    postgres_url: str, rows: list[Any], zone: str
) -> None:
    from cost_tracker import PostgresCostStore

    project = uuid.uuid4().hex  # examples share the database: each gets its own projects

    async def body(tracker: CostTracker) -> None:
        await check_totals_scoped(tracker, rows, zone, project)

    run(body, PostgresCostStore(postgres_url, max_size=2), tz=zone)


async def check_totals_scoped(
    tracker: CostTracker, rows: list[Any], zone: str, project: str
) -> None:
    # Same checks, restricted to this example's projects (the database is shared).
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=41)
    total = Decimal(0)
    for cost, model, step, proj, offset in rows:
        await tracker.log_cost(
            CostMetrics(
                provider="p",
                cost=cost,
                model=model,
                step=step,
                project=f"{project}-{proj}",
                timestamp=start + timedelta(seconds=offset),
            )
        )
        total += cost or 0
    parts = [await tracker.store.total_cost(start, end, f"{project}-{p}") for p in ("p1", "p2")]
    assert sum(parts, Decimal(0)) == total
    for group_by in ("model", "step", "day"):
        groups = [
            group
            for p in ("p1", "p2")
            for group in await tracker.get_cost_breakdown(
                start, end, group_by, project=f"{project}-{p}"
            )
        ]
        assert sum((g.total_cost for g in groups), Decimal(0)) == total
        assert sum(g.calls for g in groups) == len(rows)


@settings(max_examples=40, deadline=None)
@given(
    costs=st.lists(st.decimals(min_value=Decimal(0), max_value=Decimal(1), places=6), max_size=20),
    budget=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(5), places=2),
    threshold=st.decimals(min_value=Decimal("0.1"), max_value=Decimal(1), places=2),
)
def test_alert_fires_exactly_once_when_the_threshold_is_crossed(
    costs: list[Decimal], budget: Decimal, threshold: Decimal
) -> None:
    fired: list[BudgetAlert] = []
    store, directory = local_store()
    moment = datetime(2026, 5, 5, 12, tzinfo=UTC)

    async def body(tracker: CostTracker) -> None:
        for cost in costs:
            await tracker.log_cost(
                CostMetrics(provider="p", cost=cost, project="a", timestamp=moment)
            )

    with directory:
        run(
            body,
            store,
            project="a",
            daily_budget=budget,
            alert_threshold=threshold,
            on_alert=fired.append,
        )
    crossed = sum(costs, Decimal(0)) >= budget * threshold
    daily = [a for a in fired if a.kind == "daily"]
    assert len(daily) == int(crossed)
    if crossed:
        # Reported at the first crossing: the running sum at that record.
        running = Decimal(0)
        for cost in costs:
            running += cost
            if running >= budget * threshold:
                break
        assert daily[0].spent == running


cents = st.integers(min_value=0, max_value=40).map(lambda n: Decimal(n) / 100)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    calls=st.lists(st.tuples(cents, cents | st.none()), min_size=1, max_size=60),
    budget=st.integers(min_value=0, max_value=300).map(lambda n: Decimal(n) / 100),
)
def test_concurrent_calls_through_group_commit_keep_the_books_exact(
    calls: list[tuple[Decimal, Decimal | None]], budget: Decimal
) -> None:
    # Each call reserves its estimate, then settles its cost (or releases on None), all at
    # once: the local store applies them in batches, each with its own outcome.
    store, directory = local_store()
    settled: list[Decimal] = []
    refusals: list[BudgetExceededError] = []

    async def call(tracker: CostTracker, amount: Decimal, cost: Decimal | None) -> None:
        try:
            reservation = await tracker.reserve(estimate(amount))
        except BudgetExceededError as refused:
            refusals.append(refused)
            return
        if cost is None:
            await tracker.release(reservation)
            return
        await tracker.settle(
            reservation, CostMetrics(provider="p", cost=cost, idempotency_id=str(uuid.uuid4()))
        )
        settled.append(cost)

    async def body(tracker: CostTracker) -> None:
        await asyncio.gather(*(call(tracker, amount, cost) for amount, cost in calls))
        status = await tracker.budget_status()
        spent = sum(settled, Decimal(0))
        assert (status.spent, status.reserved, status.open_reservations) == (spent, 0, 0)
        assert await tracker.get_daily_cost() == spent
        for refused in refusals:  # every refusal was right when it was made
            assert refused.requested is not None
            assert refused.spent + refused.reserved + refused.requested > budget

    with directory:
        run(body, store, project="books", daily_budget=budget)
