"""Supabase backend: the ``supabase`` async client; every atomic step is an RPC call.

The functions come from db/ (``cost_reserve``, ``cost_settle``, ``cost_log``, ...); they run
as the key's role (use the service role key on the backend). Money travels as strings both
ways, because JSON numbers would pass through floats.
"""

from __future__ import annotations

import warnings
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from cost_tracker._errors import MissingExtraError

try:
    import httpx
    from postgrest.exceptions import APIError
    from supabase import AsyncClient, AsyncClientOptions, acreate_client
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("SupabaseCostStore", "supabase") from exc

from cost_tracker._errors import StoreError, StoreUnavailableError
from cost_tracker._models import BreakdownRow, CostMetrics
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

__all__ = ["SupabaseCostStore"]

# PostgREST's own codes for "cannot reach the database" (the request never ran).
_UNREACHABLE_CODES = frozenset({"PGRST000", "PGRST001", "PGRST002"})
# A table or function that is not there: the database's codes (undefined table / function) and
# PostgREST's schema-cache misses (PGRST205 table, PGRST202 function).
_MISSING_CODES = frozenset({"42P01", "42883", "PGRST202", "PGRST205"})


def _text(value: Decimal | date | None) -> str | None:
    if value is None:
        return None
    return format(value, "f") if isinstance(value, Decimal) else value.isoformat()


