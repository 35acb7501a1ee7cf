"""Value types: results, recency windows and cache statistics."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from ._errors import InvalidQueryError

__all__ = [
    "RECENCY_VALUES",
    "CacheStats",
    "Recency",
    "SearchRequest",
    "SearchResult",
    "normalise_recency",
    "site_of",
]

Recency = Literal["1d", "1w", "1m", "1y"]
"""How recent results must be: one day, week, month or year (None means no limit)."""

RECENCY_VALUES: dict[str, Recency] = {
    "1d": "1d",
    "1w": "1w",
    "1m": "1m",
    "1y": "1y",
    "oneday": "1d",
    "oneweek": "1w",
    "onemonth": "1m",
    "oneyear": "1y",
    "day": "1d",
    "week": "1w",
    "month": "1m",
    "year": "1y",
}


def normalise_recency(value: str | None) -> Recency | None:
    """Return the canonical recency (``1d/1w/1m/1y``) for our or a provider's spelling.

    Args:
        value: ``1d``, ``oneDay``, ``day`` ... or None / ``noLimit`` for no limit.

    Raises:
        InvalidQueryError: The value names no known window.
    """
    if value is not None and not isinstance(value, str):
        raise InvalidQueryError(f"recency must be a string or None, not {type(value).__name__}")
    if value is None or value.strip().lower() in ("", "nolimit", "none"):
        return None
    try:
        return RECENCY_VALUES[value.strip().lower()]
    except KeyError:
        raise InvalidQueryError(
            f"recency must be one of 1d, 1w, 1m, 1y or None, not {value!r}"
        ) from None


@functools.lru_cache(maxsize=8192)  # pure; called for every result of every search
def site_of(url: str) -> str:
    """Host name of ``url`` without a leading ``www.``, lower-cased ('' when it has none)."""
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


class SearchResult(BaseModel):
    """One web page found by a search.

    Attributes:
        title: Page title.
        url: Link to the page.
        snippet: The provider's summary or extract of the page (z.ai ``content``).
        site: Source site name (z.ai ``media``, else the link's host).
        published: Publication date parsed from the provider's value: a timezone-aware UTC
            ``datetime`` when it had a time, a ``date`` when it had only a day, None when absent
            or unparseable.
        published_raw: The provider's date string exactly as received.
        rank: 1-based position in the merged result list.
        provider: Provider that found it (``zai``, ``tavily``).
        query: The query as sent to the provider.
        icon: Favicon URL, if the provider gave one.
        score: Provider relevance score, if it gave one (Tavily).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    url: str
    snippet: str = ""
    site: str = ""
    published: datetime | date | None = None
    published_raw: str | None = None
    rank: int = 0
    provider: str = ""
    query: str = ""
    icon: str | None = None
    score: float | None = None

    @property
    def content(self) -> str:
        """Alias of ``snippet`` under z.ai's field name."""
        return self.snippet


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Cache and spend counters, persisted by the persistent tier so they survive restarts.

    Attributes:
        l1_hits: Searches answered from the in-process tier.
        l2_hits: Searches answered from the persistent tier.
        coalesced: Searches that joined an identical search already in flight.
        misses: Searches that had to call the provider.
        upstream_calls: Provider calls made (a multi-domain search makes several).
        dollars_spent: What the upstream calls cost.
        dollars_saved: What the hits and coalesced searches would have cost.
    """

    l1_hits: int = 0
    l2_hits: int = 0
    coalesced: int = 0
    misses: int = 0
    upstream_calls: int = 0
    dollars_spent: Decimal = Decimal(0)
    dollars_saved: Decimal = Decimal(0)

    @property
    def hits(self) -> int:
        """All searches answered without a new upstream call."""
        return self.l1_hits + self.l2_hits + self.coalesced

    @property
    def lookups(self) -> int:
        """All searches counted."""
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        """Share of searches answered without a new upstream call (0.0 when none ran)."""
        return self.hits / self.lookups if self.lookups else 0.0

    def __add__(self, other: CacheStats) -> CacheStats:
        return CacheStats(
            l1_hits=self.l1_hits + other.l1_hits,
            l2_hits=self.l2_hits + other.l2_hits,
            coalesced=self.coalesced + other.coalesced,
            misses=self.misses + other.misses,
            upstream_calls=self.upstream_calls + other.upstream_calls,
            dollars_spent=self.dollars_spent + other.dollars_spent,
            dollars_saved=self.dollars_saved + other.dollars_saved,
        )


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """One search of a set (``WebSearchClient.search_many``): the arguments of ``search``.

    Attributes:
        query: Free text (``site:`` operators become domain filters).
        count: Results wanted, 1-50.
        domains: Domain filters (exact and ``*.`` wildcards).
        recency: ``1d``, ``1w``, ``1m``, ``1y`` or None.
    """

    query: str
    count: int = 10
    domains: tuple[str, ...] = ()
    recency: str | None = None


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    """One search's answer with its provenance.

    Attributes:
        results: The results (as ``search`` returns them).
        source: ``l1``, ``l2``, ``coalesced`` (joined an identical search in flight) or
            ``upstream`` (this call paid for it).
        cost: Dollars this call spent upstream (0 for every kind of hit).
        saved: Dollars this call saved by not going upstream.
        calls: Upstream calls this call paid for (0 for every kind of hit).
    """

    results: list[SearchResult]
    source: Literal["l1", "l2", "coalesced", "upstream"]
    cost: Decimal
    saved: Decimal
    calls: int = 0
