"""PostgreSQL run store: ``pipeline_runs``, ``pipeline_steps`` and ``model_configs`` from db/.

Needs the ``postgres`` extra (psycopg 3 and psycopg_pool). Works through Supabase's transaction
pooler too: server-side prepared statements are disabled.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

try:
    from psycopg import errors as pg_errors
    from psycopg.rows import dict_row
    from psycopg.types.json import Jsonb
    from psycopg_pool import AsyncConnectionPool, PoolTimeout
except ImportError as exc:
    from analysis_pipeline._errors import MissingExtraError

    raise MissingExtraError("PostgresRunStore", "postgres") from exc

from analysis_pipeline._errors import (
    InvalidInputError,
    RunInProgressError,
    RunNotFoundError,
    StoreError,
)
from analysis_pipeline._records import RunRecord, StepRecord
from analysis_pipeline._stores._rows import run_from_row, run_to_row, step_from_row, step_to_row

__all__ = ["PostgresRunStore"]

_RUN_COLUMNS = (
    "id", "bill_id", "jurisdiction", "status", "models", "input_hash", "inputs", "result",
    "review_passed", "review_score", "manual_quality_score", "rounds", "total_cost",
    "prompt_tokens", "completion_tokens", "latency_ms", "error", "started_at", "finished_at",
    "lease_owner", "heartbeat_at",
)  # fmt: skip
_STEP_COLUMNS = (
    "run_id", "step", "round", "model", "status", "output", "cost", "prompt_tokens",
    "completion_tokens", "latency_ms", "attempts", "searches", "error", "started_at",
    "finished_at",
)  # fmt: skip
_JSON = frozenset({"models", "inputs", "result", "output"})


def _params(row: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    return {c: Jsonb(row[c]) if c in _JSON and row[c] is not None else row[c] for c in columns}


def _upsert(table: str, columns: tuple[str, ...], conflict: str, keep: tuple[str, ...]) -> str:
    names = ", ".join(columns)
    values = ", ".join(f"%({c})s" for c in columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keep)
    # Built once at import from the constant column lists above, never from input.
    return (
        f"insert into public.{table} ({names}) values ({values}) "  # noqa: S608
        f"on conflict ({conflict}) do update set {updates}"
    )


_UPSERT_RUN = _upsert("pipeline_runs", _RUN_COLUMNS, "id", ("id", "started_at"))
_UPSERT_STEP = _upsert("pipeline_steps", _STEP_COLUMNS, "run_id, step, round", ("run_id",))


class PostgresRunStore:
    """Run store on PostgreSQL (or Supabase's Postgres) through a psycopg connection pool.

    Args:
        conninfo: Connection string (``postgresql://...``); never logged.
        min_size: Pool connections kept open.
        max_size: Pool connections at most.
        pool: An existing ``AsyncConnectionPool`` to use instead (not closed by ``aclose``).
        timeout: Seconds to wait for a connection before failing with ``StoreError``.
    """

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        min_size: int = 1,
        max_size: int = 8,
        pool: AsyncConnectionPool[Any] | None = None,
        timeout: float = 10.0,
    ) -> None:
        if pool is None and not conninfo:
            raise InvalidInputError("PostgresRunStore needs a connection string or a pool")
        self._owns_pool = pool is None
        self._pool: AsyncConnectionPool[Any] = pool or AsyncConnectionPool(
            conninfo or "",
            min_size=min_size,
            max_size=max_size,
            open=False,
            timeout=timeout,
            kwargs={"prepare_threshold": None, "autocommit": True},
        )
        self._timeout = timeout
        self._opened = False

    def __repr__(self) -> str:
        return "PostgresRunStore(<conninfo hidden>)"

    async def _conn_pool(self) -> AsyncConnectionPool[Any]:
        if self._owns_pool and not self._opened:
            try:
                await self._pool.open(wait=True, timeout=self._timeout)
            except PoolTimeout:
                await self._pool.close()
                # The connection string may hold a password: never put it in the message.
                raise StoreError(
                    f"cannot connect to PostgreSQL within {self._timeout:g} s"
                ) from None
            self._opened = True
        return self._pool

    async def _fetch(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        pool = await self._conn_pool()
        try:
            async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(sql, params)
                return list(await cur.fetchall()) if cur.description else []
        except pg_errors.Error as exc:
            raise StoreError(f"PostgreSQL run store failed: {type(exc).__name__}: {exc}") from exc

    async def save_run(self, run: RunRecord) -> None:
        """Insert or replace the run with ``run.id``."""
        row = run_to_row(run)
        row["started_at"], row["finished_at"] = run.started_at, run.completed_at
        row["heartbeat_at"] = run.heartbeat_at
        row["total_cost"] = run.cost if run.cost is not None else 0
        await self._fetch(_UPSERT_RUN, _params(row, _RUN_COLUMNS))

    async def get_run(self, run_id: str) -> RunRecord:
        """Return the run; raise ``RunNotFoundError`` when there is none."""
        try:
            rows = await self._fetch(
                "select * from public.pipeline_runs where id = %s::uuid", (run_id,)
            )
        except StoreError as exc:
            if isinstance(exc.__cause__, pg_errors.InvalidTextRepresentation):
                raise RunNotFoundError(run_id) from None
            raise
        if not rows:
            raise RunNotFoundError(run_id)
        return run_from_row(rows[0])

    async def claim_run(self, run_id: str, owner: str, lease_seconds: float) -> RunRecord:
        """Take the run's lease unless a live process holds it (``pipeline_claim_run``)."""
        try:
            rows = await self._fetch(
                "select * from public.pipeline_claim_run(%s::uuid, %s, %s)",
                (run_id, owner, lease_seconds),
            )
        except StoreError as exc:
            if isinstance(exc.__cause__, pg_errors.InvalidTextRepresentation):
                raise RunNotFoundError(run_id) from None
            raise
        if rows:
            return run_from_row(rows[0])
        run = await self.get_run(run_id)  # RunNotFoundError when there is none
        raise RunInProgressError(run_id, run.lease_owner, run.heartbeat_at)

    async def heartbeat(self, run_id: str, owner: str) -> bool:
        """Refresh the lease; return False when ``owner`` no longer holds a running run."""
        rows = await self._fetch(
            "select public.pipeline_heartbeat(%s::uuid, %s) as held", (run_id, owner)
        )
        return bool(rows and rows[0]["held"])

    async def list_runs(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bill_id: str | None = None,
        limit: int | None = 100,
    ) -> list[RunRecord]:
        """Return runs started in ``[since, until)``, newest first."""
        rows = await self._fetch(
            "select * from public.pipeline_runs "
            "where (%(since)s::timestamptz is null or started_at >= %(since)s) "
            "and (%(until)s::timestamptz is null or started_at < %(until)s) "
            "and (%(bill)s::text is null or bill_id = %(bill)s) "
            "order by started_at desc limit %(limit)s",
            {"since": since, "until": until, "bill": bill_id, "limit": limit},
        )
        return [run_from_row(r) for r in rows]

    async def save_step(self, step: StepRecord) -> None:
        """Insert or replace the step with ``(run_id, step, round)``."""
        row = step_to_row(step)
        row["started_at"], row["finished_at"] = step.started_at, step.completed_at
        row["cost"] = step.cost
        await self._fetch(_UPSERT_STEP, _params(row, _STEP_COLUMNS))

    async def list_steps(self, run_id: str) -> list[StepRecord]:
        """Return the run's steps in the order they started."""
        rows = await self._fetch(
            "select * from public.pipeline_steps where run_id = %s::uuid "
            "order by started_at, round",
            (run_id,),
        )
        return [step_from_row(r) for r in rows]

    async def set_quality(self, run_id: str, quality: float) -> None:
        """Record a manual quality score 0..1; raise ``RunNotFoundError`` for unknown runs."""
        if not 0 <= quality <= 1:
            raise InvalidInputError(f"quality must be between 0 and 1, got {quality!r}")
        await self.get_run(run_id)
        await self._fetch(
            "update public.pipeline_runs set manual_quality_score = %s where id = %s::uuid",
            (quality, run_id),
        )

    async def get_model_configs(self) -> dict[str, list[str]]:
        """Return the enabled model chain per step, by priority."""
        rows = await self._fetch(
            "select step, model from public.model_configs where enabled order by step, priority"
        )
        out: dict[str, list[str]] = {}
        for row in rows:
            out.setdefault(row["step"], []).append(row["model"])
        return out

    async def set_model_config(self, step: str, models: list[str]) -> None:
        """Replace the chain for ``step`` atomically (one transaction)."""
        pool = await self._conn_pool()
        try:
            async with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                await cur.execute("delete from public.model_configs where step = %s", (step,))
                for priority, model in enumerate(models):
                    await cur.execute(
                        "insert into public.model_configs (step, priority, model) "
                        "values (%s, %s, %s)",
                        (step, priority, model),
                    )
        except pg_errors.Error as exc:
            raise StoreError(f"PostgreSQL run store failed: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        """Close the pool if this store opened it."""
        if self._owns_pool and self._opened:
            await self._pool.close()
            self._opened = False
