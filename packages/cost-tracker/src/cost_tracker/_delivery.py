"""Outbox delivery of CostTracker: keep writes on disk while the database is away, replay them."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from cost_tracker._errors import StoreUnavailableError
from cost_tracker._models import CostMetrics
from cost_tracker._outbox import Outbox
from cost_tracker._stores.base import BudgetContext

__all__ = ["OutboxMixin"]

logger = logging.getLogger("cost_tracker._tracker")


class OutboxMixin:
    """Outbox methods of :class:`CostTracker` (which sets the attributes below)."""

    outbox: Outbox
    retry_interval: float | None
    _down: bool
    _flush_lock: asyncio.Lock
    _flusher: asyncio.Task[None] | None

    async def _apply(
        self,
        op: Literal["settle", "release"],
        reservation_id: str | None,
        metrics: CostMetrics | None,
        context: BudgetContext,
    ) -> None:
        raise NotImplementedError

    # --- outbox -----------------------------------------------------------------------------

    async def _to_outbox(
        self,
        op: Literal["settle", "release"],
        reservation_id: str | None,
        metrics: CostMetrics | None,
        context: BudgetContext,
    ) -> None:
        await self.outbox.add(op, reservation_id, metrics, context)
        logger.warning("cost database unreachable; %s kept in the outbox %s", op, self.outbox.path)
        self._start_flusher()

    async def flush_outbox(self) -> int:
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

    async def outbox_size(self) -> int:
        """Number of operations waiting in the outbox."""
        return await self.outbox.count()

    async def wait_for_delivery(self) -> None:
        """Wait until the background delivery has emptied the outbox (returns at once if idle)."""
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
                await self.flush_outbox()
            except StoreUnavailableError:
                delay = min(delay * 2, 30.0)
                continue
            if await self.outbox.count() == 0:
                return
