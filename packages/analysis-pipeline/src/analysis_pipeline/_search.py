"""Running the research searches: the service's query set plus the LLM's, as one search set.

With a ``LegislationSearchService`` the LLM's queries come first, then the service fits both
sets to its research budget (one search per source domain, fused and ranked queries, the LLM's
restatements dropped) and runs them as one set: the persistent cache read once and written
once, the set's cost records handed over together.

Search costs reach cost-tracker through the search client's own cost sink. The run log shows
them per step from what the research returns: every ``ResearchPackage`` carries the dollars it
spent upstream (cache hits cost nothing), which is added to the research step's meter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from web_search import WebSearchClient
from web_search.services import (
    LegislationSearchService,
    PlannedQuery,
    ResearchBudget,
    ResearchPackage,
    run_research,
)

from ._progress import StepMeter, add_costs
from ._records import ResearchPlanRecord
from ._research import merge_queries
from ._schemas import SourceRef

__all__ = ["run_searches", "to_source"]


def to_source(result: Any) -> SourceRef:
    """Convert a web-search ``SearchResult`` (or any object with title/url/snippet) to a source."""
    published = getattr(result, "published_raw", None) or getattr(result, "published", None)
    found_by = getattr(result, "queries", None) or (getattr(result, "query", None),)
    return SourceRef(
        id="S0",
        url=str(result.url),
        title=str(getattr(result, "title", "") or ""),
        snippet=str(getattr(result, "snippet", "") or ""),
        published=None if published is None else str(published),
        query=found_by[0] or None,
    )


async def run_searches(
    search: Any,
    bill_id: str,
    bill_text: str,
    jurisdiction: str,
    propose: Callable[[], Awaitable[Sequence[str]]],
    *,
    meter: StepMeter,
    concurrency: int,
    on_progress: Callable[[int, int], None],
    budget: ResearchBudget | None = None,
) -> tuple[list[str], list[SourceRef], ResearchPlanRecord | None]:
    """Search the service's query set and the LLM's queries, at most ``concurrency`` at once.

    With a service, the LLM's proposal comes first; then both sets, fitted to the research
    budget, run as one search set.

    Args:
        search: A ``LegislationSearchService`` (or a bare ``WebSearchClient``).
        bill_id: Bill identifier.
        bill_text: Bill text (the service derives its own queries from it).
        jurisdiction: Jurisdiction.
        propose: Asks the LLM for extra queries (billed to the research step).
        meter: The research step's meter (searches and their cost land here).
        concurrency: Bound on searches in flight per query set.
        on_progress: Called with (query sets done, query sets planned).
        budget: The research budget (None: the service's own).

    Returns:
        The queries searched, the sources found, ranked (best first, duplicates kept), and
        how the research kept to its budget (None without a service).
    """
    extra = merge_queries(await propose())
    if isinstance(search, LegislationSearchService):
        package = await search.research(
            bill_id,
            bill_text,
            jurisdiction,
            extra_queries=extra,
            budget=budget,
            concurrency=concurrency,
        )
        queries, sources = _fused([package], meter, on_progress)
        return queries, sources, _plan_record(package)
    queries, sources = await _client_searches(
        search, bill_id, jurisdiction, extra, meter, concurrency, on_progress
    )
    return queries, sources, None


def _plan_record(package: ResearchPackage) -> ResearchPlanRecord | None:
    plan = package.plan
    if plan is None:
        return None
    return ResearchPlanRecord(
        max_calls=plan.budget.max_calls,
        max_cost=plan.budget.max_cost,
        planned_calls=plan.calls,
        calls=package.calls,
        unplanned_calls=plan.unplanned_calls,
        cut=plan.cut,
        uncovered=list(plan.uncovered),
        dropped=[f"{d.reason}: {d.text}" for d in plan.dropped],
    )


def _fused(
    packages: Sequence[ResearchPackage], meter: StepMeter, on_progress: Callable[[int, int], None]
) -> tuple[list[str], list[SourceRef]]:
    """Queries and ranked sources of the packages; their upstream cost goes to the meter."""
    queries = [q.text for p in packages for q in p.queries]
    for package in packages:
        meter.cost = add_costs(meter.cost, package.cost)
    meter.searches += len(queries)
    on_progress(len(queries), len(queries))
    ranked = sorted((s for p in packages for s in p.sources), key=lambda s: -s.score)
    return queries, [to_source(s) for s in ranked]


async def _client_searches(
    client: Any,
    bill_id: str,
    jurisdiction: str,
    extra: Sequence[str],
    meter: StepMeter,
    concurrency: int,
    on_progress: Callable[[int, int], None],
) -> tuple[list[str], list[SourceRef]]:
    queries = merge_queries([f"{bill_id} {jurisdiction}"], extra)
    if isinstance(client, WebSearchClient):  # its research package reports what it cost
        on_progress(0, len(queries))
        planned = [PlannedQuery(kind="extra", text=q, domains=()) for q in queries]
        package = await run_research(
            client, bill_id, jurisdiction, planned, concurrency=concurrency
        )
        return _fused([package], meter, on_progress)
    # Any other object with an async search(query, step=...): searches counted, no cost.
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(query: str) -> list[Any]:
        nonlocal done
        async with gate:
            found: list[Any] = await client.search(query, step="research")
        done += 1
        meter.searches += 1
        on_progress(done, len(queries))
        return found

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(q)) for q in queries]
    # Round-robin by rank so every query's best hit comes before any query's second.
    lists = [t.result() for t in tasks]
    depth = max(map(len, lists), default=0)
    ranked = [lst[d] for d in range(depth) for lst in lists if d < len(lst)]
    return queries, [to_source(r) for r in ranked]
