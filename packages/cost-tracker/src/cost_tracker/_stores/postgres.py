"""PostgreSQL backend on llm-common-db's PostgresPool; every atomic step is one SQL function call.

Each operation is a single ``select cost_...(...)`` in autocommit mode: one round trip, one
transaction, READ COMMITTED; the conditional UPDATEs inside the functions make reservations
exact across connections, processes and app replicas.

The pool comes from llm-common-db: psycopg_pool never sees the password (nothing it logs can
leak it), a connection wait is bounded by ``connect_timeout``, and a circuit breaker makes an
unreachable database cost one short wait per ``breaker_interval``, not one per write.
"""

from __future__ import annotations

import warnings
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from cost_tracker._errors import ConfigurationError, MissingExtraError

try:
    import psycopg
    import psycopg.errors
    from llm_common_db import DatabaseUnavailableError, MissingTablesError, PostgresPool
    from psycopg.rows import TupleRow
    from psycopg.types.json import Jsonb
    from psycopg_pool import AsyncConnectionPool
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("PostgresCostStore", "postgres") from exc

from cost_tracker._errors import StoreError, StoreUnavailableError
from cost_tracker._models import BreakdownRow, CostMetrics
from cost_tracker._stores._batch import Batcher
from cost_tracker._stores._protocol import (
    BudgetContext,
    BudgetStatus,
    GroupBy,
    ReserveOutcome,
    WriteOutcome,
)
from cost_tracker._stores._rows import (
    alerts_from_json,
    breakdown_from_json,
    budget_status_from_json,
    record_from_json,
    reserve_outcome_from_json,
)

__all__ = ["PostgresCostStore"]

_UNSET: Any = object()


