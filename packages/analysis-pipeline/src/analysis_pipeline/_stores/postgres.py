"""PostgreSQL run store: ``pipeline_runs``, ``pipeline_steps`` and ``model_configs`` from db/.

Needs the ``postgres`` extra (llm-common-db's :class:`~llm_common_db.PostgresPool` over psycopg
3). Pool ownership follows the rule every llm-common store shares: a store built from a URL
owns its pool and closes it in ``aclose()``; a store given a pool never closes it. Connecting
waits at most ``connect_timeout`` seconds, an unreachable database then fails fast for
``breaker_interval`` seconds (one probe after that), and no message or log line carries the
password. Works through Supabase's transaction pooler (no server-side prepared statements).
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

try:
    from llm_common_db import (
        DatabaseUnavailableError,
        InvalidConnectionStringError,
        MissingTablesError,
        PostgresPool,
    )
    from psycopg import AsyncConnection
    from psycopg import errors as pg_errors
    from psycopg.rows import dict_row
    from psycopg.types.json import Jsonb
    from psycopg_pool import AsyncConnectionPool
except ImportError as exc:
    from analysis_pipeline._errors import MissingExtraError

    raise MissingExtraError("PostgresRunStore", "postgres") from exc

from analysis_pipeline._errors import (
    ConfigurationError,
    InvalidInputError,
    RunNotFoundError,
    StoreError,
    StoreUnavailableError,
)
from analysis_pipeline._records import (
    FlagChange,
    FlagState,
    RunRecord,
    ShadowRecord,
    StepRecord,
)
from analysis_pipeline._reports import (
    ModelConfigChange,
    ModelReport,
    RunFilter,
    RunPage,
    check_page,
    check_step,
)
from analysis_pipeline._stores._rows import (
    change_from_row,
    check_flag_change,
    claimed_or_refused,
    flag_from_row,
    run_from_row,
    run_id_range,
    run_to_row,
    shadow_from_row,
    shadow_to_row,
    step_from_row,
    step_to_row,
)

__all__ = ["PostgresRunStore"]

_RUN_COLUMNS = (
    "id", "bill_id", "jurisdiction", "status", "models", "input_hash", "inputs", "result",
    "review_passed", "review_score", "manual_quality_score", "rounds", "total_cost",
    "prompt_tokens", "completion_tokens", "latency_ms", "error", "started_at", "finished_at",
    "lease_owner", "heartbeat_at", "project",
)  # fmt: skip
_STEP_COLUMNS = (
    "run_id", "step", "round", "model", "status", "output", "cost", "prompt_tokens",
    "completion_tokens", "latency_ms", "attempts", "searches", "error", "started_at",
    "finished_at",
)  # fmt: skip
_SHADOW_COLUMNS = (
    "id", "bill_id", "jurisdiction", "served_arm", "started_at",
    "new_status", "new_error", "new_cost", "new_latency_ms", "new_impacts", "new_run_id",
    "legacy_status", "legacy_error", "legacy_cost", "legacy_latency_ms", "legacy_impacts",
)  # fmt: skip
_JSON = frozenset({"models", "inputs", "result", "output", "new_impacts", "legacy_impacts"})


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
# Rows started in [since, until), newest first; {table} is one of ours, never input.
_WINDOW_SQL = (
    "select * from public.{table} "
    "where (%(since)s::timestamptz is null or started_at >= %(since)s) "
    "and (%(until)s::timestamptz is null or started_at < %(until)s) "
    "and (%(bill)s::text is null or bill_id = %(bill)s) "
    "order by started_at desc limit %(limit)s"
)
_UPSERT_SHADOW = _upsert("pipeline_shadow_runs", _SHADOW_COLUMNS, "id", ("id",))
_UPSERT_STEP = _upsert("pipeline_steps", _STEP_COLUMNS, "run_id, step, round", ("run_id",))


class PostgresRunStore:
    """Run store on PostgreSQL (or Supabase's Postgres).

    Args:
        conninfo: Connection string (``postgresql://...``); the store then owns its pool.
            The password never appears in a repr, message or log.
        min_size: Pool connections kept open (0: none while idle or unreachable).
        max_size: Pool connections at most.
        pool: An existing ``psycopg_pool.AsyncConnectionPool`` or ``llm_common_db.PostgresPool``
            to use instead (never closed by ``aclose``).
        connect_timeout: Longest wait for a connection before ``StoreUnavailableError``.
        breaker_interval: Seconds to fail at once after a connect failure.
        timeout: Deprecated name of ``connect_timeout`` (0.1).

    Raises:
        ConfigurationError: Neither or both of ``conninfo`` and ``pool``, or a connection string
            that cannot be parsed (the message omits it).
    """

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        min_size: int = 0,
        max_size: int = 8,
        pool: AsyncConnectionPool[Any] | PostgresPool | None = None,
        connect_timeout: float = 5.0,
        breaker_interval: float = 30.0,
        timeout: float | None = None,
    ) -> None:
        if timeout is not None:
            warnings.warn(
                "PostgresRunStore(timeout=...) is deprecated: use connect_timeout=...",
                DeprecationWarning,
                stacklevel=2,
            )
            connect_timeout = timeout
        if (pool is None) == (not conninfo):
            raise ConfigurationError("PostgresRunStore needs a connection string or a pool")
        try:
            self._pg = PostgresPool.of(
                conninfo,
                pool,
                connect_timeout=connect_timeout,
                min_size=min_size,
                max_size=max_size,
                breaker_interval=breaker_interval,
                package="analysis-pipeline",
            )
        except InvalidConnectionStringError as exc:
            raise ConfigurationError(str(exc)) from None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresRunStore:
        """A store that owns a pool on ``url`` (closed by ``aclose``); options as the class."""
        return cls(url, **options)

    @property
    def owns_pool(self) -> bool:
        """Whether ``aclose()`` closes the pool (only one built from a URL)."""
        return self._pg.owns_pool

    def __repr__(self) -> str:
        return f"PostgresRunStore({self._pg.display!r})"

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        try:
            async with self._pg.connection() as conn:
                yield conn
        except DatabaseUnavailableError as exc:
            raise StoreUnavailableError(f"PostgreSQL run store unavailable: {exc}") from exc
        except MissingTablesError as exc:
            raise StoreError(str(exc)) from exc
        except pg_errors.Error as exc:
            raise StoreError(f"PostgreSQL run store failed: {type(exc).__name__}: {exc}") from exc

    async def _fetch(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        async with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql, params)
            return list(await cur.fetchall()) if cur.description else []

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
        return await claimed_or_refused(rows, run_id, self.get_run)

    async def heartbeat(self, run_id: str, owner: str) -> bool:
        """Refresh the lease; return False when ``owner`` no longer holds a running run."""
        rows = await self._fetch(
            "select public.pipeline_heartbeat(%s::uuid, %s) as held", (run_id, owner)
        )
        return bool(rows and rows[0]["held"])

    async def find_run_ids(self, prefix: str) -> list[str]:
        """Return the ids of every run whose id starts with ``prefix`` (dashes optional)."""
        bounds = run_id_range(prefix)
        if bounds is None:
            return []
        rows = await self._fetch(
            "select id from public.pipeline_runs where id between %s::uuid and %s::uuid "
            "order by id",
            bounds,
        )
        return [str(r["id"]) for r in rows]

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
            _WINDOW_SQL.format(table="pipeline_runs"),
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

    async def set_model_config(
        self, step: str, models: list[str], *, changed_by: str | None = None
    ) -> None:
        """Replace the chain for ``step`` and record the change, atomically (one function)."""
        await self._fetch(
            "select public.pipeline_configure_step(%s, %s::text[], %s)",
            (step, list(models), changed_by),
        )

    async def model_config_changes(
        self, *, step: str | None = None, limit: int = 50
    ) -> list[ModelConfigChange]:
        """Return the latest changes of the model chains (of ``step``, or all), newest first."""
        rows = await self._fetch(
            "select step, old_models, new_models, changed_by, changed_at "
            "from public.model_config_changes where (%(step)s::text is null or step = %(step)s) "
            "order by changed_at desc, id desc limit %(limit)s",
            {"step": step, "limit": limit},
        )
        return [ModelConfigChange.model_validate(r) for r in rows]

    async def model_report(
        self,
        step: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        jurisdiction: str | None = None,
    ) -> ModelReport:
        """Per-model statistics of ``step`` (``pipeline_model_report``: aggregated in SQL)."""
        rows = await self._fetch(
            "select public.pipeline_model_report(%s, %s::timestamptz, %s::timestamptz, %s)::text "
            "as r",
            (check_step(step), since, until, jurisdiction),
        )
        # Parsed as JSON text by pydantic (its Rust parser), not json.loads then validated.
        return ModelReport.model_validate_json(rows[0]["r"])

    async def run_page(
        self, filter: RunFilter | None = None, *, offset: int = 0, limit: int = 50
    ) -> RunPage:
        """One page of matching runs, newest first (``pipeline_run_page``: paged in SQL)."""
        f = filter or RunFilter()
        check_page(offset, limit)
        rows = await self._fetch(
            "select public.pipeline_run_page(%s, %s, %s, %s, %s::timestamptz, %s::timestamptz, "
            "%s, %s)::text as p",
            (f.status, f.bill, f.jurisdiction, f.model, f.since, f.until, offset, limit),
        )
        return RunPage.model_validate_json(rows[0]["p"])

    async def get_flag(self, name: str) -> FlagState | None:
        """Return the rollout flag ``name``, or None when no admin has set it."""
        rows = await self._fetch("select * from public.pipeline_flags where name = %s", (name,))
        return flag_from_row(rows[0]) if rows else None

    async def set_flag(
        self, name: str, *, enabled: bool | None, percent: float | None, changed_by: str
    ) -> FlagState:
        """Set the flag and audit the change in one transaction (``pipeline_set_flag``)."""
        check_flag_change(name, percent, changed_by)
        rows = await self._fetch(
            "select * from public.pipeline_set_flag(%s, %s, %s::numeric, %s)",
            (name, enabled, None if percent is None else str(percent), changed_by),
        )
        return flag_from_row(rows[0])

    async def flag_changes(self, name: str, *, limit: int = 50) -> list[FlagChange]:
        """Return the flag's audited changes, newest first."""
        rows = await self._fetch(
            "select * from public.pipeline_flag_changes where name = %s order by id desc limit %s",
            (name, limit),
        )
        return [change_from_row(r) for r in rows]

    async def record_shadow(self, record: ShadowRecord) -> None:
        """Insert the outcome of one shadow run (both arms)."""
        row = shadow_to_row(record)
        row["started_at"] = record.started_at
        row["new_cost"], row["legacy_cost"] = record.new.cost, record.legacy.cost
        await self._fetch(_UPSERT_SHADOW, _params(row, _SHADOW_COLUMNS))

    async def shadow_results(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bill_id: str | None = None,
        limit: int | None = 100,
    ) -> list[ShadowRecord]:
        """Return shadow runs started in ``[since, until)``, newest first."""
        rows = await self._fetch(
            _WINDOW_SQL.format(table="pipeline_shadow_runs"),
            {"since": since, "until": until, "bill": bill_id, "limit": limit},
        )
        return [shadow_from_row(r) for r in rows]

    async def aclose(self) -> None:
        """Close the pool if this store built it from a URL (a given pool stays open)."""
        await self._pg.aclose()
