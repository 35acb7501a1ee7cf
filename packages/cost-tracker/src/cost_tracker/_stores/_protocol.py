"""The storage protocol every cost-tracker backend implements.

A store keeps the cost records, the per-period budget counters, the open reservations and the
fired alerts. Every method that changes state is atomic and idempotent, so a caller may retry it
after a dropped connection (or replay it from the outbox) without double counting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

from cost_tracker._models import BreakdownRow, BudgetAlert, CostMetrics

__all__ = [
    "GROUP_BY",
    "BudgetContext",
    "BudgetStatus",
    "CostStore",
    "GroupBy",
    "ReserveOutcome",
    "WriteOutcome",
]

GroupBy = Literal["model", "step", "project", "day"]
GROUP_BY: tuple[GroupBy, ...] = ("model", "step", "project", "day")


@dataclass(frozen=True, slots=True)
class BudgetContext:
    """The periods and limits a write is counted against.

    Attributes:
        day: Daily period key of the write (local date).
        month: Monthly period key (first day of the local month).
        daily_limit: Daily budget, or None.
        monthly_limit: Monthly budget, or None.
        threshold: Alert threshold as a fraction of a budget, or None for no alerts.
    """

    day: date
    month: date
    daily_limit: Decimal | None = None
    monthly_limit: Decimal | None = None
    threshold: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ReserveOutcome:
    """Result of a reserve attempt.

    Attributes:
        granted: Whether the amount is now held.
        kind: The refusing budget (``daily``/``monthly``) when refused.
        period: The refusing period when refused.
        budget: The refusing limit.
        spent: Spend of the refusing period.
        reserved: Amount already held in the refusing period.
    """

    granted: bool
    kind: str | None = None
    period: date | None = None
    budget: Decimal | None = None
    spent: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """Result of storing a record.

    Attributes:
        stored: True when the record was new (False: its idempotency id was already stored).
        released: True when an open reservation was closed by this write.
        alerts: Alerts this write won (each fires once per period and kind, store-wide).
    """

    stored: bool
    released: bool = False
    alerts: Sequence[BudgetAlert] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """Counters of one budget period.

    Attributes:
        spent: Settled spend.
        reserved: Money held by open reservations.
        budget: Last limit recorded for the period, or None.
        unpriced_calls: Records without a price.
        open_reservations: Reservations neither settled nor released.
    """

    spent: Decimal
    reserved: Decimal
    budget: Decimal | None
    unpriced_calls: int
    open_reservations: int


@runtime_checkable
class CostStore(Protocol):
    """Persistence for cost records, budget counters, reservations and alerts."""

    @property
    def remote(self) -> bool:
        """True when the store can be unreachable (its writes then go to the outbox)."""
        ...

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
        """Hold ``amount`` on the daily and monthly counters if it fits both limits.

        Reservations past their expiry, or whose holder stopped beating, are given back first
        (in the same transaction), so no caller is refused for room nobody holds any more.
        """
        ...

    async def heartbeat(self, holder_id: str, stale_after: float) -> None:
        """Register or refresh holder ``holder_id``.

        Its reservations are reclaimable once its last heartbeat is older than
        ``stale_after`` seconds.
        """
        ...

    async def settle(
        self, reservation_id: str | None, record: CostMetrics, budget: BudgetContext
    ) -> WriteOutcome:
        """Store ``record`` once and close the reservation (None: plain log)."""
        ...

    async def release(self, reservation_id: str) -> bool:
        """Close a reservation without spend; False if it was already closed."""
        ...

    async def expire_reservations(self, project: str | None) -> int:
        """Release reservations past their expiry or of dead holders; returns how many."""
        ...

    async def total_cost(
        self, start: datetime, end: datetime, project: str | None, *, server_only: bool = False
    ) -> Decimal:
        """Exact priced spend in ``[start, end)``.

        ``server_only`` leaves out rows end users wrote through the database API (a store no
        end user can write to ignores it).
        """
        ...

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
        """Spend in ``[start, end)`` grouped by ``group_by`` (days in zone ``tz``)."""
        ...

    async def records(
        self, start: datetime, end: datetime, project: str | None, *, server_only: bool = False
    ) -> list[CostMetrics]:
        """Records in ``[start, end)``, oldest first."""
        ...

    async def budget_status(self, project: str, kind: str, period: date) -> BudgetStatus:
        """Counters of one period."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads."""
        ...
