"""Running a query set concurrently and folding the answers into a ranked research package."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from web_search._errors import BudgetExceededError, WebSearchError
from web_search._merge import normalise_url
from web_search._types import SearchOutcome, SearchRequest, SearchResult

if TYPE_CHECKING:
    from web_search._client import WebSearchClient

    from ._plan import ResearchPlan

__all__ = [
    "DEFAULT_CONCURRENCY",
    "PlannedQuery",
    "ResearchPackage",
    "ResearchQuery",
    "Source",
    "run_research",
]

# A bill's research set is 20-30 queries; running them all at once keeps the whole set within
# ~1.5x of the slowest single search (bench/web_search.py) while still bounding a runaway plan.
DEFAULT_CONCURRENCY = 32

logger = logging.getLogger(__name__)

_RRF_K = 60  # reciprocal-rank-fusion constant: the usual value, damps any single list's top


@dataclass(frozen=True, slots=True)
class PlannedQuery:
    """One query of a research set.

    Attributes:
        kind: What it looks for (``intent``, ``fiscal_impact``, ``subject``...).
        text: Query text.
        domains: Domain filters (exact and ``*.`` wildcards).
        count: Results wanted.
        recency: Recency window or None.
    """

    kind: str
    text: str
    domains: tuple[str, ...]
    count: int = 10
    recency: str | None = None


@dataclass(frozen=True, slots=True)
class ResearchQuery:
    """A query as it ran: what it asked, how many results, where they came from, any error."""

    kind: str
    text: str
    domains: tuple[str, ...]
    results: int
    source: str
    cost: Decimal
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Source:
    """One de-duplicated source with the provenance of the queries that found it.

    Attributes:
        url: Link (the first spelling seen).
        title: Title.
        snippet: Provider summary.
        site: Site name.
        published: Parsed publication date, or None.
        published_raw: Provider's date string.
        score: Reciprocal-rank-fusion score over every query that found it.
        queries: Texts of the queries that found it, in query-set order.
        kinds: Kinds of those queries.
        best_rank: Best rank it had in any single query's results.
    """

    url: str
    title: str
    snippet: str
    site: str
    published: datetime | date | None
    published_raw: str | None
    score: float
    queries: tuple[str, ...]
    kinds: tuple[str, ...]
    best_rank: int


@dataclass(frozen=True, slots=True)
class ResearchPackage:
    """The outcome of a research query set.

    Attributes:
        subject: What was researched (a bill id, ``CA income tax 2025``, a ticker...).
        jurisdiction: Jurisdiction, or '' when not applicable.
        sources: De-duplicated sources, best first.
        queries: Every query run, in order, with its outcome.
        cost: Dollars spent upstream for this package (cache hits cost nothing).
        saved: Dollars the cache saved for this package.
        errors: Messages of the queries that failed.
        plan: The budgeted plan the queries came from (None for an unplanned set).
        calls: Upstream calls made (each paid for, one cost record each).
    """

    subject: str
    jurisdiction: str
    sources: tuple[Source, ...]
    queries: tuple[ResearchQuery, ...]
    cost: Decimal
    saved: Decimal
    errors: tuple[str, ...] = field(default=())
    plan: ResearchPlan | None = None
    calls: int = 0

    @property
    def bill_id(self) -> str:
        """Alias of ``subject`` for legislation research."""
        return self.subject

    def as_prompt_text(self, max_sources: int | None = None, max_chars: int | None = None) -> str:
        """Sources as numbered plain text for an LLM prompt, cut to the limits given."""
        lines: list[str] = []
        used = 0
        for n, source in enumerate(self.sources[:max_sources], 1):
            when = f" ({source.published.isoformat()})" if source.published else ""
            block = f"[{n}] {source.title}{when}\n{source.url}\n{source.snippet}\n"
            if max_chars is not None and used + len(block) > max_chars:
                break
            lines.append(block)
            used += len(block)
        return "\n".join(lines)


@dataclass(slots=True)
class _Found:
    result: SearchResult
    best: int
    score: float = 0.0
    queries: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    def source(self) -> Source:
        r = self.result
        return Source(
            url=r.url,
            title=r.title,
            snippet=r.snippet,
            site=r.site,
            published=r.published,
            published_raw=r.published_raw,
            score=round(self.score, 6),
            queries=tuple(self.queries),
            kinds=tuple(self.kinds),
            best_rank=self.best,
        )


async def run_research(
    client: WebSearchClient,
    subject: str,
    jurisdiction: str,
    planned: Sequence[PlannedQuery],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    step: str = "research",
    plan: ResearchPlan | None = None,
) -> ResearchPackage:
    """Run ``planned`` as one search set and fuse the answers.

    The set goes through ``WebSearchClient.search_many``: the persistent cache is read once
    and written once, and the cost records of its paid calls are handed over together. At
    most ``concurrency`` searches are in flight.

    A failing query is recorded in the package (``errors``, ``ResearchQuery.error``) instead of
    sinking the rest; if every query fails, the first error is raised. A budget refusal is
    different: once the set is done, the first ``BudgetExceededError`` is raised, because
    research bought only in part is not what the caller paid for.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    requests = [SearchRequest(q.text, q.count, q.domains, q.recency) for q in planned]
    outcomes = await client.search_many(requests, step=step, concurrency=concurrency)
    refused = [o for o in outcomes if isinstance(o, BudgetExceededError)]
    if refused:
        raise refused[0]
    failures = [o for o in outcomes if isinstance(o, WebSearchError)]
    for query, outcome in zip(planned, outcomes, strict=True):
        if isinstance(outcome, WebSearchError):
            logger.warning("research query %r failed: %s", query.text, type(outcome).__name__)
    if planned and len(failures) == len(planned):
        raise failures[0]
    ran: list[ResearchQuery] = []
    found: dict[str, _Found] = {}
    cost = saved = Decimal(0)
    for query, outcome in zip(planned, outcomes, strict=True):
        if isinstance(outcome, WebSearchError):
            ran.append(
                ResearchQuery(
                    query.kind, query.text, query.domains, 0, "error", Decimal(0), str(outcome)
                )
            )
            continue
        cost += outcome.cost
        saved += outcome.saved
        ran.append(
            ResearchQuery(
                query.kind,
                query.text,
                query.domains,
                len(outcome.results),
                outcome.source,
                outcome.cost,
            )
        )
        for result in outcome.results:
            key = normalise_url(result.url)
            slot = found.get(key)
            if slot is None:
                slot = found[key] = _Found(result, best=result.rank)
            slot.score += 1.0 / (_RRF_K + result.rank)
            slot.best = min(slot.best, result.rank)
            if query.text not in slot.queries:
                slot.queries.append(query.text)
            if query.kind not in slot.kinds:
                slot.kinds.append(query.kind)
    sources = [slot.source() for slot in found.values()]
    sources.sort(key=lambda s: (-s.score, s.best_rank, s.url))
    return ResearchPackage(
        subject,
        jurisdiction,
        tuple(sources),
        tuple(ran),
        cost,
        saved,
        tuple(str(f) for f in failures),
        plan,
        sum(o.calls for o in outcomes if isinstance(o, SearchOutcome)),
    )
