"""Row-level security on real PostgreSQL: users see and write only their own cost rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from cost_tracker import CostMetrics, CostTracker
from llm_common_testkit import pg_as_user

pytestmark = pytest.mark.postgres

ALICE = uuid.uuid4()
BOB = uuid.uuid4()


async def seed(postgres_db: str, tmp_path: Path) -> None:
    from cost_tracker import PostgresCostStore

    tracker = CostTracker(
        PostgresCostStore(postgres_db, max_size=2),
        project="rls",
        outbox_path=tmp_path / "outbox.sqlite",
        retry_interval=None,
    )
    async with tracker:
        for user, cost in ((ALICE, "0.1"), (ALICE, "0.2"), (BOB, "5")):
            metrics = CostMetrics(provider="p", cost=Decimal(cost), user_id=user, project="rls")
            await tracker.log_cost(metrics)


async def test_a_user_reads_only_their_own_rows(postgres_db: str, tmp_path: Path) -> None:
    await seed(postgres_db, tmp_path)
    async with pg_as_user(postgres_db, ALICE) as conn:
        cursor = await conn.execute("select user_id, cost from cost_tracking order by cost")
        assert await cursor.fetchall() == [(ALICE, Decimal("0.1")), (ALICE, Decimal("0.2"))]
        today = datetime.now(UTC).date()
        cursor = await conn.execute("select get_daily_cost('rls', %s)", (today,))
        assert await cursor.fetchone() == (Decimal("0.3"),)
        start = datetime.now(UTC) - timedelta(days=1)
        cursor = await conn.execute(
            "select sum(total_cost) from get_cost_breakdown(%s, %s, 'project')",
            (start, start + timedelta(days=2)),
        )
        assert await cursor.fetchone() == (Decimal("0.3"),)
    async with pg_as_user(postgres_db, None) as conn:  # anon sees nothing
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute("select count(*) from cost_tracking")


async def test_a_user_cannot_write_another_users_rows(postgres_db: str, tmp_path: Path) -> None:
    await seed(postgres_db, tmp_path)
    insert = (
        "insert into cost_tracking (idempotency_id, project, provider, cost, user_id) "
        "values (%s, 'rls', 'p', 1, %s)"
    )
    async with pg_as_user(postgres_db, ALICE) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # RLS: 42501
            await conn.execute(insert, (str(uuid.uuid4()), BOB))
    async with pg_as_user(postgres_db, ALICE) as conn:
        await conn.execute(insert, (str(uuid.uuid4()), ALICE))  # own rows are fine
    for statement in (
        "update cost_tracking set cost = 0 where user_id = %s",
        "delete from cost_tracking where user_id = %s",
    ):
        async with pg_as_user(postgres_db, ALICE) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute(statement, (BOB,))
    for call in (
        "select cost_release('x')",
        "select cost_reserve('x', 'rls', 1, current_date, current_date)",
        "select count(*) from cost_budget_periods",
    ):
        async with pg_as_user(postgres_db, ALICE) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute(call)
    async with await psycopg.AsyncConnection.connect(postgres_db) as owner:
        cursor = await owner.execute(
            "select user_id, count(*), sum(cost) from cost_tracking group by 1 order by 3"
        )
        rows = await cursor.fetchall()
    assert (BOB, 1, Decimal("5")) in rows  # Bob's row is untouched
    assert (ALICE, 3, Decimal("1.3")) in rows
