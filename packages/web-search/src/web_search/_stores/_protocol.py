"""The persistent-tier protocol every backend implements (and the contract test checks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from web_search._types import CacheStats

__all__ = ["STAT_FIELDS", "CacheWrite", "PersistentCache"]

STAT_FIELDS = ("l1_hits", "l2_hits", "coalesced", "misses", "upstream_calls")
"""Integer counters of ``CacheStats``; ``dollars_spent`` and ``dollars_saved`` are Decimals."""


@dataclass(frozen=True, slots=True)
class CacheWrite:
    """One entry of a batched write (``PersistentCache.set_many``).

    Attributes:
        key: Cache key.
        payload: Versioned JSON-ready payload.
        expires_at: When the persistent tier stops serving it.
        provider: Provider name (kept for operators).
        query: Cleaned query text (kept for operators).
    """

    key: str
    payload: dict[str, Any]
    expires_at: datetime
    provider: str
    query: str

    def as_json(self) -> dict[str, Any]:
        """The JSON object the batched SQL function ``web_search_cache_put_many`` reads."""
        return {
            "key": self.key,
            "provider": self.provider,
            "query": self.query,
            "payload": self.payload,
            "expires_at": self.expires_at.isoformat(),
        }


@runtime_checkable
class PersistentCache(Protocol):
    """A persistent tier shared by processes (and, for PostgreSQL/Supabase, by machines)."""

    async def get(self, key: str, now: datetime) -> object | None:
        """The stored payload (JSON text or parsed JSON) if present and unexpired at ``now``.

        Backends that track hits bump ``hit_count`` here. Decoding is the caller's job, so a
        corrupt payload is returned as is.
        """
        ...

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
        """Insert or replace the entry for ``key``."""
        ...

    async def get_many(self, keys: Sequence[str], now: datetime) -> dict[str, object]:
        """The stored payloads of every unexpired key among ``keys``, in one round trip.

        Keys absent or expired are left out. Hits are counted as ``get`` counts them.
        """
        ...

    async def set_many(self, entries: Sequence[CacheWrite], *, now: datetime) -> None:
        """Insert or replace every entry in one round trip (a key given twice keeps the last)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the entry for ``key`` if present."""
        ...

    async def cleanup(self, now: datetime) -> int:
        """Delete entries expired at ``now``; return how many were deleted."""
        ...

    async def add_stats(self, namespace: str, delta: CacheStats) -> None:
        """Add ``delta`` to the persisted counters of ``namespace`` atomically."""
        ...

    async def load_stats(self, namespace: str) -> CacheStats:
        """The persisted counters of ``namespace`` (zeros when none)."""
        ...

    async def aclose(self) -> None:
        """Release connections and files."""
        ...
