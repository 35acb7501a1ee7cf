"""Apply ``db/migrations/*.sql`` to a PostgreSQL (or Supabase) database, in order, once each.

Why hand-written rather than yoyo-migrations or alembic: the files are plain SQL in Supabase's
naming and must stay copyable into ``supabase/migrations/`` unchanged, so all we need is "run each
new file once, in order, record it". yoyo (the closest fit) splits statements on the client and
serialises concurrent runs with a polling lock *table* (sleep loop) plus its own four bookkeeping
tables; alembic wants Python revision files. Here the server parses each whole file (simple query
protocol, so dollar-quoted function bodies need no client-side parsing), a transaction-scoped
advisory lock (``pg_advisory_xact_lock``) serialises concurrent runs — it works through Supabase's
transaction pooler, where session-level locks would leak — and no prepared statements are used
(``prepare_threshold=None``, which the pooler requires). It is ~150 lines.

Bookkeeping lives in one table, ``llm_common_schema_migrations(version, name, checksum,
applied_at)``; the sha256 checksum of every applied file is verified on each run, and a changed
file is an error (:class:`~llm_common_db.ChecksumMismatchError`), never silently re-applied.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import psycopg
from psycopg.pq import TransactionStatus

from ._conninfo import parse_conninfo
from ._errors import ChecksumMismatchError, MigrationFailedError, MigrationFileError

__all__ = [
    "Migration",
    "MigrationState",
    "default_migrations_dir",
    "discover_migrations",
    "migrate",
    "migrate_sync",
    "migration_status",
]

logger = logging.getLogger(__name__)

TABLE = "llm_common_schema_migrations"
# One fixed 64-bit key ('llmcdb' in ASCII) shared by every process migrating the same database.
LOCK_KEY = 0x6C6C6D636462
_NAME_RE = re.compile(r"^(?P<version>\d{14})_(?P<name>[A-Za-z0-9_]+)\.sql$")

# RLS with no policy: on Supabase, default privileges grant every new public table to anon and
# authenticated, which would expose the bookkeeping through the REST API.
_CREATE_TABLE = b"""
do $$
begin
    if to_regclass('public.llm_common_schema_migrations') is null then
        create table public.llm_common_schema_migrations (
            version text primary key,
            name text not null,
            checksum text not null,
            applied_at timestamptz not null default now()
        );
        alter table public.llm_common_schema_migrations enable row level security;
    end if;
end
$$
"""
_T = TypeVar("_T")


@dataclass(frozen=True)
class Migration:
    """One migration file.

    Attributes:
        version: The 14-digit ``YYYYMMDDHHMMSS`` prefix; files apply in this order.
        name: The rest of the file name, without ``.sql``.
        path: Where the file lives.
        checksum: sha256 hex digest of the file's bytes.
    """

    version: str
    name: str
    path: Path
    checksum: str

    @property
    def filename(self) -> str:
        """The file name, ``<version>_<name>.sql``."""
        return f"{self.version}_{self.name}.sql"


@dataclass(frozen=True)
class MigrationState:
    """A migration and whether it is applied to a given database.

    Attributes:
        version: The migration version.
        name: The migration name.
        state: ``applied``, ``pending``, ``changed`` (applied, file edited since) or ``unknown``
            (recorded in the database, but no such file in the directory).
    """

    version: str
    name: str
    state: Literal["applied", "pending", "changed", "unknown"]


def default_migrations_dir() -> Path:
    """Return the migrations directory shipped with this package.

    An installed wheel carries the files inside the package (``llm_common_db/migrations``); in
    the workspace (editable install) they live at ``db/migrations`` in the repository.

    Raises:
        MigrationFileError: Neither location exists.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "migrations", here.parents[1] / "migrations"):
        if candidate.is_dir():
            return candidate
    raise MigrationFileError(f"no migrations directory next to {here} or in {here.parents[1]}")


def discover_migrations(directory: Path | str | None = None) -> list[Migration]:
    """List the migration files in ``directory`` (default: :func:`default_migrations_dir`).

    Raises:
        MigrationFileError: A ``.sql`` file is misnamed or two files share a version.
    """
    root = Path(directory) if directory is not None else default_migrations_dir()
    if not root.is_dir():
        raise MigrationFileError(f"migrations directory {root} does not exist")
    found: dict[str, Migration] = {}
    for path in sorted(root.glob("*.sql")):
        match = _NAME_RE.match(path.name)
        if match is None:
            raise MigrationFileError(
                f"{path.name}: migration files must be named <YYYYMMDDHHMMSS>_<name>.sql"
            )
        version = match["version"]
        if version in found:
            raise MigrationFileError(
                f"{path.name} and {found[version].filename} share version {version}"
            )
        checksum = hashlib.sha256(path.read_bytes()).hexdigest()
        found[version] = Migration(version, match["name"], path, checksum)
    return [found[v] for v in sorted(found)]


async def _connect(database_url: str, connect_timeout: float) -> psycopg.AsyncConnection[Any]:
    # Parsed first: libpq's parse errors quote the string, password included.
    parsed = parse_conninfo(database_url)
    return await psycopg.AsyncConnection.connect(
        parsed.conninfo,
        password=parsed.password,
        autocommit=True,  # every transaction below is an explicit conn.transaction() block
        prepare_threshold=None,  # Supabase's transaction pooler breaks server-side prepares
        connect_timeout=max(1, round(connect_timeout)),
    )


