"""What the core and pipeline migrations create, checked on a real server."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import psycopg
import pytest
from llm_common_db import default_migrations_dir
from llm_common_testkit import pg_as_user, pg_as_user_sync

pytestmark = pytest.mark.postgres


def test_auth_uid_reads_the_sub_claim(postgres_db: str) -> None:
    user = uuid.uuid4()
    with psycopg.connect(postgres_db) as conn:
        assert conn.execute("select auth.uid(), auth.role()").fetchone() == (None, None)
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (json.dumps({"sub": str(user), "role": "authenticated"}),),
        )
        assert conn.execute("select auth.uid(), auth.role()").fetchone() == (user, "authenticated")
        conn.execute("select set_config('request.jwt.claims', '', true)")
        assert conn.execute("select auth.uid()").fetchone() == (None,)
        conn.execute("select set_config('request.jwt.claims', '{\"role\": \"anon\"}', true)")
        assert conn.execute("select auth.uid(), auth.role()").fetchone() == (None, "anon")
        assert conn.execute("select auth.jwt() ->> 'role'").fetchone() == ("anon",)


def test_roles_have_supabase_shape(postgres_db: str) -> None:
    with psycopg.connect(postgres_db) as conn:
        rows = conn.execute(
            "select rolname, rolcanlogin, rolinherit, rolbypassrls from pg_roles"
            " where rolname in ('anon', 'authenticated', 'service_role', 'authenticator')"
            " order by rolname"
        ).fetchall()
        members = conn.execute(
            "select g.rolname from pg_auth_members m join pg_roles g on g.oid = m.roleid"
            " join pg_roles u on u.oid = m.member where u.rolname = 'authenticator'"
            " order by 1"
        ).fetchall()
    assert rows == [
        ("anon", False, False, False),
        ("authenticated", False, False, False),
        ("authenticator", True, False, False),
        ("service_role", False, False, True),
    ]
    assert [m[0] for m in members] == ["anon", "authenticated", "service_role"]


def test_core_file_is_idempotent_on_its_own(postgres_db: str) -> None:
    """Re-running the SQL outside the runner (e.g. `supabase db reset` twice) changes nothing."""
    core = (default_migrations_dir() / "20261124000000_core.sql").read_bytes()
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute(core)
        conn.execute(core)
        assert conn.execute(
            "select count(*) from pg_proc where proname = 'uid'"
            " and pronamespace = 'auth'::regnamespace"
        ).fetchone() == (1,)


async def test_pipeline_tables_are_service_role_only(postgres_db: str) -> None:
    with psycopg.connect(postgres_db) as conn:
        run_id = conn.execute(
            "insert into pipeline_runs (bill_id, jurisdiction, models, total_cost)"
            " values ('hb-1', 'us-ca', '{\"generate\": \"a\"}', 0.0000002) returning id"
        ).fetchone()
        assert run_id is not None
        conn.execute(
            "insert into pipeline_steps (run_id, step, cost) values (%s, 'generate', %s)",
            (run_id[0], Decimal("0.0000000123")),
        )
    for user in (None, uuid.uuid4()):
        with (
            pg_as_user_sync(postgres_db, user) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute("select * from pipeline_runs")
    async with pg_as_user(postgres_db, None, role="service_role") as conn:
        cur = await conn.execute("select total_cost from pipeline_runs")
        assert await cur.fetchall() == [(Decimal("0.0000002"),)]
        cur = await conn.execute("select cost from pipeline_steps")
        assert await cur.fetchall() == [(Decimal("0.0000000123"),)]


def test_pipeline_constraints(postgres_db: str) -> None:
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("insert into pipeline_runs (status) values ('exploded')")
        conn.execute("insert into model_configs (step, priority, model) values ('review', 0, 'a')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "insert into model_configs (step, priority, model) values ('review', 0, 'b')"
            )
        before = conn.execute("select updated_at from model_configs").fetchone()
        conn.execute("update model_configs set model = 'c'")
        after = conn.execute("select updated_at from model_configs").fetchone()
        assert before is not None
        assert after is not None
        assert after[0] >= before[0]
        run = conn.execute("insert into pipeline_runs default values returning id").fetchone()
        assert run is not None
        conn.execute("insert into pipeline_steps (run_id, step) values (%s, 's')", (run[0],))
        conn.execute("delete from pipeline_runs where id = %s", (run[0],))
        assert conn.execute("select count(*) from pipeline_steps").fetchone() == (0,)
        for table in ("pipeline_runs", "pipeline_steps", "model_configs"):
            col = conn.execute(
                "select data_type from information_schema.columns where table_name = %s"
                " and column_name = %s",
                (table, "updated_at" if table == "model_configs" else "started_at"),
            ).fetchone()
            assert col == ("timestamp with time zone",)


def test_bookkeeping_table_is_hidden_from_api_roles(postgres_db: str) -> None:
    """Even where anon is granted every public table (Supabase's defaults), RLS hides it."""
    with psycopg.connect(postgres_db) as owner:
        owner.execute("grant select, insert on llm_common_schema_migrations to anon")
    with pg_as_user_sync(postgres_db, None) as conn:
        assert conn.execute("select count(*) from llm_common_schema_migrations").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "insert into llm_common_schema_migrations (version, name, checksum)"
                " values ('x', 'y', 'z')"
            )


def test_migration_log_is_hidden_from_api_roles(postgres_db: str) -> None:
    with psycopg.connect(postgres_db) as owner:
        assert owner.execute(
            "select count(*) > 0 from llm_common_schema_migration_log where action = 'apply'"
        ).fetchone() == (True,)
        owner.execute("grant select on llm_common_schema_migration_log to anon")
    with pg_as_user_sync(postgres_db, None) as conn:
        row = conn.execute("select count(*) from llm_common_schema_migration_log").fetchone()
        assert row == (0,)
