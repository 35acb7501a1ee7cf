"""The PostgreSQL fixtures: migrated databases, per-test isolation, RLS impersonation, outages."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import psycopg
import pytest
from llm_common_testkit import (
    TcpProxy,
    pg_as_user,
    pg_as_user_sync,
    postgres_required,
    require_postgres,
    rls_conninfo,
)

pytestmark = pytest.mark.postgres


def test_postgres_url_has_every_migration(postgres_url: str) -> None:
    from llm_common_db import discover_migrations

    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("select version from llm_common_schema_migrations").fetchall()
    assert sorted(r[0] for r in rows) == [m.version for m in discover_migrations()]


def test_postgres_db_is_private_to_one_test_part_1(postgres_db: str, postgres_url: str) -> None:
    assert postgres_db != postgres_url
    with psycopg.connect(postgres_db) as conn:
        conn.execute("create table only_here (x int)")
        conn.execute("insert into pipeline_runs (bill_id) values ('hb-1')")


def test_postgres_db_is_private_to_one_test_part_2(postgres_db: str) -> None:
    with psycopg.connect(postgres_db) as conn:
        assert conn.execute("select to_regclass('only_here')").fetchone() == (None,)
        assert conn.execute("select count(*) from pipeline_runs").fetchone() == (0,)


RLS_TABLE = """
create table notes (id serial primary key, owner uuid not null default auth.uid(), body text);
alter table notes enable row level security;
create policy notes_own on notes for all to authenticated
    using (owner = auth.uid()) with check (owner = auth.uid());
grant select, insert, update, delete on notes to authenticated;
grant usage on sequence notes_id_seq to authenticated;
"""


async def test_pg_as_user_applies_rls(postgres_db: str) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(postgres_db) as owner:
        owner.execute(RLS_TABLE.encode())
    async with pg_as_user(postgres_db, alice) as conn:
        assert await (await conn.execute("select auth.uid()")).fetchone() == (alice,)
        await conn.execute("insert into notes (body) values ('alice note')")
    async with pg_as_user(postgres_db, bob) as conn:
        cur = await conn.execute("select count(*) from notes")
        assert await cur.fetchone() == (0,)
        cur = await conn.execute("update notes set body = 'mine now' returning id")
        assert await cur.fetchall() == []
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute("insert into notes (owner, body) values (%s, 'forged')", (alice,))
    with (
        pg_as_user_sync(postgres_db, None) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("select * from notes")
    with psycopg.connect(postgres_db) as owner:
        assert owner.execute("select body from notes").fetchall() == [("alice note",)]


def test_authenticator_is_not_the_owner(postgres_db: str) -> None:
    with psycopg.connect(rls_conninfo(postgres_db)) as conn:
        row = conn.execute(
            "select current_user, rolsuper, rolbypassrls from pg_roles where rolname = current_user"
        ).fetchone()
    assert row == ("authenticator", False, False)


def test_tcp_proxy_outage_and_recovery(postgres_db: str, tcp_proxy: TcpProxy) -> None:
    url = tcp_proxy.url_for(postgres_db)
    conn = psycopg.connect(url, autocommit=True)
    assert conn.execute("select 1").fetchone() == (1,)
    assert tcp_proxy.connection_count == 1
    port = tcp_proxy.port

    tcp_proxy.stop()
    with pytest.raises(psycopg.OperationalError):
        conn.execute("select 1")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)

    tcp_proxy.start()
    assert tcp_proxy.port == port
    with psycopg.connect(url) as again:
        assert again.execute("select 2").fetchone() == (2,)


def test_tcp_proxy_is_usable_from_async_code(postgres_db: str) -> None:
    async def query(url: str) -> int:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            row = await (await conn.execute("select 41 + 1")).fetchone()
            assert row is not None
            return int(row[0])

    import asyncio

    with TcpProxy.for_url(postgres_db) as proxy:
        assert asyncio.run(query(proxy.url_for(postgres_db))) == 42


_POLICY_VARS = ("CI", "LLM_COMMON_REQUIRE_POSTGRES")


def _run_pytest_without_server(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / "test_needs_pg.py"
    test_file.write_text(
        textwrap.dedent(
            """
            def test_uses_db(postgres_db):
                assert postgres_db
            """
        )
    )
    with socket_free_port() as port:
        full_env = {
            **{
                k: v
                for k, v in os.environ.items()
                if k not in ("CI", "LLM_COMMON_REQUIRE_POSTGRES")
            },
            "TEST_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/postgres",
            **env,
        }
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(test_file)],
            cwd=tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=120,
        )


class socket_free_port:
    """A loopback port with nothing listening (bound, never listened on, for the block)."""

    def __enter__(self) -> int:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        return int(self._sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


@pytest.mark.slow
def test_unreachable_postgres_skips_locally(tmp_path: Path) -> None:
    result = _run_pytest_without_server(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "PostgreSQL is not reachable" in result.stdout


@pytest.mark.slow
def test_unreachable_postgres_fails_when_required(tmp_path: Path) -> None:
    result = _run_pytest_without_server(tmp_path, LLM_COMMON_REQUIRE_POSTGRES="1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "PostgreSQL is not reachable" in result.stdout


@pytest.mark.parametrize(
    ("env", "required"),
    [
        ({}, False),
        ({"LLM_COMMON_REQUIRE_POSTGRES": "0"}, False),
        ({"LLM_COMMON_REQUIRE_POSTGRES": "1"}, True),
        ({"CI": "true"}, True),
    ],
)
def test_required_policy(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], required: bool
) -> None:
    for var in _POLICY_VARS:
        monkeypatch.delenv(var, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert postgres_required() is required


def test_reap_leftovers_drops_only_dead_runs() -> None:
    from llm_common_testkit import create_database, drop_database, require_postgres
    from llm_common_testkit._databases import reap_leftovers

    admin = require_postgres()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_name = f"llmc_{int(dead.stdout)}_{uuid.uuid4().hex[:8]}_t"
    live_name = f"llmc_{os.getppid()}_{uuid.uuid4().hex[:8]}_t"
    for name in (dead_name, live_name):
        create_database(admin, name)
    try:
        reap_leftovers(admin, min_age_hours=100)  # too young: kept
        assert dead_name in _database_names(admin)
        reap_leftovers(admin, min_age_hours=0)
        names = _database_names(admin)
        assert dead_name not in names
        assert live_name in names
    finally:
        drop_database(admin, live_name)
        drop_database(admin, dead_name)


def _database_names(admin: str) -> set[str]:
    with psycopg.connect(admin) as conn:
        return {r[0] for r in conn.execute("select datname from pg_database").fetchall()}


def test_leftover_contract_roles_of_dead_processes_are_reaped() -> None:
    from llm_common_testkit._databases import reap_leftover_roles

    admin = require_postgres()
    dead, alive = "llmc_contract_999999999_dead", f"llmc_contract_{os.getpid()}_mine"
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in (dead, alive):
            conn.execute(f'drop role if exists "{name}"')
            conn.execute(f'create role "{name}" login')
    try:
        reap_leftover_roles(admin)
        with psycopg.connect(admin) as conn:
            rows = conn.execute(
                "select rolname from pg_roles where rolname = any(%s)", ([dead, alive],)
            ).fetchall()
        assert [r[0] for r in rows] == [alive]
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'drop role if exists "{alive}"')
            conn.execute(f'drop role if exists "{dead}"')
