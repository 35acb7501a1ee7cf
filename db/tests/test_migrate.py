"""migrate(): order, idempotence, concurrency, checksum drift, failures."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from llm_common_db import (
    ChecksumMismatchError,
    MigrationFailedError,
    MigrationFileError,
    default_migrations_dir,
    discover_migrations,
    migrate,
    migrate_sync,
    migration_status,
)

pytestmark = pytest.mark.postgres


def _recorded(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select version, checksum from llm_common_schema_migrations order by version"
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def test_default_dir_is_the_repo_migrations() -> None:
    directory = default_migrations_dir()
    assert (directory / "20261124000000_core.sql").is_file()
    names = [m.filename for m in discover_migrations()]
    assert names == sorted(names)
    assert names[0] == "20261124000000_core.sql"


async def test_applies_all_in_order_then_is_a_no_op(empty_db: str) -> None:
    expected = discover_migrations()
    applied = await migrate(empty_db)
    assert applied == [m.filename for m in expected]
    assert _recorded(empty_db) == [(m.version, m.checksum) for m in expected]

    assert await migrate(empty_db) == []
    assert migrate_sync(empty_db) == []
    assert _recorded(empty_db) == [(m.version, m.checksum) for m in expected]
    states = await migration_status(empty_db)
    assert {s.state for s in states} == {"applied"}


@pytest.mark.slow
def test_two_processes_at_once_apply_every_file_once(empty_db: str) -> None:
    cmd = [sys.executable, "-m", "llm_common_db", "migrate", "--database-url", empty_db]
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out + err
    lines = [line for out, _ in outputs for line in out.splitlines()]
    applied_lines = [line.split()[1] for line in lines if line.startswith("applied ")]
    expected = [m.filename for m in discover_migrations()]
    assert sorted(applied_lines) == expected  # each file applied by exactly one process
    assert [v for v, _ in _recorded(empty_db)] == [m.version for m in discover_migrations()]


async def test_concurrent_tasks_in_one_process(empty_db: str) -> None:
    results = await asyncio.gather(*(migrate(empty_db) for _ in range(4)))
    flat = sorted(name for result in results for name in result)
    assert flat == [m.filename for m in discover_migrations()]


async def test_edited_applied_file_is_an_error(empty_db: str, migrations_copy: Path) -> None:
    await migrate(empty_db, migrations_copy)
    core = migrations_copy / "20261124000000_core.sql"
    core.write_text(core.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(ChecksumMismatchError) as info:
        await migrate(empty_db, migrations_copy)
    assert info.value.version == "20261124000000"
    assert "never edit an applied migration" in str(info.value)
    states = {s.version: s.state for s in await migration_status(empty_db, migrations_copy)}
    assert states["20261124000000"] == "changed"


async def test_new_file_applies_alone(empty_db: str, migrations_copy: Path) -> None:
    await migrate(empty_db, migrations_copy)
    (migrations_copy / "29990101000000_extra.sql").write_text(
        "create table extra (id int);\n"
        "create function extra_count() returns bigint language sql\n"
        "as $$ select count(*) from extra $$;"
    )
    assert await migrate(empty_db, migrations_copy) == ["29990101000000_extra.sql"]
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select extra_count()").fetchone() == (0,)


async def test_failing_file_rolls_back_and_is_not_recorded(
    empty_db: str, migrations_copy: Path
) -> None:
    (migrations_copy / "29990101000000_bad.sql").write_text(
        "create table half_done (id int);\nselect no_such_function();\n"
    )
    with pytest.raises(MigrationFailedError) as info:
        await migrate(empty_db, migrations_copy)
    assert info.value.sqlstate == "42883"
    assert "29990101000000_bad.sql" in str(info.value)
    versions = [v for v, _ in _recorded(empty_db)]
    assert "29990101000000" not in versions
    assert versions == ["20261124000000", "20261124000400"]  # the good files stay applied
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select to_regclass('half_done')").fetchone() == (None,)


def test_misnamed_and_duplicate_files_are_rejected(migrations_copy: Path) -> None:
    bad = migrations_copy / "add_things.sql"
    bad.write_text("select 1;")
    with pytest.raises(MigrationFileError, match="YYYYMMDDHHMMSS"):
        discover_migrations(migrations_copy)
    bad.unlink()
    (migrations_copy / "20261124000000_again.sql").write_text("select 1;")
    with pytest.raises(MigrationFileError, match="share version"):
        discover_migrations(migrations_copy)
    with pytest.raises(MigrationFileError, match="does not exist"):
        discover_migrations(migrations_copy / "nope")


async def test_unreachable_database_raises_operational_error() -> None:
    with pytest.raises(psycopg.OperationalError):
        await migrate("postgresql://postgres@127.0.0.1:1/postgres", connect_timeout=1)


async def test_file_that_commits_is_refused(empty_db: str, migrations_copy: Path) -> None:
    (migrations_copy / "29990101000000_commits.sql").write_text(
        "create table t1 (id int);\ncommit;\ncreate table t2 (id int);\n"
    )
    with pytest.raises(MigrationFileError, match="BEGIN/COMMIT/ROLLBACK"):
        await migrate(empty_db, migrations_copy)
    assert "29990101000000" not in [v for v, _ in _recorded(empty_db)]
