"""Delivery of a tracker's writes: the store when it answers, the durable outbox when it does not.

The tracker owns one :class:`Delivery` (its store and its outbox). Every store call goes
through :meth:`Delivery.guard`, which remembers whether a remote store is down; while it is,
settles and releases go straight to the outbox, and a background task replays the outbox
(exactly once, by idempotency id) until the store answers again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, TypeVar

from cost_tracker._errors import StoreUnavailableError
from cost_tracker._models import BudgetAlert, CostMetrics
from cost_tracker._outbox import Outbox
from cost_tracker._stores._protocol import BudgetContext, CostStore

__all__ = ["Delivery"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
Op = Literal["settle", "release"]
OnAlerts = Callable[[Sequence[BudgetAlert]], Awaitable[None]]


class Delivery:
    """A store plus its outbox.

    Args:
        store: The backend.
        outbox: Where writes wait while a remote store is unreachable.
        retry_interval: First delay of the background replay in seconds (doubling to 30 s);
            None: no background task (replay with :meth:`flush`).
        on_alerts: Called with the alerts a write (or a replayed write) won.
    """

    def __init__(
        self,
        store: CostStore,
        outbox: Outbox,
        retry_interval: float | None,
        on_alerts: OnAlerts,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.retry_interval = retry_interval
        self._on_alerts = on_alerts
        self._down = False
        self._warned = False
        self._flush_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None

    async def guard(self, call: Awaitable[T]) -> T:
        """Await a store call, noting whether the store is reachable."""
        try:
            result = await call
        except StoreUnavailableError:
            self._down = True
            raise
        # The store answered: writes may go to it directly again (the outbox drains apart).
        self._down = self._warned = False
        return result

    async def start(self) -> None:
        """Replay in the background what an earlier process left in the outbox."""
        if self.store.remote and await self.outbox.count() > 0:
            self._start_flusher()

    async def deliver(
        self,
        op: Op,
        reservation_id: str | None,
        metrics: CostMetrics | None,
        context: BudgetContext,
    ) -> None:
        """Apply one write to the store, or keep it in the outbox if the store is away."""
        if self.store.remote and self._down:
            await self._to_outbox(op, reservation_id, metrics, context)
            return
        try:
            await self._apply(op, reservation_id, metrics, context)
        except StoreUnavailableError:
            if not self.store.remote:
                raise
            await self._to_outbox(op, reservation_id, metrics, context)

    async def _apply(
        self,
        op: Op,
        reservation_id: str | None,
        metrics: CostMetrics | None,
        context: BudgetContext,
    ) -> None:
        if op == "release":
            assert reservation_id is not None
            await self.guard(self.store.release(reservation_id))
            return
        assert metrics is not None
        outcome = await self.guard(self.store.settle(reservation_id, metrics, context))
        if outcome.alerts:
            await self._on_alerts(outcome.alerts)

    async def _to_outbox(
        self,
        op: Op,
        reservation_id: str | None,
        metrics: CostMetrics | None,
        context: BudgetContext,
    ) -> None:
        await self.outbox.add(op, reservation_id, metrics, context)
        # One warning per outage, not one per write.
        log = logger.debug if self._warned else logger.warning
        self._warned = True
        log("cost database unreachable; %s kept in the outbox %s", op, self.outbox.path)
        self._start_flusher()

    async def flush(self) -> int:
        """Deliver every pending outbox entry now; returns how many were delivered.

        Raises:
            StoreUnavailableError: The database is still unreachable (entries stay queued).
        """
        async with self._flush_lock:
            delivered: list[int] = []
            try:
                for entry in await self.outbox.pending():
                    try:
                        await self._apply(
                            entry.op, entry.reservation_id, entry.record, entry.budget
                        )
                    except StoreUnavailableError:
                        raise
                    except Exception as exc:
                        logger.exception("outbox entry %s failed; it stays queued", entry.seq)
                        await self.outbox.note_failure(entry.seq, f"{type(exc).__name__}: {exc}")
                        continue
                    delivered.append(entry.seq)
            finally:
                await self.outbox.remove(delivered)
            self._down = False
            return len(delivered)

    async def wait(self) -> None:
        """Wait until the background replay has emptied the outbox (at once if idle)."""
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            await asyncio.shield(flusher)

    def _start_flusher(self) -> None:
        if self.retry_interval is None or (self._flusher and not self._flusher.done()):
            return
        self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        assert self.retry_interval is not None
        delay = self.retry_interval
        while True:
            await asyncio.sleep(delay)
            try:
                await self.flush()
            except StoreUnavailableError:
                delay = min(delay * 2, 30.0)
                continue
            if await self.outbox.count() == 0:
                return

    async def aclose(self) -> None:
        """Stop the background replay, close the store and the outbox."""
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        await self.store.aclose()
        await self.outbox.aclose()
