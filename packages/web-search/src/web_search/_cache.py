"""The two-tier cache: an in-process LRU in front of a persistent store, with TTL policy.

Persistent entries are versioned JSON payloads; anything that does not decode to the current
version (garbage, an old layout, a wrong key) is logged and treated as a miss, never raised.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from ._dates import parse_publish_date
from ._errors import StoreError
from ._results import link_problem
from ._stores._protocol import CacheWrite, PersistentCache
from ._types import Recency, SearchResult

__all__ = [
    "PAYLOAD_VERSION",
    "CacheEntry",
    "CachePolicy",
    "MemoryCache",
    "SearchCache",
    "decode_entry",
]

logger = logging.getLogger(__name__)

PAYLOAD_VERSION = 1
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock (timezone-aware UTC)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How long answers stay fresh.

    Attributes:
        memory_ttl: In-process tier TTL (1 h).
        persistent_ttl: Persistent tier TTL (24 h).
        empty_ttl: Cap for empty result sets, which are often transient (10 min).
        recency_ttl: Cap per recency window: a ``1d`` search is never served older than 3 h.
        memory_maxsize: Entries the in-process tier holds before evicting the least recent.
    """

    memory_ttl: timedelta = timedelta(hours=1)
    persistent_ttl: timedelta = timedelta(hours=24)
    empty_ttl: timedelta = timedelta(minutes=10)
    recency_ttl: dict[str, timedelta] = field(
        default_factory=lambda: {"1d": timedelta(hours=3), "1w": timedelta(hours=12)}
    )
    memory_maxsize: int = 10_000

    def ttl(self, tier_ttl: timedelta, recency: Recency | None, empty: bool) -> timedelta:
        """The TTL of one entry in a tier: the tier's, capped by recency and emptiness."""
        ttl = tier_ttl
        if recency in self.recency_ttl:
            ttl = min(ttl, self.recency_ttl[recency])
        if empty:
            ttl = min(ttl, self.empty_ttl)
        return ttl


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A cached answer.

    Attributes:
        results: The merged results.
        cost: What producing it cost upstream (what a hit saves).
        calls: Upstream calls it took.
        stored_at: When it was fetched.
        expires_at: When the persistent tier stops serving it.
        short_lived: Upstream found nothing: kept only for the (shorter) empty TTL.
    """

    results: tuple[SearchResult, ...]
    cost: Decimal
    calls: int
    stored_at: datetime
    expires_at: datetime
    short_lived: bool = False

    def to_payload(self, key: str) -> dict[str, Any]:
        """Versioned JSON-ready payload (``published`` is re-derived from the raw date)."""
        return {
            "v": PAYLOAD_VERSION,
            "key": key,
            "cost": str(self.cost),
            "calls": self.calls,
            "stored_at": self.stored_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "short_lived": self.short_lived,
            "results": [r.model_dump(mode="json", exclude={"published"}) for r in self.results],
        }


def decode_entry(raw: object, key: str) -> CacheEntry:
    """Decode a persistent payload (a JSON string, bytes or an already-parsed object).

    Raises:
        ValueError: The payload is corrupt, of another version, or for another key.
    """
    import json

    data = json.loads(raw) if isinstance(raw, str | bytes | bytearray) else raw
    if not isinstance(data, dict) or data.get("v") != PAYLOAD_VERSION:
        raise ValueError(f"payload version {data.get('v') if isinstance(data, dict) else None!r}")
    if data.get("key") != key:
        raise ValueError("payload belongs to another key")
    try:
        results = tuple(
            SearchResult.model_validate(
                {**item, "published": parse_publish_date(item.get("published_raw"))}
            )
            for item in data["results"]
        )
        if any(link_problem(r.url) is not None for r in results):
            # Stored by 0.1, which did not check links: such a link is never served.
            kept = [r for r in results if link_problem(r.url) is None]
            results = tuple(r.model_copy(update={"rank": n}) for n, r in enumerate(kept, 1))
        stored_at = datetime.fromisoformat(data["stored_at"])
        expires_at = datetime.fromisoformat(data["expires_at"])
        entry = CacheEntry(
            results, Decimal(data["cost"]), int(data["calls"]), stored_at, expires_at
        )
    except (KeyError, TypeError, ValidationError, InvalidOperation, AttributeError) as exc:
        raise ValueError(f"payload does not match the schema: {type(exc).__name__}") from exc
    if stored_at.tzinfo is None or expires_at.tzinfo is None:
        raise ValueError("payload timestamps are not timezone-aware")
    return entry


class MemoryCache:
    """Bounded LRU with per-entry expiry, for one process."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[str, tuple[CacheEntry, datetime]] = OrderedDict()

    def get(self, key: str, now: datetime) -> CacheEntry | None:
        """The live entry for ``key``, refreshing its recency; None if absent or expired."""
        item = self._data.get(key)
        if item is None:
            return None
        if now >= item[1]:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return item[0]

    def put(self, key: str, entry: CacheEntry, expires_at: datetime) -> None:
        """Store ``entry`` until ``expires_at``, evicting the least recently used past maxsize."""
        self._data[key] = (entry, expires_at)
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def expire(self, now: datetime) -> int:
        """Drop entries expired at ``now``; returns how many."""
        stale = [key for key, (_, expires) in self._data.items() if expires <= now]
        for key in stale:
            del self._data[key]
        return len(stale)

    def clear(self) -> None:
        """Drop everything."""
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class SearchCache:
    """Both tiers plus the TTL policy and the clock.

    Args:
        persistent: The persistent tier (``LocalSearchCache``, ``PostgresSearchCache``,
            ``SupabaseSearchCache``) or None for an in-process cache only.
        policy: TTLs and the in-process bound.
        clock: Returns the current time (timezone-aware UTC); inject one to test expiry.
        stats_namespace: Name under which statistics are persisted.
    """

    def __init__(
        self,
        persistent: PersistentCache | None = None,
        *,
        policy: CachePolicy | None = None,
        clock: Clock = utc_now,
        stats_namespace: str = "default",
    ) -> None:
        self.persistent = persistent
        self.policy = policy or CachePolicy()
        self.clock = clock
        self.stats_namespace = stats_namespace
        self.memory = MemoryCache(self.policy.memory_maxsize)
        self._degraded = False

    def _failed(self, action: str, exc: Exception) -> None:
        # One WARNING per outage: during one, every search would otherwise log its own line.
        # Only our own store errors are quoted (redacted); others by class, as they may not be.
        detail = (
            f"{type(exc).__name__}: {exc}" if isinstance(exc, StoreError) else type(exc).__name__
        )
        if self._degraded:
            logger.debug("web-search cache: persistent %s failed (%s)", action, detail)
            return
        self._degraded = True
        logger.warning(
            "web-search cache: persistent %s failed (%s); serving from memory and upstream "
            "until it answers again",
            action,
            detail,
        )

    def _answered(self) -> None:
        if self._degraded:
            self._degraded = False
            logger.info("web-search cache: the persistent tier answers again")

    def memory_get(self, key: str, now: datetime) -> CacheEntry | None:
        """In-process lookup (synchronous: the hit path never yields)."""
        return self.memory.get(key, now)

    async def persistent_get(self, key: str, now: datetime) -> CacheEntry | None:
        """Persistent lookup; corrupt entries and store failures are logged misses."""
        if self.persistent is None:
            return None
        try:
            raw = await self.persistent.get(key, now)
        except Exception as exc:
            self._failed("read", exc)
            return None
        self._answered()
        if raw is None:
            return None
        return await self._decoded(key, raw, now)

    async def persistent_get_many(
        self, keys: Sequence[str], now: datetime
    ) -> dict[str, CacheEntry]:
        """Persistent lookup of many keys in one round trip (a research set reads once).

        Corrupt entries and store failures are logged misses, as in ``persistent_get``.
        """
        if self.persistent is None or not keys:
            return {}
        try:
            found = await _get_many(self.persistent, keys, now)
        except Exception as exc:
            self._failed("read", exc)
            return {}
        self._answered()
        entries: dict[str, CacheEntry] = {}
        for key, raw in found.items():
            if raw is not None and key in keys:
                entry = await self._decoded(key, raw, now)
                if entry is not None:
                    entries[key] = entry
        return entries

    async def _decoded(self, key: str, raw: object, now: datetime) -> CacheEntry | None:
        try:
            entry = decode_entry(raw, key)
        except (ValueError, UnicodeDecodeError) as exc:
            logger.warning(
                "web-search cache: corrupt entry %s… dropped as a miss: %s", key[:12], exc
            )
            try:
                await self.persistent.delete(key)  # type: ignore[union-attr]
            except Exception as delete_exc:
                logger.warning(
                    "web-search cache: could not delete corrupt entry: %s",
                    type(delete_exc).__name__,
                )
            return None
        return entry if now < entry.expires_at else None

    def promote(self, key: str, entry: CacheEntry, recency: Recency | None, now: datetime) -> None:
        """Put an entry into the in-process tier for at most its remaining persistent life."""
        ttl = self.policy.ttl(self.policy.memory_ttl, recency, entry.short_lived)
        self.memory.put(key, entry, min(entry.expires_at, now + ttl))

    def new_entry(
        self,
        results: list[SearchResult],
        cost: Decimal,
        calls: int,
        recency: Recency | None,
        now: datetime,
        *,
        upstream_empty: bool | None = None,
    ) -> CacheEntry:
        """A fresh entry whose persistent expiry follows the policy.

        ``upstream_empty`` (default: no results) selects the short TTL for empty answers.
        """
        short = (not results) if upstream_empty is None else upstream_empty
        ttl = self.policy.ttl(self.policy.persistent_ttl, recency, short)
        return CacheEntry(tuple(results), cost, calls, now, now + ttl, short)

    async def store(
        self, key: str, entry: CacheEntry, recency: Recency | None, query: str, provider: str
    ) -> None:
        """Write through both tiers; a persistent write failure is logged, not raised."""
        self.promote(key, entry, recency, entry.stored_at)
        if self.persistent is None:
            return
        try:
            await self.persistent.set(
                key,
                entry.to_payload(key),
                expires_at=entry.expires_at,
                now=entry.stored_at,
                provider=provider,
                query=query,
            )
        except Exception as exc:
            self._failed("write", exc)
        else:
            self._answered()

    async def store_many(
        self, items: Sequence[tuple[str, CacheEntry, Recency | None, str, str]]
    ) -> None:
        """Write many ``(key, entry, recency, query, provider)`` through both tiers at once.

        The persistent tier gets one batched write (a research set writes its answers this way
        as they arrive, grouped); a failure is logged, not raised.
        """
        for key, entry, recency, _, _ in items:
            self.promote(key, entry, recency, entry.stored_at)
        if self.persistent is None or not items:
            return
        writes = [
            CacheWrite(key, entry.to_payload(key), entry.expires_at, provider, query)
            for key, entry, _, query, provider in items
        ]
        try:
            await _set_many(self.persistent, writes, min(e.stored_at for _, e, *_ in items))
        except Exception as exc:
            self._failed("write", exc)
        else:
            self._answered()

    async def cleanup(self) -> int:
        """Drop expired entries from both tiers; returns how many persistent ones went."""
        now = self.clock()
        self.memory.expire(now)
        return await self.persistent.cleanup(now) if self.persistent is not None else 0

    async def aclose(self) -> None:
        """Close the persistent tier."""
        if self.persistent is not None:
            await self.persistent.aclose()


async def _get_many(
    store: PersistentCache, keys: Sequence[str], now: datetime
) -> dict[str, object]:
    """``store.get_many``; a tier written for 0.2 (without it) is read key by key."""
    if hasattr(store, "get_many"):
        return await store.get_many(keys, now)
    found: dict[str, object] = {}
    for key in keys:
        raw = await store.get(key, now)
        if raw is not None:
            found[key] = raw
    return found


async def _set_many(store: PersistentCache, writes: Sequence[CacheWrite], now: datetime) -> None:
    """``store.set_many``; a tier written for 0.2 (without it) is written key by key."""
    if hasattr(store, "set_many"):
        await store.set_many(writes, now=now)
        return
    for w in writes:
        await store.set(
            w.key, w.payload, expires_at=w.expires_at, now=now, provider=w.provider, query=w.query
        )
