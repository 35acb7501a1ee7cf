"""Running the research searches: the service's query set plus the LLM's, concurrently.

Search costs reach cost-tracker through the search client's own cost sink. To also show them
per step in the run log, the pipeline wraps that sink once (:class:`MeteringSink`): settled
records are forwarded unchanged and, when a step is metering (a context variable set around
the searches), added to that step's meter too.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from web_search.services import (
    LegislationSearchService,
    ResearchPackage,
    profile_for,
    run_research,
)

from ._progress import StepMeter, add_costs
from ._research import merge_queries
from ._schemas import SourceRef

__all__ = ["MeteringSink", "install_metering", "run_searches", "to_source"]

_METER: contextvars.ContextVar[StepMeter | None] = contextvars.ContextVar(
    "analysis_pipeline_meter", default=None
)


class MeteringSink:
    """A cost sink that forwards to another and copies settled costs into the active meter.

    Args:
        inner: The real sink (a ``CostTracker``), or None.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"MeteringSink({self.inner!r})"

    async def reserve(self, estimate: Any) -> Any:
        """Reserve with the inner sink (which may refuse)."""
        return None if self.inner is None else await self.inner.reserve(estimate)

    async def settle(self, reservation: Any, record: Any) -> None:
        """Settle with the inner sink, then meter the cost for the current step."""
        if self.inner is not None:
            await self.inner.settle(reservation, record)
        meter = _METER.get()
        if meter is not None:
            meter.cost = add_costs(meter.cost, getattr(record, "cost", None))

    async def release(self, reservation: Any) -> None:
        """Release with the inner sink."""
        if self.inner is not None:
            await self.inner.release(reservation)


def install_metering(search: Any) -> None:
    """Wrap the search client's cost sink in a :class:`MeteringSink` (once)."""
    client = getattr(search, "client", search)
    if hasattr(client, "cost_sink") and not isinstance(client.cost_sink, MeteringSink):
        client.cost_sink = MeteringSink(client.cost_sink)


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
) -> tuple[list[str], list[SourceRef]]:
    """Search the service's query set and the LLM's queries, at most ``concurrency`` at once.

    The service's own queries do not depend on the LLM, so they start at once, while the LLM
    is still proposing its queries; only the LLM's extra queries wait for the proposal.

    Args:
        search: A ``LegislationSearchService`` (or a bare ``WebSearchClient``).
        bill_id: Bill identifier.
        bill_text: Bill text (the service derives its own queries from it).
        jurisdiction: Jurisdiction.
        propose: Asks the LLM for extra queries (billed to the research step).
        meter: The research step's meter (searches and their cost land here).
        concurrency: Bound on searches in flight per query set.
        on_progress: Called with (query sets done, query sets planned).

    Returns:
        The queries searched and the sources found, ranked (best first, duplicates kept).
    """
    token = _METER.set(meter)
    try:
        if isinstance(search, LegislationSearchService):
            return await _service_searches(
                search, bill_id, bill_text, jurisdiction, propose, meter, concurrency, on_progress
            )
        extra = merge_queries(await propose())
        return await _client_searches(search, bill_id, jurisdiction, extra, meter, concurrency,
                                      on_progress)  # fmt: skip
    finally:
        _METER.reset(token)


async def _service_searches(
    service: LegislationSearchService,
    bill_id: str,
    bill_text: str,
    jurisdiction: str,
    propose: Callable[[], Awaitable[Sequence[str]]],
    meter: StepMeter,
    concurrency: int,
    on_progress: Callable[[int, int], None],
) -> tuple[list[str], list[SourceRef]]:
    place = profile_for(jurisdiction).name
    base = service.plan(bill_id, bill_text, jurisdiction)
    on_progress(0, len(base))

    async def extra_searches() -> ResearchPackage | None:
        extra = merge_queries(await propose())
        planned = [p for p in service.plan(bill_id, bill_text, jurisdiction, extra)
                   if p.kind == "extra"]  # fmt: skip
        if not planned:
            return None
        on_progress(0, len(base) + len(planned))
        return await run_research(service.client, bill_id, place, planned, concurrency=concurrency)

    async with asyncio.TaskGroup() as group:
        # Costs arrive through the client's MeteringSink (package.cost would count twice).
        first = group.create_task(
            run_research(service.client, bill_id, place, base, concurrency=concurrency)
        )
        second = group.create_task(extra_searches())
    packages = [p for p in (first.result(), second.result()) if p is not None]
    queries = [q.text for p in packages for q in p.queries]
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
