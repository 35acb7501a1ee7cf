"""Apply ``db/migrations/*.sql`` to a PostgreSQL (or Supabase) database, in order, once each.

Why hand-written rather than yoyo-migrations or alembic: the files are plain SQL in Supabase's
naming and must stay copyable into ``supabase/migrations/`` unchanged, so all we need is "run each
new file once, in order, record it". yoyo (the closest fit) splits statements on the client and
serialises concurrent runs with a polling lock *table* (sleep loop) plus its own four bookkeeping
tables; alembic wants Python revision files. Here the server parses each whole file (simple query
protocol, so dollar-quoted function bodies need no client-side parsing), a transaction-scoped
advisory lock (``pg_advisory_xact_lock``) serialises concurrent runs — it works through Supabase's
transaction pooler, where session-level locks would leak — and no prepared statements are used
(``prepare_threshold=None``, which the pooler requires).

Bookkeeping lives in ``llm_common_schema_migrations(version, name, checksum, applied_at)``; the
sha256 checksum of every applied file is verified on each run, and a changed file is an error
(:class:`~llm_common_db.ChecksumMismatchError`), never silently re-applied. Every apply, rollback
and repair is also logged in ``llm_common_schema_migration_log``.

Which package each file belongs to is read from the directory's ``packages.toml`` (not from a
header in the files: adding one would change the checksums databases already recorded);
``--package`` applies the ``core`` files plus the named packages'. ``status`` also compares each
applied file's objects with the catalog (:mod:`._objects`) to report drift, which
:func:`repair` re-applies. Rolling back lives in :mod:`._rollback`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
import tomllib
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import psycopg
from psycopg.pq import TransactionStatus

from ._conninfo import parse_conninfo
from ._errors import (
    ChecksumMismatchError,
    MigrationError,
    MigrationFailedError,
    MigrationFileError,
)
from ._objects import SchemaObject, expected_objects, missing_objects

__all__ = [
    "Migration",
    "MigrationState",
    "default_migrations_dir",
    "discover_migrations",
    "migrate",
    "migrate_sync",
    "migration_status",
    "repair",
]

logger = logging.getLogger(__name__)

TABLE = "llm_common_schema_migrations"
MANIFEST = "packages.toml"
DOWN_DIR = "down"
CORE = "core"
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
    if to_regclass('public.llm_common_schema_migration_log') is null then
        create table public.llm_common_schema_migration_log (
            id bigint generated always as identity primary key,
            version text not null,
            name text not null,
            action text not null check (action in ('apply', 'rollback', 'repair')),
            detail text,
            at timestamptz not null default now(),
            by_user text not null default current_user
        );
        alter table public.llm_common_schema_migration_log enable row level security;
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
        package: The package whose tables the file builds (``core``, ``cost-tracker``, ...), from
            the directory's ``packages.toml``; None when the directory has no manifest.
        down: The file that undoes it (``down/<same name>``), None when there is none.
    """

    version: str
    name: str
    path: Path
    checksum: str
    package: str | None = None
    down: Path | None = None

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
        state: ``applied``, ``pending``, ``changed`` (applied, file edited since), ``drift``
            (applied, but objects it created are gone: dropped by hand) or ``unknown`` (recorded
            in the database, but no such file in the directory).
        package: The file's package, when the directory has a manifest.
        missing: For ``drift``: the objects that should exist and do not, e.g.
            ``("table public.cost_tracking",)``.
    """

    version: str
    name: str
    state: Literal["applied", "pending", "changed", "drift", "unknown"]
    package: str | None = None
    missing: tuple[str, ...] = field(default=())


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

    Each file's package comes from the directory's ``packages.toml`` (when there is one) and its
    down file from ``down/<same name>`` (when there is one).

    Raises:
        MigrationFileError: A ``.sql`` file is misnamed, two files share a version, the manifest
            is unreadable, or it does not list a file.
    """
    root = Path(directory) if directory is not None else default_migrations_dir()
    if not root.is_dir():
        raise MigrationFileError(f"migrations directory {root} does not exist")
    packages = _read_manifest(root)
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
        if packages is not None and path.name not in packages:
            raise MigrationFileError(
                f"{path.name} is not listed in {root / MANIFEST}: add it under its package"
            )
        checksum = hashlib.sha256(path.read_bytes()).hexdigest()
        down = root / DOWN_DIR / path.name
        found[version] = Migration(
            version,
            match["name"],
            path,
            checksum,
            package=packages[path.name] if packages is not None else None,
            down=down if down.is_file() else None,
        )
    return [found[v] for v in sorted(found)]


def _read_manifest(root: Path) -> dict[str, str] | None:
    """``packages.toml`` as {file name: package}; None when the directory has none."""
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MigrationFileError(f"{path} is not valid TOML: {exc}") from None
    owners: dict[str, str] = {}
    for package, files in data.items():
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise MigrationFileError(f"{path}: {package} must be a list of file names")
        for name in files:
            if name in owners:
                raise MigrationFileError(
                    f"{path}: {name} is listed under both {owners[name]} and {package}"
                )
            owners[name] = package
    return owners


