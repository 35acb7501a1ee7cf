"""The local run store: one SQLite file under a project directory, no server needed.

SQLite in WAL mode with a busy timeout is safe across processes on one machine (two CLI runs at
once, an app and the CLI). Within a process one worker thread owns one connection and runs the
calls in order, so the event loop never blocks on disk and concurrent runs never wait on each
other's write lock (SQLite's busy handler sleeps in steps of milliseconds).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from analysis_pipeline._errors import InvalidInputError, RunNotFoundError, RunStoreError
from analysis_pipeline._records import RunRecord, StepRecord, utcnow

__all__ = ["DEFAULT_PROJECT_DIR", "LocalRunStore"]

DEFAULT_PROJECT_DIR = Path(".llm-common")
"""Default project directory (``$LLM_COMMON_DIR`` overrides it), shared with cost-tracker."""
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
"""


def _ts(value: datetime) -> str:
    # Fixed-width UTC ISO strings sort chronologically as text.
    return value.astimezone(tz=utcnow().tzinfo).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LocalRunStore:
    """Run store in a SQLite database file.

    Args:
        path: Database file, or a directory to hold ``pipeline.sqlite3``. Defaults to
            ``$LLM_COMMON_DIR`` or ``.llm-common/`` in the current working directory.

    Example:
        >>> store = LocalRunStore(".llm-common")
    """

    def __init__(self, path: str | Path | None = None) -> None:
        default = Path(os.environ.get("LLM_COMMON_DIR") or DEFAULT_PROJECT_DIR)
        target = Path(path) if path is not None else default
        if target.suffix not in {".sqlite3", ".sqlite", ".db"}:
            target = target / "pipeline.sqlite3"
        self.path = target
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"LocalRunStore({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        # Runs on the worker thread only; check_same_thread=False lets the finaliser close it.
        if self._conn is not None:
            return self._conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            # WAL + NORMAL: a crash of the app loses nothing committed; only power loss could.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        weakref.finalize(self, conn.close)  # a store dropped without aclose() still closes
        return conn

    async def _run(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        def work() -> _T:
            try:
                conn = self._connect()
            except (OSError, sqlite3.Error) as exc:
                raise RunStoreError(f"cannot open run store {self.path}: {exc}") from exc
            try:
                with conn:
                    return fn(conn)
            except sqlite3.Error as exc:
                raise RunStoreError(f"run store {self.path} failed: {exc}") from exc

        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run-store")
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def save_run(self, run: RunRecord) -> None:
        """Insert or replace the run with ``run.id``."""
        doc = run.model_dump_json()
        await self._run(
            lambda c: c.execute(
                "INSERT INTO pipeline_runs (id, bill_id, started_at, doc) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                (run.id, run.bill_id, _ts(run.started_at), doc),
            )
        )

    async def get_run(self, run_id: str) -> RunRecord:
        """Return the run; raise ``RunNotFoundError`` when there is none."""
        row = await self._run(
            lambda c: c.execute("SELECT doc FROM pipeline_runs WHERE id = ?", (run_id,)).fetchone()
        )
        if row is None:
            raise RunNotFoundError(run_id)
        return RunRecord.model_validate_json(row[0])

    async def list_runs(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bill_id: str | None = None,
        limit: int | None = 100,
    ) -> list[RunRecord]:
        """Return runs started in ``[since, until)``, newest first."""
        sql = "SELECT doc FROM pipeline_runs WHERE 1 = 1"
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
        rows = await self._run(lambda c: c.execute(sql, args).fetchall())
        return [RunRecord.model_validate_json(r[0]) for r in rows]

    async def save_step(self, step: StepRecord) -> None:
        """Insert or replace the step with ``(step.run_id, step.key)``."""
        doc = step.model_dump_json()

        def work(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO pipeline_steps (run_id, key, seq, doc) VALUES (?, ?, "
                "(SELECT COALESCE(MAX(seq), 0) + 1 FROM pipeline_steps WHERE run_id = ?), ?) "
                "ON CONFLICT (run_id, key) DO UPDATE SET doc = excluded.doc",
                (step.run_id, step.key, step.run_id, doc),
            )

        await self._run(work)

    async def list_steps(self, run_id: str) -> list[StepRecord]:
        """Return the run's steps in the order they started."""
        rows = await self._run(
            lambda c: c.execute(
                "SELECT doc FROM pipeline_steps WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        )
        return [StepRecord.model_validate_json(r[0]) for r in rows]

    async def set_quality(self, run_id: str, quality: float) -> None:
        """Record a manual quality score 0..1; raise ``RunNotFoundError`` for unknown runs."""
        if not 0 <= quality <= 1:
            raise InvalidInputError(f"quality must be between 0 and 1, got {quality!r}")
        run = await self.get_run(run_id)
        await self.save_run(run.model_copy(update={"quality_score": quality}))

    async def get_model_configs(self) -> dict[str, list[str]]:
        """Return the admin-configured model chain per step (empty when none is set)."""
        rows = await self._run(
            lambda c: c.execute("SELECT step, models FROM model_configs").fetchall()
        )
        return {step: list(json.loads(models)) for step, models in rows}

    async def set_model_config(self, step: str, models: list[str]) -> None:
        """Set the model chain for ``step`` (admins switch models without a deploy)."""
        payload = json.dumps(list(models))
        await self._run(
            lambda c: c.execute(
                "INSERT INTO model_configs (step, models, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (step) DO UPDATE SET models = excluded.models, "
                "updated_at = excluded.updated_at",
                (step, payload, _ts(utcnow())),
            )
        )

    async def aclose(self) -> None:
        """Close the connection and stop the worker thread (a later call opens them again)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return

        def close() -> None:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

        await asyncio.get_running_loop().run_in_executor(executor, close)
        executor.shutdown(wait=True)
