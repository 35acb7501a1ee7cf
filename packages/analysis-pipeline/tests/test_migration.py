"""The run-lease migration is idempotent and leaves the lease functions service-role only."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres
LEASE_SQL = Path(__file__).resolve().parents[3] / (
    "db/migrations/20261202000200_pipeline_run_lease.sql"
)


async def test_lease_migration_applies_twice_and_is_not_granted_to_end_users(
    postgres_db: str,
) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(postgres_db, autocommit=True) as conn:
        await conn.execute(LEASE_SQL.read_text())  # already applied once by the migrator
        for fn in ("pipeline_claim_run(uuid, text, double precision)",
                   "pipeline_heartbeat(uuid, text)"):  # fmt: skip
            for role, allowed in (("service_role", True), ("anon", False),
                                  ("authenticated", False)):  # fmt: skip
                cur = await conn.execute(
                    "select has_function_privilege(%s, %s, 'execute')", (role, f"public.{fn}")
                )
                row = await cur.fetchone()
                assert row is not None
                assert row[0] is allowed, (role, fn)
        cur = await conn.execute(
            "select count(*) from information_schema.columns where table_name = 'pipeline_runs' "
            "and column_name in ('lease_owner', 'heartbeat_at')"
        )
        row = await cur.fetchone()
        assert row is not None
        assert row[0] == 2


SWITCH_SQL = LEASE_SQL.with_name("20261202001000_pipeline_switch.sql")


async def test_switch_migration_applies_twice_and_end_users_see_nothing(
    postgres_db: str,
) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(postgres_db, autocommit=True) as conn:
        await conn.execute(SWITCH_SQL.read_text())  # already applied once by the migrator
        await conn.execute(
            "select * from public.pipeline_set_flag('llm-framework', false, 10, 'ops')"
        )
        for role, allowed in (("service_role", True), ("anon", False),
                              ("authenticated", False)):  # fmt: skip
            cur = await conn.execute(
                "select has_function_privilege(%s, "
                "'public.pipeline_set_flag(text, boolean, numeric, text)', 'execute')",
                (role,),
            )
            row = await cur.fetchone()
            assert row is not None
            assert row[0] is allowed, role
            for table in ("pipeline_flags", "pipeline_flag_changes", "pipeline_shadow_runs"):
                cur = await conn.execute(
                    "select has_table_privilege(%s, %s, 'select')", (role, f"public.{table}")
                )
                row = await cur.fetchone()
                assert row is not None
                assert row[0] is allowed, (role, table)
        cur = await conn.execute(
            "select count(*) from pg_class where relrowsecurity and relname in "
            "('pipeline_flags', 'pipeline_flag_changes', 'pipeline_shadow_runs')"
        )
        row = await cur.fetchone()
        assert row is not None
        assert row[0] == 3