def known_packages(migrations: Sequence[Migration]) -> list[str]:
    """The package names the files belong to (``core`` first), for ``--package``."""
    names = sorted({m.package for m in migrations if m.package is not None})
    return sorted(names, key=lambda n: n != CORE)


def select_migrations(
    migrations: Sequence[Migration], packages: Iterable[str] | None
) -> list[Migration]:
    """The files ``--package`` selects: core's, the named packages', and any without a package.

    Args:
        migrations: From :func:`discover_migrations`.
        packages: Package names; None (or empty) selects every file.

    Raises:
        MigrationError: A name no file belongs to.
    """
    wanted = set(packages or ())
    if not wanted:
        return list(migrations)
    check_packages(migrations, wanted)
    return [m for m in migrations if m.package is None or m.package in wanted | {CORE}]


def check_packages(migrations: Sequence[Migration], wanted: Iterable[str]) -> None:
    """Raise MigrationError naming the ``wanted`` packages no file belongs to."""
    known = known_packages(migrations)
    unknown = sorted(set(wanted) - set(known))
    if not unknown:
        return
    names = ", ".join(map(repr, unknown))
    if not known:
        raise MigrationError(
            f"unknown package {names}: this migrations directory has no {MANIFEST} "
            "assigning files to packages"
        )
    raise MigrationError(f"unknown package {names}: expected one of {', '.join(known)}")


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
    packages: Iterable[str] | None = None,
) -> list[str]:
    """Apply every migration not yet recorded in the database, in version order.

    Each file runs in its own transaction together with its bookkeeping row, under a
    transaction-scoped advisory lock, so concurrent runs against one database are safe: each
    file is applied exactly once and the loser of the race just sees it recorded.

    Args:
        database_url: A libpq connection string or URL (may include a password; never logged).
        directory: The migrations directory; default :func:`default_migrations_dir`.
        connect_timeout: Seconds to wait for the server.
        packages: Apply only the ``core`` files and these packages' files (e.g.
            ``["conversation-memory"]``); None applies every file.

    Returns:
        The file names applied by this call (empty when the database was up to date).

    Raises:
        ChecksumMismatchError: An applied file changed on disk.
        MigrationFailedError: The database rejected a file (that file rolled back; earlier
            files in this run stay applied).
        MigrationFileError: A misnamed or duplicate file.
        MigrationError: An unknown package name.
        InvalidConnectionStringError: ``database_url`` cannot be parsed (not echoed).
        psycopg.OperationalError: The database cannot be reached (the message names host,
            port, user and database, never the password).
    """
    migrations = select_migrations(discover_migrations(directory), packages)
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
                await run_file(conn, migration, migration.path.read_bytes())
                await conn.execute(
                    "insert into public.llm_common_schema_migrations (version, name, checksum)"
                    " values (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
                await log_action(conn, migration, "apply")
            logger.info("applied migration %s", migration.filename)
            applied.append(migration.filename)
    return applied


async def run_file(conn: psycopg.AsyncConnection[Any], migration: Migration, sql: bytes) -> None:
    """Inside a transaction: run ``sql`` (the migration's file or its down file) whole.

    Raises:
        MigrationFailedError: The database rejected it.
        MigrationFileError: It ended the transaction (COMMIT/ROLLBACK inside).
    """
    version, name = migration.version, migration.name
    try:
        # bytes and no parameters: psycopg uses the simple query protocol, so the server runs
        # the whole multi-statement file.
        await conn.execute(sql)
    except psycopg.Error as exc:
        raise MigrationFailedError(version, name, exc.sqlstate, str(exc).strip()) from exc
    if conn.info.transaction_status != TransactionStatus.INTRANS:
        # A COMMIT/ROLLBACK inside the file ended our transaction: whatever ran after it is
        # not atomic with the bookkeeping row, so refuse loudly.
        raise MigrationFileError(
            f"{migration.filename} ended the migration's transaction; files must "
            "not contain BEGIN/COMMIT/ROLLBACK (each file already runs in one)"
        )


async def log_action(
    conn: psycopg.AsyncConnection[Any],
    migration: Migration,
    action: Literal["apply", "rollback", "repair"],
    detail: str | None = None,
) -> None:
    """Record an apply, rollback or repair in ``llm_common_schema_migration_log``."""
    await conn.execute(
        "insert into public.llm_common_schema_migration_log (version, name, action, detail)"
        " values (%s, %s, %s, %s)",
        (migration.version, migration.name, action, detail),
    )


async def relax_function_bodies(conn: psycopg.AsyncConnection[Any]) -> None:
    """For the rest of the transaction, do not check SQL function bodies while re-running files.

    Re-running an earlier file over a later file's schema can meet that later state mid-way: a
    function body the earlier file creates may call a name the later file overloaded (e.g.
    ``get_cost_total`` with an extra defaulted argument), which is ambiguous until the later
    file, run next, drops the old signatures. pg_dump's restores switch the check off for the
    same reason; every body was checked when its file was first applied.
    """
    await conn.execute("set local check_function_bodies = off")


async def _drift(
    conn: psycopg.AsyncConnection[Any],
    migrations: Sequence[Migration],
    recorded: dict[str, tuple[str, str]],
) -> dict[str, tuple[SchemaObject, ...]]:
    """{version: objects missing} for the applied, unchanged files whose objects are gone."""
    applied = [m for m in migrations if recorded.get(m.version, ("", ""))[1] == m.checksum]
    expected = expected_objects([(m.version, m.path.read_text("utf-8")) for m in applied])
    drift: dict[str, list[SchemaObject]] = {}
    for obj in await missing_objects(conn, expected):
        drift.setdefault(expected[obj], []).append(obj)
    return {version: tuple(objs) for version, objs in drift.items()}


async def migration_status(
    database_url: str,
    directory: Path | str | None = None,
    *,
    connect_timeout: float = 10,
    packages: Iterable[str] | None = None,
) -> list[MigrationState]:
    """Compare the migrations directory with what the database has recorded and holds.

    An applied file whose tables, columns, functions, indexes, policies or triggers no longer
    exist (dropped by hand) is ``drift``, with the missing objects listed.

    Args:
        database_url: As for :func:`migrate`.
        directory: As for :func:`migrate`.
        connect_timeout: As for :func:`migrate`.
        packages: Report only the ``core`` files and these packages' files (and any recorded
            version no file matches); None reports every file.

    Returns:
        One entry per known version, in version order.
    """
    migrations = select_migrations(discover_migrations(directory), packages)
    async with await _connect(database_url, connect_timeout) as conn, conn.transaction():
        recorded = await _lock_and_read(conn)
        drift = await _drift(conn, migrations, recorded)
    states: dict[str, MigrationState] = {}
    for m in migrations:
        if m.version not in recorded:
            state: Literal["pending", "changed", "drift", "applied"] = "pending"
        elif recorded[m.version][1] != m.checksum:
            state = "changed"
        elif m.version in drift:
            state = "drift"
        else:
            state = "applied"
        missing = tuple(str(o) for o in drift.get(m.version, ()))
        states[m.version] = MigrationState(m.version, m.name, state, m.package, missing)
    known = {m.version for m in discover_migrations(directory)}
    for version, (name, _) in recorded.items():
        if version not in known:
            states.setdefault(version, MigrationState(version, name, "unknown"))
    return [states[v] for v in sorted(states)]


async def repair(
    database_url: str,
    directory: Path | str | None = None,
    *,
    connect_timeout: float = 10,
    packages: Iterable[str] | None = None,
) -> dict[str, tuple[str, ...]]:
    """Re-apply the applied files whose objects are missing (drift), and record it.

    The files are idempotent, so re-running one restores what was dropped. Every later applied
    file of the same package runs again too (of every package when a ``core`` file drifted):
    a later file may have altered what the earlier one re-creates (a column added, a function
    replaced), and re-running them in order restores exactly the migrated schema. Everything
    runs in one transaction under the migration lock; each re-applied file gets a ``repair``
    row in ``llm_common_schema_migration_log``.

    Some drift cannot be repaired this way: a foreign key that went with a table dropped by
    ``CASCADE`` belongs to a table that still exists, which ``create table if not exists`` leaves
    alone. :func:`migration_status` still reports it afterwards.

    Args:
        database_url: As for :func:`migrate`.
        directory: As for :func:`migrate`.
        connect_timeout: As for :func:`migrate`.
        packages: Repair only the ``core`` files and these packages' files.

    Returns:
        {file name: objects it restored} for every re-applied file, in order (empty when
        nothing drifted; a file re-applied only because it follows a drifted one maps to ()).

    Raises:
        ChecksumMismatchError: An applied file changed on disk (it cannot be re-applied).
        MigrationFailedError: The database rejected a file; nothing was changed.
    """
    migrations = select_migrations(discover_migrations(directory), packages)
    repaired: dict[str, tuple[str, ...]] = {}
    async with await _connect(database_url, connect_timeout) as conn, conn.transaction():
        recorded = await _lock_and_read(conn)
        applied = [m for m in migrations if _check(m, recorded)]
        drift = await _drift(conn, applied, recorded)
        if not drift:
            return {}
        package_of = {m.version: m.package for m in applied}
        rerun = [
            m
            for m in applied
            if any(v <= m.version and package_of[v] in {m.package, CORE} for v in drift)
        ]
        await relax_function_bodies(conn)
        for m in rerun:
            await run_file(conn, m, m.path.read_bytes())
        still = await _drift(conn, applied, recorded)
        for m in rerun:
            restored = tuple(
                str(o) for o in drift.get(m.version, ()) if o not in still.get(m.version, ())
            )
            await log_action(conn, m, "repair", "; ".join(restored) or "re-run after repair")
            repaired[m.filename] = restored
    for filename in repaired:
        logger.info("repaired migration %s", filename)
    return repaired


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
    packages: Iterable[str] | None = None,
) -> list[str]:
    """Blocking form of :func:`migrate` (for CLIs and sync code); same arguments and errors."""
    return _run_in_thread(
        migrate(database_url, directory, connect_timeout=connect_timeout, packages=packages)
    )
