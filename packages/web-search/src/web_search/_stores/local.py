"""Local persistent tier on diskcache (SQLite): no server, safe across processes on one machine.

Layout inside the diskcache directory: ``web-search:entry:<key>`` holds ``(expires_at as a
POSIX timestamp, JSON payload)``,
``web-search:stats:<namespace>:<field>`` the counters. Blocking SQLite calls run in a worker
thread so a locked database never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import diskcache

from web_search._types import CacheStats

from ._protocol import STAT_FIELDS

__all__ = ["LocalSearchCache"]

_ENTRY = "web-search:entry:"
_STATS = "web-search:stats:"


class LocalSearchCache:
    """Persistent tier in a diskcache directory.

    Args:
        directory: Where the cache lives (created if missing); several processes may share it.
        size_limit: Bytes before diskcache evicts least-recently-stored entries (1 GiB).
    """

    def __init__(self, directory: str | Path, *, size_limit: int = 2**30) -> None:
        self.directory = Path(directory)
        self._cache = diskcache.Cache(str(self.directory), size_limit=size_limit, timeout=10)

    def __repr__(self) -> str:
        return f"LocalSearchCache({str(self.directory)!r})"

    @staticmethod
    def entry_name(key: str) -> str:
        """The diskcache key under which the entry for ``key`` is stored."""
        return _ENTRY + key

    async def get(self, key: str, now: datetime) -> object | None:
        """The stored payload text if unexpired at ``now``.

        Reads run inline: a WAL-mode SQLite read takes microseconds and never waits on writers.
        """
        value = self._cache.get(_ENTRY + key)
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], float):
            expires, text = value
            return None if now.timestamp() >= expires else text
        # Anything else is not what ``set`` writes: hand it over so the caller logs a miss.
        return value if value is None or isinstance(value, str | bytes) else repr(value)

    async def set(
        self,
        key: str,
        payload: dict[str, Any],
        *,
        expires_at: datetime,
        now: datetime,
        provider: str,
        query: str,
    ) -> None:
        """Store the payload; diskcache drops it on its own once its TTL has passed."""
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        ttl = max(1.0, (expires_at - now).total_seconds())
        value = (expires_at.timestamp(), text)
        await asyncio.to_thread(self._cache.set, _ENTRY + key, value, expire=ttl)

    async def delete(self, key: str) -> None:
        """Remove the entry."""
        await asyncio.to_thread(self._cache.delete, _ENTRY + key)

    async def cleanup(self, now: datetime) -> int:
        """Delete entries expired at ``now`` (and whatever diskcache's own clock expired)."""

        def run() -> int:
            removed = int(self._cache.expire())
            for name in list(self._cache.iterkeys()):
                if not (isinstance(name, str) and name.startswith(_ENTRY)):
                    continue
                value = self._cache.get(name)
                expired = not (isinstance(value, tuple) and value[0] > now.timestamp())
                if expired and self._cache.delete(name):
                    removed += 1
            return removed

        return await asyncio.to_thread(run)

    async def add_stats(self, namespace: str, delta: CacheStats) -> None:
        """Add ``delta`` in one diskcache transaction (atomic across processes)."""

        def run() -> None:
            prefix = f"{_STATS}{namespace}:"
            with self._cache.transact():
                for name in STAT_FIELDS:
                    amount = getattr(delta, name)
                    if amount:
                        self._cache.incr(prefix + name, amount, default=0)
                for name in ("dollars_spent", "dollars_saved"):
                    amount = getattr(delta, name)
                    if amount:
                        current = Decimal(self._cache.get(prefix + name, "0"))
                        self._cache.set(prefix + name, str(current + amount))

        await asyncio.to_thread(run)

    async def load_stats(self, namespace: str) -> CacheStats:
        """The persisted counters."""

        def run() -> CacheStats:
            prefix = f"{_STATS}{namespace}:"
            ints = {name: int(self._cache.get(prefix + name, 0)) for name in STAT_FIELDS}
            return CacheStats(
                **ints,
                dollars_spent=Decimal(self._cache.get(prefix + "dollars_spent", "0")),
                dollars_saved=Decimal(self._cache.get(prefix + "dollars_saved", "0")),
            )

        return await asyncio.to_thread(run)

    async def aclose(self) -> None:
        """Close the SQLite connection."""
        self._cache.close()
