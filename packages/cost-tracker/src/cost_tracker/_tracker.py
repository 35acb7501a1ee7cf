"""CostTracker: records costs, enforces daily/monthly budgets and satisfies the cost sink."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeVar

from cost_tracker._delivery import Delivery
from cost_tracker._errors import (
    BudgetExceededError,
    ConfigurationError,
    InvalidRecordError,
    StoreUnavailableError,
    UnpricedCostError,
)
from cost_tracker._export import render_records
from cost_tracker._models import (
    BreakdownRow,
    BudgetAlert,
    CostEstimateLike,
    CostMetrics,
    CostRecordLike,
    Reservation,
    default_project,
)
from cost_tracker._outbox import Outbox
from cost_tracker._periods import Periods, load_zone
from cost_tracker._stores._protocol import (
    GROUP_BY,
    BudgetContext,
    BudgetStatus,
    CostStore,
    GroupBy,
    ReserveOutcome,
)

__all__ = ["AlertCallback", "CostTracker"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
AlertCallback = Callable[[BudgetAlert], Awaitable[None] | None]


def _money(value: Decimal | int | str | None, name: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float | bool):
        raise InvalidRecordError(
            f"{name} must be a Decimal, int or str, not {type(value).__name__}"
        )
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidRecordError(f"{name} is not a number: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise InvalidRecordError(f"{name} must be a finite, non-negative amount")
    return amount


def _setting(value: Decimal | int | str | None, name: str) -> Decimal | None:
    try:
        return _money(value, name)
    except InvalidRecordError as exc:
        raise ConfigurationError(str(exc)) from None


def _in_project(metrics: CostMetrics, project: str) -> CostMetrics:
    # CostMetrics' project defaults to PROJECT_NAME/"default" when left out; a tracker's own
    # records belong to the tracker's project unless the caller named one.
    if "project" in metrics.model_fields_set:
        return metrics
    return metrics.model_copy(update={"project": project})


class CostTracker:
    """Records costs, reports spend and enforces budgets; a cost sink for llm-client/web-search.

    Args:
        store: Storage backend (default: :class:`LocalCostStore` under ``.llm-common``).
        daily_budget: Daily limit in US dollars, or None.
        monthly_budget: Monthly (calendar month) limit in US dollars, or None.
        alert_threshold: Fraction of a budget whose crossing fires ``on_alert`` (once per period).
        on_alert: Called with a :class:`BudgetAlert` (sync or async); default logs a warning.
        tz: IANA time zone days and months are counted in (default UTC).
        project: Project of this tracker (default ``PROJECT_NAME`` env, else ``"default"``).
        reservation_ttl: Seconds after which any reservation left open may be reclaimed
            (the backstop; a crashed holder's reservations go back much sooner, see
            ``holder_timeout``).
        heartbeat_interval: Seconds between the heartbeats of this tracker's holder row
            while it holds reservations (default 5).
        holder_timeout: A holder whose last heartbeat is older than this many seconds counts
            as crashed: its reservations are reclaimed by the next reserve of the project
            (default 15; must exceed ``heartbeat_interval``).
        outbox_path: File of the durable outbox for remote stores (default
            ``.llm-common/cost-outbox.sqlite`` or ``$COST_TRACKER_OUTBOX``).
        retry_interval: First delay in seconds of the background outbox delivery (doubling up
            to 30 s); None disables the background task (call :meth:`flush_outbox`).
    """

    def __init__(
        self,
        store: CostStore | None = None,
        *,
        daily_budget: Decimal | int | str | None = None,
        monthly_budget: Decimal | int | str | None = None,
        alert_threshold: Decimal | int | str = Decimal("0.8"),
        on_alert: AlertCallback | None = None,
        tz: str = "UTC",
        project: str | None = None,
        reservation_ttl: float = 3600.0,
        heartbeat_interval: float = 5.0,
        holder_timeout: float = 15.0,
        outbox_path: str | os.PathLike[str] | None = None,
        retry_interval: float | None = 1.0,
    ) -> None:
        if store is None:
            from cost_tracker._stores.local import LocalCostStore

            store = LocalCostStore()
        self.store = store
        self.daily_budget = _setting(daily_budget, "daily_budget")
        self.monthly_budget = _setting(monthly_budget, "monthly_budget")
        threshold = _setting(alert_threshold, "alert_threshold")
        if threshold is None or not 0 < threshold <= 1:
            raise ConfigurationError("alert_threshold must be in (0, 1]")
        self.alert_threshold = threshold
        self.on_alert = on_alert
        self.periods = Periods(load_zone(tz))
        self.project = project or default_project()
        if reservation_ttl <= 0:
            raise ConfigurationError("reservation_ttl must be positive")
        self.reservation_ttl = reservation_ttl
        if heartbeat_interval <= 0 or holder_timeout <= heartbeat_interval:
            raise ConfigurationError(
                "heartbeat_interval must be positive and holder_timeout longer than it"
            )
        self.heartbeat_interval = heartbeat_interval
        self.holder_timeout = holder_timeout
        # One holder per tracker instance: its reservations die with it (see _heartbeat_loop).
        self.holder_id = f"{os.getpid()}-{uuid.uuid4()}"
        self._holder: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._delivery = Delivery(store, Outbox(outbox_path), retry_interval, self._fire_all)
        self._closed = False
        self._background: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return (
            f"CostTracker(store={self.store!r}, project={self.project!r}, "
            f"daily_budget={self.daily_budget}, monthly_budget={self.monthly_budget}, "
            f"tz={self.periods.name!r})"
        )

    async def __aenter__(self) -> CostTracker:
        # Writes left in the outbox by an earlier process are delivered in the background.
        await self._delivery.start()
        return self

    @property
    def outbox(self) -> Outbox:
        """The durable outbox of this tracker's writes to a remote store."""
        return self._delivery.outbox

    @property
    def retry_interval(self) -> float | None:
        """First delay of the background outbox delivery (None: no background task)."""
        return self._delivery.retry_interval

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    @property
    def budgets_active(self) -> bool:
        """Whether a daily or monthly budget is configured."""
        return self.daily_budget is not None or self.monthly_budget is not None

    def _context(self, moment: datetime, project: str) -> BudgetContext:
        own = project == self.project
        return BudgetContext(
            day=self.periods.day_of(moment),
            month=self.periods.month_of(moment),
            daily_limit=self.daily_budget if own else None,
            monthly_limit=self.monthly_budget if own else None,
            threshold=self.alert_threshold if own else None,
        )

    # --- the cost sink ----------------------------------------------------------------------

    async def reserve(self, estimate: CostEstimateLike) -> Reservation:
        """Hold an estimate against the budgets before a paid call.

        Args:
            estimate: Object with ``idempotency_id``, ``provider``, ``model``, ``step`` and
                ``amount`` (llm-client's ``CostEstimate`` or web-search's).

        Returns:
            The reservation to settle or release after the call.

        Raises:
            BudgetExceededError: The amount does not fit the daily or monthly budget.
            UnpricedCostError: The estimate has no price while a budget is active.
            StoreUnavailableError: A budget is active and the database cannot be reached.
        """
        context = self._context(datetime.now(UTC), self.project)
        amount = _money(estimate.amount, "estimate.amount")
        reservation = Reservation(
            id=str(uuid.uuid4()),
            project=self.project,
            amount=amount or Decimal(0),
            day=context.day,
            month=context.month,
            held=self.budgets_active,
            idempotency_id=estimate.idempotency_id,
        )
        if not self.budgets_active:
            return reservation
        if amount is None:
            kind = "daily" if self.daily_budget is not None else "monthly"
            period = context.day if kind == "daily" else context.month
            status = await self._status_or_none(kind, period)
            raise UnpricedCostError(
                project=self.project,
                kind=kind,
                period=period,
                budget=(self.daily_budget if kind == "daily" else self.monthly_budget)
                or Decimal(0),
                spent=status.spent if status else Decimal(0),
                reserved=status.reserved if status else Decimal(0),
                requested=None,
            )
        await self._register_holder()
        # The store reclaims expired and dead-holder reservations itself before its check.
        outcome = await self._reserve_in_store(reservation, estimate, context)
        if not outcome.granted:
            raise BudgetExceededError(
                project=self.project,
                kind=outcome.kind or "daily",
                period=outcome.period or context.day,
                budget=outcome.budget or Decimal(0),
                spent=outcome.spent,
                reserved=outcome.reserved,
                requested=amount,
            )
        return reservation

    async def _reserve_in_store(
        self, reservation: Reservation, estimate: CostEstimateLike, context: BudgetContext
    ) -> ReserveOutcome:
        task = asyncio.ensure_future(
            self._delivery.guard(
                self.store.reserve(
                    reservation_id=reservation.id,
                    project=reservation.project,
                    amount=reservation.amount,
                    budget=context,
                    ttl_seconds=self.reservation_ttl,
                    idempotency_id=estimate.idempotency_id,
                    provider=estimate.provider,
                    model=estimate.model,
                    step=estimate.step,
                    holder_id=self.holder_id,
                )
            )
        )
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # The caller gave up, but the store may still grant: give the money straight back.
            task.add_done_callback(lambda done: self._release_if_granted(done, reservation))
            raise

    async def _register_holder(self) -> None:
        # Every concurrent first reserve waits for the same registration; a failed one is
        # retried by the next reserve.
        if self._holder is None or (
            self._holder.done() and (self._holder.cancelled() or self._holder.exception())
        ):
            self._holder = asyncio.ensure_future(
                self._delivery.guard(self.store.heartbeat(self.holder_id, self.holder_timeout))
            )
        await asyncio.shield(self._holder)
        if self._heartbeat is None and not self._closed:
            self._heartbeat = asyncio.get_running_loop().create_task(self._heartbeat_loop())

    async def _heartbeat_loop(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self.store.heartbeat(self.holder_id, self.holder_timeout)
            except Exception as exc:  # the database may be away; the next beat tries again
                if not failing:
                    logger.warning("cost-tracker heartbeat failed (%s)", type(exc).__name__)
                failing = True
                continue
            failing = False

    def _release_if_granted(self, done: asyncio.Task[ReserveOutcome], res: Reservation) -> None:
        if done.cancelled() or done.exception() is not None or not done.result().granted:
            return
        self._spawn(self.release(res))

    async def settle(self, reservation: Reservation, record: CostRecordLike | CostMetrics) -> None:
        """Replace a reservation by the actual cost and store the record (once per id).

        Args:
            reservation: What :meth:`reserve` returned.
            record: The call's cost record (llm-client/web-search record or CostMetrics).

        Raises:
            InvalidRecordError: The record cannot be stored as given.
        """
        metrics = (
            _in_project(record, reservation.project)
            if isinstance(record, CostMetrics)
            else CostMetrics.from_record(record, project=reservation.project)
        )
        await self._shielded(self._write(reservation.id if reservation.held else None, metrics))

    async def release(self, reservation: Reservation) -> None:
        """Give a reservation back (the call failed unbilled or was cancelled); idempotent."""
        if not reservation.held:
            return
        context = BudgetContext(day=reservation.day, month=reservation.month)
        await self._shielded(self._delivery.deliver("release", reservation.id, None, context))

    async def log_cost(self, metrics: CostMetrics) -> None:
        """Store one cost record (at most once per ``idempotency_id``) and count its spend.

        Spend already happened, so this never refuses; the next :meth:`reserve` does.
        If a remote database is unreachable, the record goes to the durable outbox.

        A record that does not name a project is filed under the tracker's project (so it
        counts against this tracker's budgets); a record that names a project explicitly is
        filed where it says, counted on that project's counters without this tracker's limits.

        Args:
            metrics: The record.
        """
        if not isinstance(metrics, CostMetrics):
            raise InvalidRecordError("log_cost expects CostMetrics (see CostMetrics.from_record)")
        await self._shielded(self._write(None, _in_project(metrics, self.project)))

    async def _write(self, reservation_id: str | None, metrics: CostMetrics) -> None:
        context = self._context(metrics.timestamp, metrics.project)
        await self._delivery.deliver("settle", reservation_id, metrics, context)

    async def _fire_all(self, alerts: Sequence[BudgetAlert]) -> None:
        for alert in alerts:
            await self._fire(alert)

    async def _fire(self, alert: BudgetAlert) -> None:
        if self.on_alert is None:
            logger.warning(
                "%s budget alert for project %r (%s): spent $%s of $%s",
                alert.kind,
                alert.project,
                alert.period.isoformat(),
                alert.spent,
                alert.budget,
            )
            return
        try:
            result = self.on_alert(alert)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("budget alert callback failed (the spend is recorded)")

    # --- outbox -----------------------------------------------------------------------------

    async def flush_outbox(self) -> int:
        """Deliver every pending outbox entry now; returns how many were delivered.

        Raises:
            StoreUnavailableError: The database is still unreachable (entries stay queued).
        """
        return await self._delivery.flush()

    async def outbox_size(self) -> int:
        """Number of operations waiting in the outbox."""
        return await self.outbox.count()

    async def wait_for_delivery(self) -> None:
        """Wait until the background delivery has emptied the outbox (returns at once if idle)."""
        await self._delivery.wait()

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
        return await self._delivery.guard(
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
        return await self._delivery.guard(
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
        return await self._delivery.guard(
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
        return await self._delivery.guard(
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
        return await self._delivery.guard(
            self.store.budget_status(self.project, kind, period or default)
        )

    async def _status_or_none(self, kind: str, period: date) -> BudgetStatus | None:
        try:
            return await self._delivery.guard(self.store.budget_status(self.project, kind, period))
        except StoreUnavailableError:
            return None

    async def expire_reservations(self, *, all_projects: bool = False) -> int:
        """Release reservations past ``reservation_ttl`` (left open by crashed callers)."""
        return await self._delivery.guard(
            self.store.expire_reservations(None if all_projects else self.project)
        )

    # --- plumbing ---------------------------------------------------------------------------

    async def _shielded(self, coro: Coroutine[Any, Any, None]) -> None:
        # A cancelled caller must not abandon a half-delivered write: let it finish.
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        await asyncio.shield(task)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def aclose(self) -> None:
        """Finish pending writes, stop the background delivery and close the store (once)."""
        if self._closed:
            return
        self._closed = True
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        for task in (self._heartbeat, self._holder):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._delivery.aclose()
