"""Counting hits, misses and dollars, and persisting them through the persistent tier."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from ._types import CacheStats

if TYPE_CHECKING:
    from ._cache import SearchCache

__all__ = ["StatsKeeper"]

logger = logging.getLogger(__name__)

FLUSH_EVERY = 256
"""Pending events that trigger a background flush, so a crash loses at most this many."""


class StatsKeeper:
    """In-memory deltas, flushed to the persistent tier in the background and on demand.

    Counting is synchronous and allocation-light because it sits on the in-process hit path.
    """

    def __init__(self, cache: SearchCache) -> None:
        self._cache = cache
        self._counts = {
            "l1_hits": 0,
            "l2_hits": 0,
            "coalesced": 0,
            "misses": 0,
            "upstream_calls": 0,
        }
        self._spent = Decimal(0)
        self._saved = Decimal(0)
        self._pending = 0
        self._session = CacheStats()
        self._lock = asyncio.Lock()
        self._flushing: asyncio.Task[None] | None = None
        self._failing = False

    def hit(self, tier: Literal["l1", "l2", "coalesced"], saved: Decimal) -> None:
        """Count a search answered without an upstream call, saving ``saved`` dollars."""
        self._counts["coalesced" if tier == "coalesced" else f"{tier}_hits"] += 1
        self._saved += saved
        self._bump()

    def miss(self, calls: int, spent: Decimal) -> None:
        """Count a search that made ``calls`` upstream calls costing ``spent``."""
        self._counts["misses"] += 1
        self._counts["upstream_calls"] += calls
        self._spent += spent
        self._bump()

    def _bump(self) -> None:
        self._pending += 1
        if self._pending >= FLUSH_EVERY and self._flushing is None and self._cache.persistent:
            self._flushing = asyncio.get_running_loop().create_task(self._background_flush())

    async def _background_flush(self) -> None:
        try:
            await self.flush()
        except Exception as exc:
            # Once per outage: a long one would otherwise log a line every FLUSH_EVERY events.
            log = logger.debug if self._failing else logger.warning
            log("web-search stats: flush failed (%s); will retry", type(exc).__name__)
            self._failing = True
        else:
            self._failing = False
        finally:
            self._flushing = None

    def _take(self) -> CacheStats:
        delta = CacheStats(**self._counts, dollars_spent=self._spent, dollars_saved=self._saved)
        for name in self._counts:
            self._counts[name] = 0
        self._spent = self._saved = Decimal(0)
        self._pending = 0
        return delta

    async def flush(self) -> None:
        """Add pending counts to the persistent tier (kept pending if the write fails)."""
        async with self._lock:
            delta = self._take()
            self._session = self._session + delta
            persistent = self._cache.persistent
            if persistent is None or delta.lookups == 0:
                return
            try:
                await persistent.add_stats(self._cache.stats_namespace, delta)
            except BaseException:
                self._restore(delta)
                raise

    def _restore(self, delta: CacheStats) -> None:
        self._session = CacheStats(
            **{n: getattr(self._session, n) - getattr(delta, n) for n in self._counts},
            dollars_spent=self._session.dollars_spent - delta.dollars_spent,
            dollars_saved=self._session.dollars_saved - delta.dollars_saved,
        )
        for name in self._counts:
            self._counts[name] += getattr(delta, name)
        self._spent += delta.dollars_spent
        self._saved += delta.dollars_saved

    async def totals(self) -> CacheStats:
        """Persisted totals after a flush, or this process's counts without a persistent tier."""
        await self.flush()
        persistent = self._cache.persistent
        if persistent is None:
            return self._session
        return await persistent.load_stats(self._cache.stats_namespace)
