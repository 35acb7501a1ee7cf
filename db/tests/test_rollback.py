"""`llm-common-db rollback`: down files in reverse order, data guard, schema round trips."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest
from llm_common_db import (
    MigrationError,
    MigrationFileError,
    RollbackRefusedError,
    discover_migrations,
    migrate,
    migration_status,
    rollback,
)

from ._helpers import PACKAGE_TABLES, run_cli, schema_dump

pytestmark = pytest.mark.postgres


def _exists(url: str, table: str) -> bool:
    with psycopg.connect(url) as conn:
        found = conn.execute("select to_regclass(%s)", (f"public.{table}",)).fetchone()
    return found is not None and found[0] is not None


def _log(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select version, action from llm_common_schema_migration_log order by id"
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


@pytest.mark.parametrize("package", sorted(PACKAGE_TABLES))
def test_rollback_package_then_migrate_restores_the_same_schema(
    empty_db: str, other_empty_db: str, package: str
) -> None:
    assert run_cli("migrate", "--database-url", empty_db).returncode == 0
    before = schema_dump(empty_db)
    own = [m for m in discover_migrations() if m.package == package]
    others = [p for p in PACKAGE_TABLES if p != package]
    without: list[str] = []
    for other in others:
        without += ["--package", other]
    assert run_cli("migrate", *without, "--database-url", other_empty_db).returncode == 0

    down = run_cli("rollback", "--package", package, "--database-url", empty_db)
    assert down.returncode == 0, down.stderr
    rolled = [line.split()[-1] for line in down.stdout.splitlines() if "rolled back " in line]
    assert rolled == [m.filename for m in reversed(own)]  # newest first
    assert not _exists(empty_db, PACKAGE_TABLES[package])
    for other, table in PACKAGE_TABLES.items():
        if other != package:
            assert _exists(empty_db, table), other
    # The down files remove exactly what the package's files add: nothing left behind.
    assert schema_dump(empty_db) == schema_dump(other_empty_db)
    status = run_cli("status", "--database-url", empty_db)
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count("pending") == len(own)

    up = run_cli("migrate", "--package", package, "--database-url", empty_db)
    assert up.returncode == 0, up.stderr
    assert schema_dump(empty_db) == before
    status = run_cli("status", "--database-url", empty_db)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "pending" not in status.stdout
    assert "drift" not in status.stdout
    actions = [a for v, a in _log(empty_db) if v in {m.version for m in own}]
    assert actions == ["apply"] * len(own) + ["rollback"] * len(own) + ["apply"] * len(own)


async def test_rollback_to_version_and_to_zero_round_trip(
    empty_db: str, other_empty_db: str
) -> None:
    pristine = schema_dump(other_empty_db)
    await migrate(other_empty_db, packages=[])  # every file
    await migrate(empty_db, packages=["core"])
    core_only = schema_dump(empty_db)
    await migrate(empty_db)
    before = schema_dump(empty_db)
    assert before == schema_dump(other_empty_db)
    core = discover_migrations()[0]
    done = await rollback(empty_db, to=core.version)
    assert done == [m.filename for m in reversed(discover_migrations()[1:])]
    assert next(s.state for s in await migration_status(empty_db)) == "applied"
    assert schema_dump(empty_db) == core_only
    await migrate(empty_db)
    assert schema_dump(empty_db) == before

    everything = await rollback(empty_db, to="0")
    assert everything[-1] == core.filename
    assert schema_dump(empty_db) == pristine  # back to an empty database
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select to_regprocedure('auth.uid()')").fetchone() == (None,)
    await migrate(empty_db)
    assert schema_dump(empty_db) == before
    assert {s.state for s in await migration_status(empty_db)} == {"applied"}


async def test_rollback_of_one_file_restores_what_it_replaced(
    empty_db: str, tmp_path: Path
) -> None:
    """A later file that replaced a function: its rollback brings the old one back."""
    (tmp_path / "packages.toml").write_text(
        'x = ["20990101000000_a.sql", "20990101000001_b.sql"]\n'
    )
    (tmp_path / "20990101000000_a.sql").write_text(
        "create table if not exists t (id int);\n"
        "create or replace function f(p int) returns int language sql as $$ select p $$;\n"
    )
    (tmp_path / "20990101000001_b.sql").write_text(
        "alter table t add column if not exists note text;\n"
        "drop function if exists f(int);\n"
        "create or replace function f(p int, q text default null) returns int\n"
        "language sql as $$ select p + 1 $$;\n"
    )
    (tmp_path / "down").mkdir()
    (tmp_path / "down" / "20990101000000_a.sql").write_text(
        "drop function if exists f(int);\ndrop table if exists t;\n"
    )
    (tmp_path / "down" / "20990101000001_b.sql").write_text(
        "drop function if exists f(int, text);\nalter table t drop column if exists note;\n"
    )
    only_a = tmp_path / "only_a"
    only_a.mkdir()
    (only_a / "20990101000000_a.sql").write_bytes((tmp_path / "20990101000000_a.sql").read_bytes())

    await migrate(empty_db, only_a)
    expected = schema_dump(empty_db)
    await migrate(empty_db, tmp_path)
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select f(1)").fetchone() == (2,)
    assert await rollback(empty_db, tmp_path, to="20990101000000") == ["20990101000001_b.sql"]
    assert schema_dump(empty_db) == expected
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select f(1)").fetchone() == (1,)
    assert [s.state for s in await migration_status(empty_db, tmp_path)] == ["applied", "pending"]


def test_refuses_to_drop_a_table_holding_rows(empty_db: str) -> None:
    assert run_cli("migrate", "--database-url", empty_db).returncode == 0
    with psycopg.connect(empty_db) as conn:
        conn.execute(
            "insert into cost_tracking (idempotency_id, project, provider, model, step, cost)"
            " values ('a', 'p', 'openrouter', 'm', 'generate', 0.25)"
        )
    before = schema_dump(empty_db)
    result = run_cli(
        "rollback",
        "--package",
        "cost-tracker",
        "--database-url",
        empty_db.replace("postgres@", "postgres:hunter2-secret@"),
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: refusing to roll back")
    # the newest cost-tracker file touching cost_tracking is the first refused
    assert re.search(r"drops (table|column) public\.cost_tracking\b.*\b1 row\(s\)", lines[0])
    assert "--force" in lines[0]
    assert "hunter2-secret" not in result.stderr
    assert schema_dump(empty_db) == before  # nothing rolled back, not even the later files
    status = run_cli("status", "--database-url", empty_db)
    assert status.returncode == 0
    assert "pending" not in status.stdout

    forced = run_cli("rollback", "--package", "cost-tracker", "--force", "--database-url", empty_db)
    assert forced.returncode == 0, forced.stderr
    assert not _exists(empty_db, "cost_tracking")


async def test_dropping_columns_of_a_table_with_rows_is_refused(empty_db: str) -> None:
    await migrate(empty_db, packages=["analysis-pipeline"])
    with psycopg.connect(empty_db) as conn:
        conn.execute("insert into pipeline_runs (bill_id) values ('hb-1')")
    pipeline = [m for m in discover_migrations() if m.package == "analysis-pipeline"]
    with pytest.raises(RollbackRefusedError) as info:
        await rollback(empty_db, to=pipeline[0].version)
    assert info.value.table == "public.pipeline_runs"
    assert info.value.rows == 1
    assert "of a table holding 1 row(s)" in str(info.value)


async def test_core_goes_last_and_bad_requests_are_errors(empty_db: str) -> None:
    await migrate(empty_db, packages=["web-search"])
    with pytest.raises(MigrationError, match="core is still needed by web-search"):
        await rollback(empty_db, packages=["core"])
    with pytest.raises(MigrationError, match="unknown version"):
        await rollback(empty_db, to="123")
    with pytest.raises(MigrationError, match="--to"):
        await rollback(empty_db)
    assert await rollback(empty_db, packages=["web-search", "core"]) == [
        m.filename for m in reversed(discover_migrations()) if m.package in {"web-search", "core"}
    ]
    assert await rollback(empty_db, to="0") == []


async def test_a_file_without_down_file_cannot_be_rolled_back(
    empty_db: str, migrations_copy: object
) -> None:
    await migrate(empty_db, migrations_copy)  # type: ignore[arg-type]
    with pytest.raises(MigrationFileError, match="has no down file"):
        await rollback(empty_db, migrations_copy, to="0")  # type: ignore[arg-type]


def test_cli_rollback_needs_a_target(empty_db: str) -> None:
    result = run_cli("rollback", "--database-url", empty_db)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: say what to roll back: --to VERSION or --package NAME"
