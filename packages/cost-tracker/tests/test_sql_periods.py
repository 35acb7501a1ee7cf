"""The SQL read functions count days and months in a time zone exactly like the tracker."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from cost_tracker import CostMetrics, CostTracker
from cost_tracker._periods import Periods
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ZONES = ["America/Los_Angeles", "Australia/Sydney", "Asia/Kolkata", "UTC"]
# Around the 2026 DST changes of Los Angeles (Mar 8, Nov 1) and Sydney (Apr 5, Oct 4).
ANCHORS = [datetime(2026, m, d, tzinfo=UTC) for m, d in ((3, 8), (4, 5), (10, 4), (11, 1))]


@pytest.mark.postgres
@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    anchor=st.sampled_from(ANCHORS),
    offsets=st.lists(st.integers(min_value=-40 * 3600, max_value=40 * 3600), max_size=12),
    zone=st.sampled_from(ZONES),
)
def test_sql_daily_and_monthly_cost_match_python_periods(
    postgres_url: str, anchor: datetime, offsets: list[int], zone: str
) -> None:
    from cost_tracker import PostgresCostStore

    project = uuid.uuid4().hex
    moments = [anchor + timedelta(seconds=offset) for offset in offsets]
    periods = Periods(ZoneInfo(zone))

    async def main() -> list[tuple[date, Decimal, Decimal]]:
        with tempfile.TemporaryDirectory() as tmp:
            tracker = CostTracker(
                PostgresCostStore(postgres_url, max_size=2),
                project=project,
                tz=zone,
                outbox_path=Path(tmp) / "outbox.sqlite",
                retry_interval=None,
            )
            async with tracker:
                for index, moment in enumerate(moments):
                    cost = Decimal(index + 1) / 1000
                    await tracker.log_cost(
                        CostMetrics(provider="p", cost=cost, project=project, timestamp=moment)
                    )
        days = {periods.day_of(m) for m in moments} | {periods.day_of(anchor)}
        out = []
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            for day in sorted(days):
                cursor = await conn.execute(
                    "select get_daily_cost(%s, %s, %s), get_monthly_cost(%s, %s, %s)",
                    (project, day, zone, project, day, zone),
                )
                daily, monthly = await cursor.fetchone() or (None, None)
                out.append((day, daily, monthly))
        return out

    for day, daily, monthly in asyncio.run(main()):
        expected_day = sum(
            (Decimal(i + 1) / 1000 for i, m in enumerate(moments) if periods.day_of(m) == day),
            Decimal(0),
        )
        expected_month = sum(
            (
                Decimal(i + 1) / 1000
                for i, m in enumerate(moments)
                if periods.month_of(m) == day.replace(day=1)
            ),
            Decimal(0),
        )
        assert (daily, monthly) == (expected_day, expected_month)