class SupabaseCostStore:
    """Cost store on Supabase through PostgREST RPC.

    Args:
        client: An async Supabase client (``await supabase.acreate_client(url, key)``), made
            with the service role key on a backend.
        owns_client: Whether :meth:`aclose` closes the client's HTTP session (True for
            stores made by :meth:`connect`).
        close_client: Deprecated alias of ``owns_client`` (removed in 0.3).
    """

    remote = True

    def __init__(
        self,
        client: AsyncClient,
        *,
        owns_client: bool = False,
        close_client: bool | None = None,
    ) -> None:
        if close_client is not None:
            warnings.warn(
                "SupabaseCostStore(close_client=...) is deprecated; use owns_client=...",
                DeprecationWarning,
                stacklevel=2,
            )
            owns_client = close_client
        self._client = client
        self._close_client = owns_client
        self._http: httpx.AsyncClient | None = None

    @classmethod
    async def connect(
        cls, url: str, key: str, *, http_timeout: float = 30.0, connect_timeout: float = 5.0
    ) -> SupabaseCostStore:
        """Create the async client for ``url`` with ``key`` and wrap it (the store owns it).

        Args:
            url: Project URL (``https://<ref>.supabase.co``).
            key: API key (service role key on backends; never logged).
            http_timeout: HTTP timeout in seconds.
            connect_timeout: Seconds to wait for a connection: an unreachable server is a
                StoreUnavailableError within about that time (the write goes to the outbox).

        Returns:
            The store.
        """
        http = httpx.AsyncClient(timeout=httpx.Timeout(http_timeout, connect=connect_timeout))
        try:
            client = await acreate_client(url, key, options=AsyncClientOptions(httpx_client=http))
        except BaseException:
            await http.aclose()
            raise
        store = cls(client, owns_client=True)
        store._http = http
        return store

    def __repr__(self) -> str:
        return f"SupabaseCostStore(url={str(self._client.supabase_url)!r})"

    async def _rpc(self, fn: str, params: dict[str, Any]) -> Any:
        try:
            response = await self._client.rpc(fn, params).execute()
        except httpx.TransportError as exc:
            raise StoreUnavailableError(f"Supabase is unreachable ({type(exc).__name__})") from None
        except APIError as exc:
            if exc.code in _UNREACHABLE_CODES:
                raise StoreUnavailableError(
                    f"Supabase cannot reach its database ({exc.code})"
                ) from None
            if exc.code in _MISSING_CODES:
                raise StoreError(
                    "tables for cost-tracker are missing: run `llm-common-db migrate --package "
                    f"cost-tracker --database-url <url>` on the project's database ({exc.message})"
                ) from None
            raise StoreError(f"Supabase error {exc.code}: {exc.message}") from None
        return response.data

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
        result = await self._rpc(
            "cost_reserve",
            {
                "p_id": reservation_id,
                "p_project": project,
                "p_amount": _text(amount),
                "p_day": _text(budget.day),
                "p_month": _text(budget.month),
                "p_daily_limit": _text(budget.daily_limit),
                "p_monthly_limit": _text(budget.monthly_limit),
                "p_ttl_seconds": ttl_seconds,
                "p_idempotency_id": idempotency_id,
                "p_provider": provider,
                "p_model": model,
                "p_step": step,
                "p_holder_id": holder_id,
            },
        )
        return reserve_outcome_from_json(result)

    async def settle(
        self, reservation_id: str | None, record: CostMetrics, budget: BudgetContext
    ) -> WriteOutcome:
        """See :meth:`CostStore.settle`."""
        result = await self._rpc(
            "cost_settle",
            {
                "p_reservation_id": reservation_id,
                "p_record": record.to_row(),
                "p_day": _text(budget.day),
                "p_month": _text(budget.month),
                "p_daily_limit": _text(budget.daily_limit),
                "p_monthly_limit": _text(budget.monthly_limit),
                "p_threshold": _text(budget.threshold),
            },
        )
        return WriteOutcome(
            stored=bool(result["stored"]),
            released=bool(result["released"]),
            alerts=alerts_from_json(record.project, result["alerts"]),
        )

    async def release(self, reservation_id: str) -> bool:
        """See :meth:`CostStore.release`."""
        return bool(await self._rpc("cost_release", {"p_reservation_id": reservation_id}))

    async def heartbeat(self, holder_id: str, stale_after: float) -> None:
        """See :meth:`CostStore.heartbeat`."""
        await self._rpc(
            "cost_heartbeat", {"p_holder_id": holder_id, "p_stale_after_seconds": stale_after}
        )

    async def expire_reservations(self, project: str | None) -> int:
        """See :meth:`CostStore.expire_reservations`."""
        return int(await self._rpc("cost_expire_reservations", {"p_project": project}))

    async def total_cost(
        self, start: datetime, end: datetime, project: str | None, *, server_only: bool = False
    ) -> Decimal:
        """See :meth:`CostStore.total_cost`."""
        rows = await self.breakdown(start, end, "project", project, "UTC", server_only=server_only)
        return sum((row.total_cost for row in rows), Decimal(0))

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
        result = await self._rpc(
            "cost_breakdown_json",
            {
                "p_start": start.isoformat(),
                "p_end": end.isoformat(),
                "p_group_by": group_by,
                "p_project": project,
                "p_tz": tz,
                "p_server_only": server_only,
            },
        )
        return breakdown_from_json(result)

    async def records(
        self, start: datetime, end: datetime, project: str | None, *, server_only: bool = False
    ) -> list[CostMetrics]:
        """See :meth:`CostStore.records`."""
        out: list[CostMetrics] = []
        after = 0
        while True:
            page = await self._rpc(
                "cost_records_json",
                {
                    "p_start": start.isoformat(),
                    "p_end": end.isoformat(),
                    "p_project": project,
                    "p_limit": 1000,
                    "p_after_id": after,
                    "p_server_only": server_only,
                },
            )
            out.extend(record_from_json(item) for item in page)
            if len(page) < 1000:
                break
            after = int(page[-1]["row_id"])
        out.sort(key=lambda record: record.timestamp)
        return out

    async def budget_status(self, project: str, kind: str, period: date) -> BudgetStatus:
        """See :meth:`CostStore.budget_status`."""
        result = await self._rpc(
            "cost_budget_status",
            {"p_project": project, "p_kind": kind, "p_period": period.isoformat()},
        )
        return budget_status_from_json(result)

    async def aclose(self) -> None:
        """Close the client's HTTP session if this store created the client."""
        if self._close_client:
            self._close_client = False
            await self._client.postgrest.aclose()
            if self._http is not None:
                await self._http.aclose()
