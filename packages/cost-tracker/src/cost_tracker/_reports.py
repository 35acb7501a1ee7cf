"""The read side of CostTracker: totals, breakdowns, records, export and budget status."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal, TypeVar

from cost_tracker._errors import InvalidRecordError, StoreUnavailableError
from cost_tracker._export import render_records
from cost_tracker._models import BreakdownRow, CostMetrics
from cost_tracker._periods import Periods
from cost_tracker._stores.base import GROUP_BY, BudgetStatus, CostStore, GroupBy

__all__ = ["ReportsMixin"]

T = TypeVar("T")


class ReportsMixin:
    """Report methods of :class:`CostTracker` (which sets the attributes below)."""

    store: CostStore
    periods: Periods
    project: str
    _down: bool

    async def _guard(self, call: Awaitable[T]) -> T:
        try:
            result = await call
        except StoreUnavailableError:
            self._down = True
            raise
        # The store answered: writes may go to it directly again (the outbox drains apart).
        self._down = False
        return result

    # --- reports ----------------------------------------------------------------------------

    def _scope(self, project: str | None, all_projects: bool) -> str | None:
        return None if all_projects else (project or self.project)

    async def get_daily_cost(
        self,
        day: date | None = None,
        *,
        project: str | None = None,
        all_projects: bool = False,
        server_rows_only: bool = False,
    ) -> Decimal:
        """Exact priced spend of a local calendar day (default: today in the tracker's zone).

        ``server_rows_only`` leaves out rows end users wrote through the Supabase API.
        """
        day = day or self.periods.day_of(datetime.now(UTC))
        start, end = self.periods.day_bounds(day)
        scope = self._scope(project, all_projects)
        return await self._guard(
            self.store.total_cost(start, end, scope, server_only=server_rows_only)
        )

    async def get_monthly_cost(
        self,
        month: date | None = None,
        *,
        project: str | None = None,
        all_projects: bool = False,
        server_rows_only: bool = False,
    ) -> Decimal:
        """Exact priced spend of the calendar month containing ``month`` (default: this one)."""
        month = month or self.periods.month_of(datetime.now(UTC))
        start, end = self.periods.month_bounds(month)
        scope = self._scope(project, all_projects)
        return await self._guard(
            self.store.total_cost(start, end, scope, server_only=server_rows_only)
        )

    async def get_cost_breakdown(
        self,
        start: date | datetime,
        end: date | datetime,
        group_by: GroupBy = "model",
        *,
        project: str | None = None,
        all_projects: bool = False,
        server_rows_only: bool = False,
    ) -> list[BreakdownRow]:
        """Spend in ``[start, end)`` grouped by model, step, project or local day.

        Dates mean local midnight in the tracker's zone; ``end`` is exclusive.
        ``server_rows_only`` leaves out rows end users wrote through the Supabase API.
        """
        if group_by not in GROUP_BY:
            raise InvalidRecordError(f"group_by must be one of {GROUP_BY}, not {group_by!r}")
        return await self._guard(
            self.store.breakdown(
                self.periods.to_utc(start),
                self.periods.to_utc(end),
                group_by,
                self._scope(project, all_projects),
                self.periods.name,
                server_only=server_rows_only,
            )
        )

    async def get_records(
        self,
        start: date | datetime,
        end: date | datetime,
        *,
        project: str | None = None,
        all_projects: bool = False,
        server_rows_only: bool = False,
    ) -> list[CostMetrics]:
        """Records in ``[start, end)``, oldest first (``server_rows_only``: see breakdowns)."""
        scope = self._scope(project, all_projects)
        start_utc, end_utc = self.periods.to_utc(start), self.periods.to_utc(end)
        return await self._guard(
            self.store.records(start_utc, end_utc, scope, server_only=server_rows_only)
        )

    async def export(
        self,
        start: date | datetime,
        end: date | datetime,
        format: Literal["csv", "json"] = "csv",
        *,
        project: str | None = None,
        all_projects: bool = False,
        server_rows_only: bool = False,
    ) -> str:
        """Records in ``[start, end)`` as CSV or JSON text (money as exact decimal strings)."""
        records = await self.get_records(
            start,
            end,
            project=project,
            all_projects=all_projects,
            server_rows_only=server_rows_only,
        )
        return render_records(records, format)

    async def budget_status(
        self, kind: Literal["daily", "monthly"] = "daily", period: date | None = None
    ) -> BudgetStatus:
        """Counters (spent, reserved, open reservations) of a budget period of this project."""
        now = datetime.now(UTC)
        default = self.periods.day_of(now) if kind == "daily" else self.periods.month_of(now)
        return await self._guard(self.store.budget_status(self.project, kind, period or default))

    async def _status_or_none(self, kind: str, period: date) -> BudgetStatus | None:
        try:
            return await self._guard(self.store.budget_status(self.project, kind, period))
        except StoreUnavailableError:
            return None

    async def expire_reservations(self, *, all_projects: bool = False) -> int:
        """Release reservations past ``reservation_ttl`` (left open by crashed callers)."""
        return await self._guard(
            self.store.expire_reservations(None if all_projects else self.project)
        )
