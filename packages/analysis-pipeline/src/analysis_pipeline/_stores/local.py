"""The local run store: one SQLite file in the state directory, no server needed.

SQLite in WAL mode with a busy timeout is safe across processes on one machine (two CLI runs at
once, an app and the CLI). Within a process one aiosqlite connection (its own thread) serves the
store; an asyncio lock keeps each operation, and each multi-statement transaction, whole.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from analysis_pipeline._errors import (
    InvalidInputError,
    RunInProgressError,
    RunNotFoundError,
    StoreCorruptError,
    StoreError,
)
from analysis_pipeline._records import (
    FlagChange,
    FlagState,
    RunRecord,
    ShadowRecord,
    StepRecord,
    utcnow,
)
from analysis_pipeline._reports import (
    ModelConfigChange,
    ModelReport,
    RunFilter,
    RunPage,
    RunSummary,
    build_model_report,
    check_page,
    check_step,
)
from analysis_pipeline._stores._rows import check_flag_change, run_id_range

__all__ = ["DEFAULT_PROJECT_DIR", "LocalRunStore", "default_state_dir"]

DEFAULT_PROJECT_DIR = Path(".llm-common")
"""The state directory when ``$LLM_COMMON_DIR`` is not set (relative to the working directory)."""
FILE_NAME = "pipeline.sqlite3"
_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pipeline_runs (
    id TEXT PRIMARY KEY,
    bill_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pipeline_runs_started_at ON pipeline_runs (started_at);
CREATE TABLE IF NOT EXISTS pipeline_steps (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS model_configs (
    step TEXT PRIMARY KEY,
    models TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_config_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    step TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pipeline_flags (
    name TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pipeline_flag_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pipeline_shadow_runs (
    id TEXT PRIMARY KEY,
    bill_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pipeline_shadow_runs_started_at ON pipeline_shadow_runs (started_at);
"""
# sqlite3 says this (or "malformed") for a file that is not a database it can read.
_CORRUPT = ("file is not a database", "database disk image is malformed")


def default_state_dir() -> Path:
    """The state directory rule shared by every llm-common package.

    Local backends keep their files under ``$LLM_COMMON_DIR`` when it is set, else under
    ``./.llm-common``; each package uses its own file name inside it (this one
    ``pipeline.sqlite3``). A path given to a store explicitly wins.
    """
    return Path(os.environ.get("LLM_COMMON_DIR") or DEFAULT_PROJECT_DIR)


def _ts(value: datetime) -> str:
    # Fixed-width UTC ISO strings sort chronologically as text.
    return value.astimezone(tz=utcnow().tzinfo).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# A run summary straight from the stored document (not the bill text in its inputs).
_SUMMARY = (
    "json_object("
    + ", ".join(f"'{name}', json_extract(r.doc, '$.{name}')" for name in RunSummary.model_fields)
    + ")"
)


def _bounds(since: datetime | None, until: datetime | None) -> tuple[str | None, ...]:
    low = None if since is None else _ts(since)
    high = None if until is None else _ts(until)
    return (low, low, high, high)


def _window(
    table: str,
    since: datetime | None,
    until: datetime | None,
    bill_id: str | None,
    limit: int | None,
) -> tuple[str, list[object]]:
    """``SELECT doc`` of ``table`` started in ``[since, until)``, newest first."""
    sql = f"SELECT doc FROM {table} WHERE 1 = 1"  # noqa: S608 - table is one of ours
    args: list[object] = []
    if since is not None:
        sql += " AND started_at >= ?"
        args.append(_ts(since))
    if until is not None:
        sql += " AND started_at < ?"
        args.append(_ts(until))
    if bill_id is not None:
        sql += " AND bill_id = ?"
        args.append(bill_id)
    sql += " ORDER BY started_at DESC"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return sql, args


