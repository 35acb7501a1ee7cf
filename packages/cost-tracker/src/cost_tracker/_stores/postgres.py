"""PostgreSQL backend: psycopg 3 async pool; every atomic step is one SQL function call.

Each operation is a single ``select cost_...(...)`` in autocommit mode: one round trip, one
transaction, READ COMMITTED; the conditional UPDATEs inside the functions make reservations
exact across connections, processes and app replicas.
"""

from __future__ import annotations

import asyncio
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from cost_tracker._errors import MissingExtraError

try:
    import psycopg
    import psycopg.errors
    from psycopg.rows import TupleRow
    from psycopg.types.json import Jsonb
    from psycopg_pool import AsyncConnectionPool, PoolTimeout
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

__all__ = ["PostgresCostStore", "redact_conninfo"]

_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*(@)|(password\s*=\s*)\S+", re.IGNORECASE)


def redact_conninfo(conninfo: str) -> str:
    """``conninfo`` with any password replaced by ``***``."""
    return _PASSWORD.sub(lambda m: f"{m[1]}***{m[2]}" if m[1] else f"{m[3]}***", conninfo)


class PostgresCostStore:
    """Cost store on PostgreSQL (plain, or Supabase's own database) with the db/ migrations.

    Args:
        conninfo: libpq URL or key/value string; ignored when ``pool`` is given.
        pool: An existing ``AsyncConnectionPool`` (not closed by :meth:`aclose`).
        min_size: Pool minimum size.
        max_size: Pool maximum size (connections used concurrently).
        prepare_threshold: psycopg's server-side prepare threshold; pass None behind
            Supabase's transaction pooler (pgbouncer), where prepared statements break.
        timeout: Seconds to wait for a pooled connection before the database counts as
            unreachable (the write then goes to the outbox).
        connect_timeout: libpq connect timeout in seconds.
    """

    remote = True

    def __init__(
        self,
        conninfo: str = "",
        *,
        pool: AsyncConnectionPool[Any] | None = None,
        min_size: int = 1,
        max_size: int = 10,
        prepare_threshold: int | None = 5,
        timeout: float = 5.0,
        connect_timeout: int = 5,
    ) -> None:
        self._owns_pool = pool is None
        self._display = redact_conninfo(conninfo) if pool is None else "<external pool>"
        self._conninfo = conninfo
        self._min_size, self._max_size, self._timeout = min_size, max_size, timeout
        self._kwargs: dict[str, Any] = {
            "autocommit": True,
            "prepare_threshold": prepare_threshold,
            "connect_timeout": connect_timeout,
        }
        self._pool: AsyncConnectionPool[Any] = pool or self._new_pool()
        self._opened = not self._owns_pool
        self._broken = False
        self._open_lock = asyncio.Lock()
        self._closing: set[asyncio.Future[None]] = set()
        self._batcher: Batcher[dict[str, Any], Any] = Batcher(
            self._run_batch, max_inflight=max(1, min(4, max_size // 4))
        )

    def __repr__(self) -> str:
        return f"PostgresCostStore({self._display!r})"

    async def _ensure_open(self) -> None:
        if self._opened:
            return
        async with self._open_lock:
            if not self._opened:
                await self._pool.open(wait=False)
                self._opened = True

    def _new_pool(self) -> AsyncConnectionPool[Any]:
        return AsyncConnectionPool(
            self._conninfo,
            min_size=self._min_size,
            max_size=self._max_size,
            open=False,
            timeout=self._timeout,
            kwargs=self._kwargs,
        )

    async def _probe(self) -> bool:
        """Whether a fresh connection to the server works right now."""
        conninfo, kwargs = self._pool.conninfo, self._pool.kwargs
        if not isinstance(conninfo, str) or not isinstance(kwargs, dict):
            return True  # an external pool with dynamic settings: let the retry find out
        try:
            conn = await psycopg.AsyncConnection.connect(conninfo, **{**kwargs, "autocommit": True})
        except psycopg.Error:
            return False
        async with conn:
            try:
                await conn.execute("select 1")
            except psycopg.Error:
                return False
        return True

    async def _renew(self) -> None:
        """Replace the pool after an outage.

        A pool that lost its server waits out its own growing reconnect back-off; a new pool
        connects at once, so delivery resumes as soon as the server is back.
        """
        async with self._open_lock:
            self._broken = False
            if not self._owns_pool:
                await self._pool.check()
                return
            old, self._pool = self._pool, self._new_pool()
            await self._pool.open(wait=False)
            self._closing.add(asyncio.ensure_future(old.close(timeout=1.0)))

    async def _fetch(self, query: str, params: tuple[Any, ...], *, many: bool = False) -> Any:
        await self._ensure_open()
        if self._broken:
            if not await self._probe():
                raise StoreUnavailableError("PostgreSQL is unreachable")
            await self._renew()
        for attempt in range(4):
            try:
                async with self._pool.connection() as conn:
                    cursor = await conn.execute(query, params)
                    rows: list[TupleRow] = await cursor.fetchall()
                    return rows if many else rows[0][0]
            except psycopg.errors.TransactionRollback:
                if attempt == 3:
                    raise StoreError("PostgreSQL kept aborting the transaction") from None
            except (PoolTimeout, psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if getattr(exc, "sqlstate", None):
                    raise StoreError(_describe(exc)) from None
                # Retrying is safe: every function is idempotent (ids, ON CONFLICT).
                if attempt >= 1 or not await self._probe():
                    self._broken = True
                    raise StoreUnavailableError(
                        f"PostgreSQL is unreachable ({type(exc).__name__})"
                    ) from None
                await self._renew()
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
        """Close the pool if this store created it."""
        await self._batcher.aclose()
        if self._owns_pool and self._opened:
            await self._pool.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


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