async def _lock_and_read(conn: psycopg.AsyncConnection[Any]) -> dict[str, tuple[str, str]]:
    """Inside a transaction: take the migration lock, make sure the table exists, read it."""
    await conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_KEY,))
    await conn.execute(_CREATE_TABLE)
    cur = await conn.execute(
        "select version, name, checksum from public.llm_common_schema_migrations"
    )
    return {version: (name, checksum) for version, name, checksum in await cur.fetchall()}


def _check(migration: Migration, recorded: dict[str, tuple[str, str]]) -> bool:
    """Return True if ``migration`` is applied; raise if it was applied with other contents."""
    if migration.version not in recorded:
        return False
    checksum = recorded[migration.version][1]
    if checksum != migration.checksum:
        raise ChecksumMismatchError(migration.version, migration.name, checksum, migration.checksum)
    return True


async def migrate(
    database_url: str,
    directory: Path | str | None = None,
    *,
    connect_timeout: float = 10,
) -> list[str]:
    """Apply every migration not yet recorded in the database, in version order.

    Each file runs in its own transaction together with its bookkeeping row, under a
    transaction-scoped advisory lock, so concurrent runs against one database are safe: each
    file is applied exactly once and the loser of the race just sees it recorded.

    Args:
        database_url: A libpq connection string or URL (may include a password; never logged).
        directory: The migrations directory; default :func:`default_migrations_dir`.
        connect_timeout: Seconds to wait for the server.

    Returns:
        The file names applied by this call (empty when the database was up to date).

    Raises:
        ChecksumMismatchError: An applied file changed on disk.
        MigrationFailedError: The database rejected a file (that file rolled back; earlier
            files in this run stay applied).
        MigrationFileError: A misnamed or duplicate file.
        InvalidConnectionStringError: ``database_url`` cannot be parsed (not echoed).
        psycopg.OperationalError: The database cannot be reached (the message names host,
            port, user and database, never the password).
    """
    migrations = discover_migrations(directory)
    applied: list[str] = []
    async with await _connect(database_url, connect_timeout) as conn:
        async with conn.transaction():
            recorded = await _lock_and_read(conn)
        pending = [m for m in migrations if not _check(m, recorded)]
        for migration in pending:
            async with conn.transaction():
                # Re-read under the lock: another process may have applied it meanwhile.
                if _check(migration, await _lock_and_read(conn)):
                    continue
                try:
                    # bytes and no parameters: psycopg uses the simple query protocol, so the
                    # server runs the whole multi-statement file.
                    await conn.execute(migration.path.read_bytes())
                except psycopg.Error as exc:
                    raise MigrationFailedError(
                        migration.version, migration.name, exc.sqlstate, str(exc).strip()
                    ) from exc
                if conn.info.transaction_status != TransactionStatus.INTRANS:
                    # A COMMIT/ROLLBACK inside the file ended our transaction: whatever ran
                    # after it is not atomic with the bookkeeping row, so refuse loudly.
                    raise MigrationFileError(
                        f"{migration.filename} ended the migration's transaction; files must "
                        "not contain BEGIN/COMMIT/ROLLBACK (each file already runs in one)"
                    )
                await conn.execute(
                    "insert into public.llm_common_schema_migrations (version, name, checksum)"
                    " values (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            logger.info("applied migration %s", migration.filename)
            applied.append(migration.filename)
    return applied


async def migration_status(
    database_url: str,
    directory: Path | str | None = None,
    *,
    connect_timeout: float = 10,
) -> list[MigrationState]:
    """Compare the migrations directory with what the database has recorded.

    Returns:
        One entry per known version, in version order.
    """
    migrations = discover_migrations(directory)
    async with await _connect(database_url, connect_timeout) as conn, conn.transaction():
        recorded = await _lock_and_read(conn)
    states: dict[str, MigrationState] = {}
    for m in migrations:
        if m.version not in recorded:
            states[m.version] = MigrationState(m.version, m.name, "pending")
        elif recorded[m.version][1] != m.checksum:
            states[m.version] = MigrationState(m.version, m.name, "changed")
        else:
            states[m.version] = MigrationState(m.version, m.name, "applied")
    for version, (name, _) in recorded.items():
        states.setdefault(version, MigrationState(version, name, "unknown"))
    return [states[v] for v in sorted(states)]


def _run_in_thread(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` on a private event loop in a worker thread.

    A thread keeps this callable from anywhere — inside a running loop, or from a sync pytest
    fixture — without touching the caller's event loop.
    """
    result: list[_T] = []
    error: list[BaseException] = []

    def runner() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=runner, name="llm-common-db-migrate")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def migrate_sync(
    database_url: str,
    directory: Path | str | None = None,
    *,
    connect_timeout: float = 10,
) -> list[str]:
    """Blocking form of :func:`migrate` (for CLIs and sync code); same arguments and errors."""
    return _run_in_thread(migrate(database_url, directory, connect_timeout=connect_timeout))
