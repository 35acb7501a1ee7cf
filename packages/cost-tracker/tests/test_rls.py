"""Row-level security on real PostgreSQL: users see and write only their own cost rows."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cost_tracker import CostMetrics, CostTracker
from llm_common_testkit import pg_as_user
from llm_common_testkit.costs import estimate

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
    async with pg_as_user(postgres_db, ALICE) as conn:  # own rows, but a project not allowed
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute(insert, (str(uuid.uuid4()), ALICE))
    async with await psycopg.AsyncConnection.connect(postgres_db, autocommit=True) as owner:
        await owner.execute("select cost_allow_project('rls')")
    async with pg_as_user(postgres_db, ALICE) as conn:
        await conn.execute(insert, (str(uuid.uuid4()), ALICE))  # own rows, allowed project
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


async def test_supabase_users_write_only_their_own_rows_into_allowed_projects(
    supabase_server: Any, postgres_db: str, tmp_path: Path
) -> None:
    # Issue 17, 4: the policy checked only user_id, so one forged row made another project's
    # daily cost read $1,000,000.
    from cost_tracker import SupabaseCostStore
    from postgrest.exceptions import APIError
    from supabase import acreate_client

    server = supabase_server
    service = await acreate_client(server.url, server.service_key)
    await service.rpc("cost_allow_project", {"p_project": "app"}).execute()
    tracker = CostTracker(
        SupabaseCostStore(service, owns_client=True),
        daily_budget="1",
        project="app",
        outbox_path=tmp_path / "outbox.sqlite",
        retry_interval=None,
    )
    user = await acreate_client(server.url, server.anon_key)
    user.postgrest.auth(server.jwt_for(ALICE))

    def row(project: str, user_id: uuid.UUID, **extra: str) -> dict[str, str]:
        return {
            "idempotency_id": str(uuid.uuid4()),
            "project": project,
            "provider": "p",
            "cost": "1000000",
            "user_id": str(user_id),
            **extra,
        }

    try:
        async with tracker:
            await tracker.log_cost(CostMetrics(provider="p", cost=Decimal("0.25")))
            for forged in (row("victim", ALICE), row("app", BOB)):
                with pytest.raises(APIError) as denied:
                    await user.table("cost_tracking").insert(forged).execute()
                assert denied.value.code == "42501"
            # Allowed project, own user: accepted, stamped as an end-user row whatever it says.
            mine = row("app", ALICE, written_by="server")
            await user.table("cost_tracking").insert(mine).execute()
            assert await tracker.get_daily_cost(project="victim") == 0
            assert await tracker.get_daily_cost() == Decimal("1000000.25")
            assert await tracker.get_daily_cost(server_rows_only=True) == Decimal("0.25")
            today = datetime.now(UTC).date()
            rows = await tracker.get_cost_breakdown(
                today, today + timedelta(days=1), "project", server_rows_only=True
            )
            assert [(r.key, r.total_cost, r.calls) for r in rows] == [("app", Decimal("0.25"), 1)]
            records = await tracker.get_records(
                today, today + timedelta(days=1), server_rows_only=True
            )
            assert [r.cost for r in records] == [Decimal("0.25")]
            # Budgets count server rows only: the end user's row refuses nothing.
            await tracker.release(await tracker.reserve(estimate(Decimal("0.7"))))
            assert (await tracker.budget_status()).spent == Decimal("0.25")
    finally:
        await user.postgrest.aclose()
    async with await psycopg.AsyncConnection.connect(postgres_db) as owner:
        cursor = await owner.execute(
            "select written_by, user_id from cost_tracking where project = 'app' order by 1"
        )
        assert await cursor.fetchall() == [("server", None), ("user", ALICE)]


def test_the_report_command_can_leave_out_end_user_rows(postgres_db: str, tmp_path: Path) -> None:
    from cost_tracker._cli import app
    from typer.testing import CliRunner

    async def rows() -> None:
        await seed(postgres_db, tmp_path)  # server rows: 0.1 + 0.2 + 5
        async with await psycopg.AsyncConnection.connect(postgres_db, autocommit=True) as owner:
            await owner.execute("select cost_allow_project('rls')")
        async with pg_as_user(postgres_db, ALICE) as conn:
            await conn.execute(
                "insert into cost_tracking (idempotency_id, project, provider, cost, user_id) "
                "values (%s, 'rls', 'p', 1000, %s)",
                (str(uuid.uuid4()), ALICE),
            )

    asyncio.run(rows())
    today = datetime.now(UTC).date().isoformat()
    args = ["report", "--since", today, "--database-url", postgres_db, "--by", "project"]
    runner = CliRunner()
    everything = runner.invoke(app, args)
    server_only = runner.invoke(app, [*args, "--server-rows-only"])
    assert everything.exit_code == server_only.exit_code == 0, everything.output
    assert "1005.3" in everything.output
    assert "1005.3" not in server_only.output
    assert "5.3" in server_only.output