class PostgresCostStore:
    """Cost store on PostgreSQL (plain, or Supabase's own database) with the db/ migrations.

    Pool ownership: a store built from a URL (``PostgresCostStore(url)`` or
    :meth:`from_url`) owns its pool and closes it in :meth:`aclose`; a store given a pool
    (a ``psycopg_pool.AsyncConnectionPool`` or an ``llm_common_db.PostgresPool``) never closes
    it. Connections never use server-side prepared statements, so Supabase's transaction
    pooler works as is.

    Args:
        conninfo: libpq URL or key/value string (may hold a password: it is never shown);
            ignored when ``pool`` is given.
        pool: An existing pool (not closed by :meth:`aclose`).
        min_size: Connections kept open when idle.
        max_size: Connections used concurrently.
        connect_timeout: Longest wait in seconds for a connection: an unreachable database is
            a :class:`StoreUnavailableError` within about that time (writes then go to the
            tracker's outbox).
        breaker_interval: After a connect failure, seconds during which every call fails at
            once instead of waiting again.
        prepare_threshold: Deprecated and ignored (prepared statements are always off).
        timeout: Deprecated alias of ``connect_timeout``.

    Raises:
        ConfigurationError: ``conninfo`` cannot be parsed (the message does not repeat it).
    """

    remote = True

    def __init__(
        self,
        conninfo: str = "",
        *,
        pool: AsyncConnectionPool[Any] | PostgresPool | None = None,
        min_size: int = 0,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        breaker_interval: float = 30.0,
        prepare_threshold: int | None = _UNSET,
        timeout: float | None = None,
    ) -> None:
        if prepare_threshold is not _UNSET:
            warnings.warn(
                "PostgresCostStore(prepare_threshold=...) is deprecated and ignored: "
                "connections never use server-side prepared statements",
                DeprecationWarning,
                stacklevel=2,
            )
        if timeout is not None:
            warnings.warn(
                "PostgresCostStore(timeout=...) is deprecated; use connect_timeout=...",
                DeprecationWarning,
                stacklevel=2,
            )
            connect_timeout = timeout
        try:
            self._pg = PostgresPool.of(
                conninfo,
                pool,
                connect_timeout=connect_timeout,
                min_size=min_size,
                max_size=max_size,
                breaker_interval=breaker_interval,
                package="cost-tracker",
            )
        except ValueError as exc:  # InvalidConnectionStringError or an unusable setting
            raise ConfigurationError(str(exc)) from None
        self._batcher: Batcher[dict[str, Any], Any] = Batcher(
            self._run_batch, max_inflight=max(1, min(4, max_size // 4))
        )

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> PostgresCostStore:
        """A store that owns a new pool for ``url`` (keyword arguments as for the class)."""
        return cls(url, **kwargs)

    def __repr__(self) -> str:
        return f"PostgresCostStore({self._pg.display!r})"

    @property
    def owns_pool(self) -> bool:
        """Whether :meth:`aclose` closes the pool."""
        return self._pg.owns_pool

    async def _fetch(self, query: str, params: tuple[Any, ...], *, many: bool = False) -> Any:
        for attempt in range(4):
            try:
                async with self._pg.connection() as conn:
                    cursor = await conn.execute(query, params)
                    rows: list[TupleRow] = await cursor.fetchall()
                    return rows if many else rows[0][0]
            except psycopg.errors.TransactionRollback:
                if attempt == 3:
                    raise StoreError("PostgreSQL kept aborting the transaction") from None
            except DatabaseUnavailableError as exc:
                raise StoreUnavailableError(str(exc)) from None
            except MissingTablesError as exc:
                raise StoreError(str(exc)) from None
            except psycopg.Error as exc:
                raise StoreError(_describe(exc)) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run_batch(self, ops: list[dict[str, Any]]) -> list[Any]:
        try:
            return list(await self._fetch("select public.cost_batch(%s::jsonb)", (Jsonb(ops),)))
        except StoreUnavailableError:
            raise
        except StoreError:
            if len(ops) == 1:
                raise
        # One bad operation aborts its whole transaction: apply them one by one instead.
        results: list[Any] = []
        for op in ops:
            try:
                results.extend(
                    await self._fetch("select public.cost_batch(%s::jsonb)", (Jsonb([op]),))
                )
            except StoreUnavailableError:
                raise
            except StoreError as exc:
                results.append(exc)
        return results

    async def reserve(
        self,
        *,
        reservation_id: str,
        project: str,
        amount: Decimal,
        budget: BudgetContext,
        ttl_seconds: float,
        idempotency_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        step: str | None = None,
        holder_id: str | None = None,
    ) -> ReserveOutcome:
        """See :meth:`CostStore.reserve`."""
        result = await self._batcher.submit(
            {
                "op": "reserve",
                "id": reservation_id,
                "project": project,
                "amount": format(amount, "f"),
                **_budget_json(budget),
                "ttl_seconds": ttl_seconds,
                "idempotency_id": idempotency_id,
                "provider": provider,
                "model": model,
                "step": step,
                "holder_id": holder_id,
            }
        )
        return reserve_outcome_from_json(result)

    async def settle(
        self, reservation_id: str | None, record: CostMetrics, budget: BudgetContext
    ) -> WriteOutcome:
        """See :meth:`CostStore.settle`."""
        result = await self._batcher.submit(
            {
                "op": "settle",
                "reservation_id": reservation_id,
                "record": record.to_row(),
                **_budget_json(budget),
            }
        )
        return WriteOutcome(
            stored=bool(result["stored"]),
            released=bool(result["released"]),
            alerts=alerts_from_json(record.project, result["alerts"]),
        )

    async def release(self, reservation_id: str) -> bool:
        """See :meth:`CostStore.release`."""
        return bool(await self._batcher.submit({"op": "release", "reservation_id": reservation_id}))

    async def heartbeat(self, holder_id: str, stale_after: float) -> None:
        """See :meth:`CostStore.heartbeat`."""
        await self._fetch(
            "select public.cost_heartbeat(%s::text, %s::double precision)",
            (holder_id, stale_after),
        )

    async def expire_reservations(self, project: str | None) -> int:
        """See :meth:`CostStore.expire_reservations`."""
        return int(
            await self._fetch("select public.cost_expire_reservations(%s::text)", (project,))
        )

    async def total_cost(
        self, start: datetime, end: datetime, project: str | None, *, server_only: bool = False
    ) -> Decimal:
        """See :meth:`CostStore.total_cost`."""
        value = await self._fetch(
            "select public.get_cost_total(%s::text, %s::timestamptz, %s::timestamptz, %s)",
            (project, start, end, server_only),
        )
        return Decimal(value)

    async def breakdown(
        self,
        start: datetime,
        end: datetime,
        group_by: GroupBy,
        project: str | None,
        tz: str,
        *,
        server_only: bool = False,
    ) -> list[BreakdownRow]:
        """See :meth:`CostStore.breakdown`."""
        result = await self._fetch(
            "select public.cost_breakdown_json(%s::timestamptz, %s::timestamptz, %s::text, "
            "%s::text, %s::text, %s)",
            (start, end, group_by, project, tz, server_only),
        )
        return breakdown_from_json(result)

    async def records(
        self, start: datetime, end: datetime, project: str | None, *, server_only: bool = False
    ) -> list[CostMetrics]:
        """See :meth:`CostStore.records`."""
        out: list[CostMetrics] = []
        after = 0
        while True:
            page = await self._fetch(
                "select public.cost_records_json(%s::timestamptz, %s::timestamptz, %s::text, "
                "%s::integer, %s::bigint, %s)",
                (start, end, project, 1000, after, server_only),
            )
            out.extend(record_from_json(item) for item in page)
            if len(page) < 1000:
                break
            after = int(page[-1]["row_id"])
        out.sort(key=lambda record: record.timestamp)
        return out

    async def budget_status(self, project: str, kind: str, period: date) -> BudgetStatus:
        """See :meth:`CostStore.budget_status`."""
        result = await self._fetch(
            "select public.cost_budget_status(%s::text, %s::text, %s::date)",
            (project, kind, period),
        )
        return budget_status_from_json(result)

    async def aclose(self) -> None:
        """Finish the writes in flight; close the pool if this store owns it."""
        await self._batcher.aclose()
        await self._pg.aclose()


def _budget_json(budget: BudgetContext) -> dict[str, Any]:
    def text(value: Decimal | None) -> str | None:
        return None if value is None else format(value, "f")

    return {
        "day": budget.day.isoformat(),
        "month": budget.month.isoformat(),
        "daily_limit": text(budget.daily_limit),
        "monthly_limit": text(budget.monthly_limit),
        "threshold": text(budget.threshold),
    }


def _describe(exc: psycopg.Error) -> str:
    # sqlstate and the primary message only: never the connection string.
    primary = exc.diag.message_primary if exc.diag else None
    return f"PostgreSQL error {exc.sqlstate or ''}: {primary or type(exc).__name__}".strip()
