"""The migration plan's own SQL (LLM_FRAMEWORK_MIGRATION.md) runs as written (issue 12)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg
import pytest
from llm_common_testkit import pg_as_user_sync

pytestmark = pytest.mark.postgres


def _cost(conn: psycopg.Connection[tuple[object, ...]], project: str, cost: str, at: str) -> None:
    conn.execute(
        "insert into cost_tracking (idempotency_id, project, provider, model, cost, created_at)"
        " values (%s, %s, 'openrouter', 'm', %s, %s)",
        (str(uuid.uuid4()), project, Decimal(cost), at),
    )


def test_monitoring_queries_as_the_plan_writes_them(postgres_db: str) -> None:
    with psycopg.connect(postgres_db) as conn:
        _cost(conn, "affordabot", "0.0000001", "2024-12-01T00:00:00Z")
        _cost(conn, "prime-radiant", "1.25", "2024-12-31T23:59:59.999Z")
        _cost(conn, "affordabot", "7", "2025-01-01T00:00:00Z")  # next month, UTC
        _cost(conn, "affordabot", "3", "2024-11-30T23:59:59Z")
        conn.execute("insert into cost_tracking (idempotency_id, provider) values ('u', 'x')")
        _cost(conn, "affordabot", "0.5", "now")
        # The plan's lines, verbatim:
        daily = conn.execute("SELECT get_daily_cost(CURRENT_DATE);").fetchall()
        monthly = conn.execute("SELECT get_monthly_cost(2024, 12);").fetchall()
        # RETURNS TABLE(total_cost ...), as in the plan: the column is selectable by name too.
        named = conn.execute("select total_cost from get_daily_cost('2024-12-31')").fetchall()
        # The project-aware forms still resolve as before.
        project = conn.execute(
            "select get_daily_cost('affordabot', %s::date)", ("2024-12-01",)
        ).fetchone()
    assert daily == [(Decimal("0.5"),)]
    assert monthly == [(Decimal("1.2500001"),)]  # exact: every project, UTC month
    assert named == [(Decimal("1.25"),)]
    assert project == (Decimal("0.0000001"),)


def test_cleanup_functions_as_the_plan_calls_them(postgres_db: str) -> None:
    user = uuid.uuid4()
    with psycopg.connect(postgres_db) as conn:
        conn.execute(
            "insert into web_search_cache (key, provider, query, payload, expires_at) values"
            " ('old', 'zai', 'q', '{}', now() - interval '1 second'),"
            " ('new', 'zai', 'q', '{}', now() + interval '1 hour')"
        )
        conn.execute("select conversation_append(%s, 'c', 'user', 'ancient')", (user,))
        conn.execute(
            "update conversations set created_at = now() - interval '91 days' where user_id = %s",
            (user,),
        )
        conn.execute("select conversation_append(%s, 'c', 'user', 'recent')", (user,))
        assert conn.execute("SELECT cleanup_search_cache();").fetchone() == (None,)
        assert conn.execute("SELECT cleanup_conversations();").fetchone() == (None,)
        keys = conn.execute("select key from web_search_cache").fetchall()
        messages = conn.execute("select content from conversations").fetchall()
    assert keys == [("new",)]
    assert messages == [("recent",)]


def test_plan_functions_are_for_the_server_only(postgres_db: str) -> None:
    """All-project totals and cleanups are not for the API roles (anon, end users)."""
    for call in (
        "select get_daily_cost(current_date)",
        "select get_monthly_cost(2024, 12)",
        "select cleanup_search_cache()",
        "select cleanup_conversations()",
    ):
        with (
            pg_as_user_sync(postgres_db, uuid.uuid4()) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute(call)
