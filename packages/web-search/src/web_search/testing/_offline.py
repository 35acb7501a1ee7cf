"""A ready-made offline client: ``WebSearchClient`` wired to a fresh loopback fake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from web_search._cache import SearchCache
from web_search._client import WebSearchClient
from web_search._retry import RetryPolicy
from web_search._zai import ZaiSearchProvider

from ._server import FakeZaiSearchServer

__all__ = ["offline_search_client"]


@asynccontextmanager
async def offline_search_client(
    *,
    latency: float = 0.0,
    cache: SearchCache | None = None,
    cost_sink: Any = None,
    server: FakeZaiSearchServer | None = None,
) -> AsyncIterator[WebSearchClient]:
    """A ``WebSearchClient`` talking real HTTP to a ``FakeZaiSearchServer`` (no network, no key).

    Args:
        latency: Simulated upstream latency per call, in seconds.
        cache: Cache to use (default: in-process only, so nothing is written to disk).
        cost_sink: Cost sink to report to.
        server: An already started fake to use (scripted replies, call counts); a new one is
            started and stopped otherwise.

    Example:
        >>> async with offline_search_client() as client:
        ...     package = await LegislationSearchService(client).search_exhaustively(...)
    """
    fake = server or FakeZaiSearchServer(latency=latency)
    started = server is None
    if started:
        await fake.__aenter__()
    try:
        provider = ZaiSearchProvider("offline-test-key", base_url=fake.base_url)
        retry = RetryPolicy(initial_wait=0.01, max_wait=0.05, jitter=0.01)
        async with WebSearchClient(
            provider, cache or SearchCache(), cost_sink, retry=retry
        ) as client:
            yield client
    finally:
        if started:
            await fake.__aexit__(None, None, None)
