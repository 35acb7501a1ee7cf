"""Undo applied migrations with their down files, newest first, refusing to destroy data.

A down file (``down/<same name as the up file>``) drops what its up file *added*. What the up
file *replaced* (a function given a new signature, a policy rewritten) comes back by re-running
the package's earlier, still-applied files right after the down file, in the same transaction:
they are idempotent and recreate exactly the state they left. So down files stay short and
never copy another file's SQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ._errors import MigrationError, MigrationFileError, RollbackRefusedError
from ._migrate import (
    CORE,
    Migration,
    _connect,
    _lock_and_read,
    check_packages,
    discover_migrations,
    log_action,
    relax_function_bodies,
    run_file,
)
from ._objects import SchemaObject, dropped_tables_and_columns

__all__ = ["rollback"]

logger = logging.getLogger(__name__)


async def rollback(
    database_url: str,
    directory: Path | str | None = None,
    *,
    to: str | None = None,
    packages: Iterable[str] | None = None,
    force: bool = False,
    connect_timeout: float = 10,
) -> list[str]:
    """Roll back applied migrations with their down files, newest first.

    Each file rolls back in its own transaction (down file, then the package's earlier applied
    files re-run to restore what it replaced, then its bookkeeping row deleted and a
    ``rollback`` row logged), under the migration lock.

    Args:
        database_url: As for :func:`~llm_common_db.migrate`.
        directory: As for :func:`~llm_common_db.migrate`.
        to: Roll back every applied file with a later version than this one (``"0"``: all).
        packages: Roll back only these packages' files (with ``to``: only those after it).
            ``core`` can go only when no other package's file stays applied.
        force: Drop tables and columns even when they hold rows.
        connect_timeout: Seconds to wait for the server.

    Returns:
        The file names rolled back, in the order they were.

    Raises:
        RollbackRefusedError: A down file would drop a table (or a column of a table) holding
            rows and ``force`` is false; nothing was rolled back.
        MigrationFileError: A file to roll back has no down file, or is not in the directory.
        MigrationError: Neither ``to`` nor ``packages`` given, or an unknown version/package.
        MigrationFailedError: The database rejected a down file (that file stays applied).
    """
    wanted = set(packages or ())
    if to is None and not wanted:
        raise MigrationError("say what to roll back: a version (--to) or a package (--package)")
    migrations = discover_migrations(directory)
    check_packages(migrations, wanted)
    if to is not None and to != "0" and to not in {m.version for m in migrations}:
        raise MigrationError(f"unknown version {to!r}: use a version from `status`, or 0 for all")
    by_version = {m.version: m for m in migrations}
    done: list[str] = []
    async with await _connect(database_url, connect_timeout) as conn:
        async with conn.transaction():
            recorded = await _lock_and_read(conn)
            targets = _targets(by_version, recorded, to, wanted)
            for migration in targets:
                await _refuse_data_loss(conn, migration, force)
        for migration in targets:
            async with conn.transaction():
                recorded = await _lock_and_read(conn)
                if migration.version not in recorded:
                    continue  # rolled back by someone else meanwhile
                await _refuse_data_loss(conn, migration, force)
                assert migration.down is not None  # checked by _targets
                await run_file(conn, migration, migration.down.read_bytes())
                restore = _still_applied(migrations, recorded, migration)
                if restore:
                    await relax_function_bodies(conn)
                for earlier in restore:
                    await run_file(conn, earlier, earlier.path.read_bytes())
                await conn.execute(
                    "delete from public.llm_common_schema_migrations where version = %s",
                    (migration.version,),
                )
                await log_action(conn, migration, "rollback", "forced" if force else None)
            logger.info("rolled back migration %s", migration.filename)
            done.append(migration.filename)
    return done


def _targets(
    by_version: dict[str, Migration],
    recorded: dict[str, tuple[str, str]],
    to: str | None,
    wanted: set[str],
) -> list[Migration]:
    """The applied files to roll back, newest first; checked for down files and core's users."""
    versions = sorted(recorded, reverse=True)
    if to is not None:
        versions = [v for v in versions if v > to]
    missing_files = [v for v in versions if v not in by_version]
    if wanted:
        versions = [v for v in versions if v in by_version and by_version[v].package in wanted]
    elif missing_files:
        raise MigrationFileError(
            f"cannot roll back {recorded[missing_files[0]][0]} ({missing_files[0]}): "
            "no such file in the migrations directory"
        )
    targets = [by_version[v] for v in versions]
    leaving = set(versions)
    if any(m.package == CORE for m in targets):
        users = sorted(
            {
                by_version[v].package or "?"
                for v in recorded
                if v not in leaving and v in by_version and by_version[v].package != CORE
            }
        )
        if users:
            raise MigrationError(
                f"core is still needed by {', '.join(users)}: roll those packages back first"
            )
    for migration in targets:
        if migration.down is None:
            raise MigrationFileError(
                f"{migration.filename} has no down file (down/{migration.filename}): "
                "it cannot be rolled back"
            )
    return targets


def _still_applied(
    migrations: Sequence[Migration], recorded: dict[str, tuple[str, str]], undone: Migration
) -> list[Migration]:
    """The earlier applied files of ``undone``'s package, re-run to restore what it replaced."""
    if undone.package is None or undone.package == CORE:
        return []
    return [
        m
        for m in migrations
        if m.package == undone.package and m.version < undone.version and m.version in recorded
    ]


async def _refuse_data_loss(
    conn: psycopg.AsyncConnection[Any], migration: Migration, force: bool
) -> None:
    """Raise RollbackRefusedError if the down file drops a table (or column) holding rows."""
    if force:
        return
    assert migration.down is not None
    for obj in dropped_tables_and_columns(migration.down.read_text("utf-8")):
        table = obj.table if obj.kind == "column" else obj.name
        assert table is not None
        rows = await _count_rows(conn, table)
        if rows:
            raise RollbackRefusedError(migration.filename, _describe(obj), table, rows)


async def _count_rows(conn: psycopg.AsyncConnection[Any], table: str) -> int:
    cur = await conn.execute("select to_regclass(%s) is not null", (table,))
    row = await cur.fetchone()
    if not (row and row[0]):
        return 0
    schema, _, name = table.partition(".")
    cur = await conn.execute(
        sql.SQL("select count(*) from {}.{}").format(sql.Identifier(schema), sql.Identifier(name))
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


def _describe(obj: SchemaObject) -> str:
    return f"table {obj.name}" if obj.kind == "table" else f"column {obj.name}"