class LocalRunStore:
    """Run store in a SQLite database file.

    Close it with ``aclose()`` (or ``async with``): its connection has a thread of its own.

    Args:
        path: Database file, or a directory to hold ``pipeline.sqlite3``. Defaults to the state
            directory (``$LLM_COMMON_DIR``, else ``.llm-common/`` in the working directory).

    Example:
        >>> store = LocalRunStore(".llm-common")
    """

    def __init__(self, path: str | Path | None = None) -> None:
        target = Path(path) if path is not None else default_state_dir()
        if target.suffix not in {".sqlite3", ".sqlite", ".db"}:
            target = target / FILE_NAME
        self.path = target
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"LocalRunStore({str(self.path)!r})"

    async def __aenter__(self) -> LocalRunStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _error(self, exc: sqlite3.Error) -> StoreError:
        if any(marker in str(exc) for marker in _CORRUPT):
            return StoreCorruptError(self.path)
        return StoreError(f"run store {self.path} failed: {exc}")

    async def _open(self) -> aiosqlite.Connection:
        if self._conn is not None:
            return self._conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            pending = aiosqlite.connect(self.path, timeout=30, isolation_level=None)
            # aiosqlite's worker thread is not a daemon: a store the app never closed would keep
            # the process from exiting. Committed writes are durable, so a daemon loses nothing.
            pending._thread.daemon = True
            conn = await pending
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open run store {self.path}: {exc}") from exc
        try:
            await conn.execute("PRAGMA busy_timeout = 30000")
            # WAL + NORMAL: a crash of the app loses nothing committed; only power loss could.
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            await conn.close()
            raise self._error(exc) from exc
        self._conn = conn

        return conn

    async def _run(self, fn: Callable[[aiosqlite.Connection], Awaitable[_T]]) -> _T:
        async with self._lock:
            conn = await self._open()
            try:
                return await fn(conn)
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    await conn.rollback()
                raise self._error(exc) from exc

    async def _one(self, sql: str, args: Any = ()) -> Any:
        async def fetch(c: aiosqlite.Connection) -> Any:
            async with c.execute(sql, args) as cur:
                return await cur.fetchone()

        return await self._run(fetch)

    async def _all(self, sql: str, args: Any = ()) -> list[Any]:
        async def fetch(c: aiosqlite.Connection) -> list[Any]:
            async with c.execute(sql, args) as cur:
                return list(await cur.fetchall())

        return await self._run(fetch)

    async def _write(self, sql: str, args: Any = ()) -> int:
        async def write(c: aiosqlite.Connection) -> int:
            async with c.execute(sql, args) as cur:
                return cur.rowcount

        return await self._run(write)

    async def save_run(self, run: RunRecord) -> None:
        """Insert or replace the run with ``run.id``."""
        await self._write(
            "INSERT INTO pipeline_runs (id, bill_id, started_at, doc) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            (run.id, run.bill_id, _ts(run.started_at), run.model_dump_json()),
        )

    async def get_run(self, run_id: str) -> RunRecord:
        """Return the run; raise ``RunNotFoundError`` when there is none."""
        row = await self._one("SELECT doc FROM pipeline_runs WHERE id = ?", (run_id,))
        if row is None:
            raise RunNotFoundError(run_id)
        return RunRecord.model_validate_json(row[0])

    async def claim_run(self, run_id: str, owner: str, lease_seconds: float) -> RunRecord:
        """Take the run's lease unless a live process holds it (see ``RunStore.claim_run``)."""

        async def claim(c: aiosqlite.Connection) -> RunRecord:
            # IMMEDIATE takes the write lock first, so two processes cannot both read "dead".
            await c.execute("BEGIN IMMEDIATE")
            try:
                async with c.execute("SELECT doc FROM pipeline_runs WHERE id = ?", (run_id,)) as q:
                    row = await q.fetchone()
                if row is None:
                    raise RunNotFoundError(run_id)
                run = RunRecord.model_validate_json(row[0])
                now = utcnow()
                live = (
                    run.status == "running"
                    and run.lease_owner != owner
                    and run.heartbeat_at is not None
                    and run.heartbeat_at >= now - timedelta(seconds=lease_seconds)
                )
                if live:
                    raise RunInProgressError(run_id, run.lease_owner, run.heartbeat_at)
                claimed = run.model_copy(
                    update={"status": "running", "lease_owner": owner, "heartbeat_at": now,
                            "error": None, "completed_at": None}
                )  # fmt: skip
                await c.execute(
                    "UPDATE pipeline_runs SET doc = ? WHERE id = ?",
                    (claimed.model_dump_json(), run_id),
                )
                await c.commit()
                return claimed
            except BaseException:
                await c.rollback()
                raise

        return await self._run(claim)

    async def heartbeat(self, run_id: str, owner: str) -> bool:
        """Refresh the lease; return False when ``owner`` no longer holds a running run."""
        # One statement, so the check and the write are atomic across processes too.
        changed = await self._write(
            "UPDATE pipeline_runs SET doc = json_set(doc, '$.heartbeat_at', ?) WHERE id = ? "
            "AND json_extract(doc, '$.lease_owner') = ? "
            "AND json_extract(doc, '$.status') = 'running'",
            (utcnow().isoformat(), run_id, owner),
        )
        return changed > 0

    async def find_run_ids(self, prefix: str) -> list[str]:
        """Return the ids of every run whose id starts with ``prefix`` (dashes optional)."""
        bounds = run_id_range(prefix)
        if bounds is None:
            return []
        rows = await self._all(
            "SELECT id FROM pipeline_runs WHERE id BETWEEN ? AND ? ORDER BY id", bounds
        )
        return [str(r[0]) for r in rows]

    async def list_runs(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bill_id: str | None = None,
        limit: int | None = 100,
    ) -> list[RunRecord]:
        """Return runs started in ``[since, until)``, newest first."""
        sql, args = _window("pipeline_runs", since, until, bill_id, limit)
        return [RunRecord.model_validate_json(r[0]) for r in await self._all(sql, args)]

    async def save_step(self, step: StepRecord) -> None:
        """Insert or replace the step with ``(step.run_id, step.key)``."""
        await self._write(
            "INSERT INTO pipeline_steps (run_id, key, seq, doc) VALUES (?, ?, "
            "(SELECT COALESCE(MAX(seq), 0) + 1 FROM pipeline_steps WHERE run_id = ?), ?) "
            "ON CONFLICT (run_id, key) DO UPDATE SET doc = excluded.doc",
            (step.run_id, step.key, step.run_id, step.model_dump_json()),
        )

    async def list_steps(self, run_id: str) -> list[StepRecord]:
        """Return the run's steps in the order they started."""
        rows = await self._all(
            "SELECT doc FROM pipeline_steps WHERE run_id = ? ORDER BY seq", (run_id,)
        )
        return [StepRecord.model_validate_json(r[0]) for r in rows]

    async def set_quality(self, run_id: str, quality: float) -> None:
        """Record a manual quality score 0..1; raise ``RunNotFoundError`` for unknown runs."""
        if not 0 <= quality <= 1:
            raise InvalidInputError(f"quality must be between 0 and 1, got {quality!r}")
        changed = await self._write(
            "UPDATE pipeline_runs SET doc = json_set(doc, '$.quality_score', ?) WHERE id = ?",
            (quality, run_id),
        )
        if not changed:
            raise RunNotFoundError(run_id)

    async def get_model_configs(self) -> dict[str, list[str]]:
        """Return the admin-configured model chain per step (empty when none is set)."""
        rows = await self._all("SELECT step, models FROM model_configs")
        return {step: list(json.loads(models)) for step, models in rows}

    async def set_model_config(
        self, step: str, models: list[str], *, changed_by: str | None = None
    ) -> None:
        """Set the model chain for ``step`` and record the change, in one transaction."""

        async def configure(c: aiosqlite.Connection) -> None:
            await c.execute("BEGIN IMMEDIATE")
            try:
                async with c.execute(
                    "SELECT models FROM model_configs WHERE step = ?", (step,)
                ) as cur:
                    row = await cur.fetchone()
                now = utcnow()
                change = ModelConfigChange(
                    step=step,
                    old_models=json.loads(row[0]) if row else [],
                    new_models=list(models),
                    changed_by=changed_by,
                    changed_at=now,
                )
                await c.execute(
                    "INSERT INTO model_configs (step, models, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (step) DO UPDATE SET models = excluded.models, "
                    "updated_at = excluded.updated_at",
                    (step, json.dumps(list(models)), _ts(now)),
                )
                await c.execute(
                    "INSERT INTO model_config_changes (step, doc) VALUES (?, ?)",
                    (step, change.model_dump_json()),
                )
                await c.commit()
            except BaseException:
                await c.rollback()
                raise

        await self._run(configure)

    async def model_config_changes(
        self, *, step: str | None = None, limit: int = 50
    ) -> list[ModelConfigChange]:
        """Return the latest changes of the model chains (of ``step``, or all), newest first."""
        rows = await self._all(
            "SELECT doc FROM model_config_changes WHERE (? IS NULL OR step = ?) "
            "ORDER BY id DESC LIMIT ?",
            (step, step, limit),
        )
        return [ModelConfigChange.model_validate_json(r[0]) for r in rows]

    async def model_report(
        self,
        step: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        jurisdiction: str | None = None,
    ) -> ModelReport:
        """Per-model statistics of ``step`` over runs started in ``[since, until)``."""
        rows = await self._all(
            "SELECT r.id, r.doc, s.doc FROM pipeline_runs r "
            "JOIN pipeline_steps s ON s.run_id = r.id "
            "WHERE json_extract(s.doc, '$.step') = ? "
            "AND json_extract(s.doc, '$.status') = 'completed' "
            "AND (? IS NULL OR r.started_at >= ?) AND (? IS NULL OR r.started_at < ?) "
            "AND (? IS NULL OR json_extract(r.doc, '$.jurisdiction') = ?) "
            "ORDER BY r.started_at, r.id, s.seq",
            (check_step(step), *_bounds(since, until), jurisdiction, jurisdiction),
        )
        runs: dict[str, tuple[RunRecord, list[StepRecord]]] = {}
        for run_id, run_doc, step_doc in rows:
            if run_id not in runs:
                runs[run_id] = (RunRecord.model_validate_json(run_doc), [])
            runs[run_id][1].append(StepRecord.model_validate_json(step_doc))
        return build_model_report(step, runs.values())

    async def run_page(
        self, filter: RunFilter | None = None, *, offset: int = 0, limit: int = 50
    ) -> RunPage:
        """One page of the runs matching ``filter``, newest first, with the total."""
        f = filter or RunFilter()
        check_page(offset, limit)
        where = (
            "FROM pipeline_runs r WHERE (? IS NULL OR json_extract(r.doc, '$.status') = ?) "
            "AND (? IS NULL OR instr(lower(r.bill_id), lower(?)) > 0) "
            "AND (? IS NULL OR json_extract(r.doc, '$.jurisdiction') = ?) "
            "AND (? IS NULL OR EXISTS (SELECT 1 FROM pipeline_steps s WHERE s.run_id = r.id "
            "AND json_extract(s.doc, '$.model') = ?)) "
            "AND (? IS NULL OR r.started_at >= ?) AND (? IS NULL OR r.started_at < ?)"
        )
        args = (
            *(f.status, f.status, f.bill, f.bill, f.jurisdiction, f.jurisdiction),
            *(f.model, f.model, *_bounds(f.since, f.until)),
        )
        total = await self._one(f"SELECT COUNT(*) {where}", args)
        rows = await self._all(
            f"SELECT {_SUMMARY} {where} ORDER BY r.started_at DESC, r.id DESC LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        runs = [RunSummary.model_validate_json(r[0]) for r in rows]
        return RunPage(runs=runs, total=int(total[0]), offset=offset, limit=limit)

    async def get_flag(self, name: str) -> FlagState | None:
        """Return the rollout flag ``name``, or None when no admin has set it."""
        row = await self._one("SELECT doc FROM pipeline_flags WHERE name = ?", (name,))
        return None if row is None else FlagState.model_validate_json(row[0])

    async def set_flag(
        self, name: str, *, enabled: bool | None, percent: float | None, changed_by: str
    ) -> FlagState:
        """Set the flag and record the change in one transaction (see ``RunStore.set_flag``)."""
        check_flag_change(name, percent, changed_by)

        async def change(c: aiosqlite.Connection) -> FlagState:
            # IMMEDIATE takes the write lock first: the audit row's "old" is what was replaced.
            await c.execute("BEGIN IMMEDIATE")
            try:
                async with c.execute("SELECT doc FROM pipeline_flags WHERE name = ?", (name,)) as q:
                    row = await q.fetchone()
                old = None if row is None else FlagState.model_validate_json(row[0])
                now = utcnow()
                new = FlagState(
                    name=name,
                    enabled=enabled,
                    percent=percent if percent is not None else (old.percent if old else 0.0),
                    updated_at=now,
                    updated_by=changed_by,
                )
                audit = FlagChange(
                    name=name,
                    changed_at=now,
                    changed_by=changed_by,
                    old_enabled=None if old is None else old.enabled,
                    old_percent=None if old is None else old.percent,
                    new_enabled=new.enabled,
                    new_percent=new.percent,
                )
                await c.execute(
                    "INSERT INTO pipeline_flags (name, doc) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET doc = excluded.doc",
                    (name, new.model_dump_json()),
                )
                await c.execute(
                    "INSERT INTO pipeline_flag_changes (name, doc) VALUES (?, ?)",
                    (name, audit.model_dump_json()),
                )
                await c.commit()
                return new
            except BaseException:
                await c.rollback()
                raise

        return await self._run(change)

    async def flag_changes(self, name: str, *, limit: int = 50) -> list[FlagChange]:
        """Return the flag's audited changes, newest first."""
        rows = await self._all(
            "SELECT doc FROM pipeline_flag_changes WHERE name = ? ORDER BY id DESC LIMIT ?",
            (name, limit),
        )
        return [FlagChange.model_validate_json(r[0]) for r in rows]

    async def record_shadow(self, record: ShadowRecord) -> None:
        """Insert the outcome of one shadow run (both arms)."""
        await self._write(
            "INSERT INTO pipeline_shadow_runs (id, bill_id, started_at, doc) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            (record.id, record.bill_id, _ts(record.started_at), record.model_dump_json()),
        )

    async def shadow_results(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bill_id: str | None = None,
        limit: int | None = 100,
    ) -> list[ShadowRecord]:
        """Return shadow runs started in ``[since, until)``, newest first."""
        sql, args = _window("pipeline_shadow_runs", since, until, bill_id, limit)
        return [ShadowRecord.model_validate_json(r[0]) for r in await self._all(sql, args)]

    async def aclose(self) -> None:
        """Close the connection (a later call opens it again)."""
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                await conn.close()
