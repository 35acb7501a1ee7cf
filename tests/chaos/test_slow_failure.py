"""A database that accepts connections and never answers costs one short wait, not one per call.

A loopback "black hole" accepts TCP and never speaks, as a hung PostgreSQL or a firewalled
pooler does. Every store's connect wait is bounded (``connect_timeout``, 5 s by default): the
first operation fails (or, for the search cache, falls back to upstream) within about that, and
the circuit breaker answers the next ones at once instead of waiting again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

FIRST = 8.0  # connect_timeout (5 s) plus slack for a loaded 2-core machine
NEXT = 2.0  # while the breaker is open: no new wait
CALLS = 5
DEADLINE = 15.0  # past this an operation counts as hung and is abandoned


@pytest.fixture
async def black_hole() -> AsyncIterator[str]:
    """A PostgreSQL URL (with a password) whose server accepts and then says nothing."""
    held: list[asyncio.StreamWriter] = []
    handlers: set[asyncio.Task[Any]] = set()

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        held.append(writer)
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until the client gives up

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"postgresql://postgres:hole-password@127.0.0.1:{port}/postgres"
    server.close()
    for writer in held:
        writer.transport.abort()
    await asyncio.gather(*handlers, return_exceptions=True)  # each ends on its aborted socket
    await server.wait_closed()


async def _timed(calls: list[Any]) -> list[tuple[float, str]]:
    """Each call's seconds and outcome (``ok``, an error class, or ``hung``)."""
    timings = []
    for call in calls:
        began = time.monotonic()
        try:
            async with asyncio.timeout(DEADLINE):
                await call()
            outcome = "ok"
        except TimeoutError:
            outcome = "hung"
        except Exception as exc:
            outcome = type(exc).__name__
        timings.append((time.monotonic() - began, outcome))
    return timings


def _verdict(name: str, timings: list[tuple[float, str]], base: tuple[str, ...]) -> list[str]:
    problems = []
    first, rest = timings[0], timings[1:]
    if first[0] > FIRST:
        problems.append(f"{name}: first call took {first[0]:.1f} s ({first[1]})")
    slow = [f"{t:.1f}s" for t, _ in rest if t > NEXT]
    if slow:
        problems.append(f"{name}: later calls waited again: {slow}")
    wrong = {o for _, o in timings} - {"ok", *base}
    if wrong:
        problems.append(f"{name}: outcomes {sorted(wrong)} (expected {base} or ok)")
    return problems


async def test_a_hung_database_fails_fast(
    chaos: Any, black_hole: str, fresh_search_server: Any, tmp_path: Any
) -> None:
    from analysis_pipeline import PostgresRunStore
    from conversation_memory import PostgresMessageStore
    from cost_tracker import CostTracker, PostgresCostStore
    from llm_client import CostEstimate
    from web_search import PostgresSearchCache, SearchCache, WebSearchClient

    problems: list[str] = []

    search = WebSearchClient(
        "zai",
        cache=SearchCache(PostgresSearchCache(black_hole)),
        api_key="k",
        base_url=fresh_search_server.base_url,
        timeout=2.0,
    )
    try:
        timings = await _timed(
            [lambda i=i: search.search(f"hung cache query {i}") for i in range(CALLS)]
        )
    finally:
        async with asyncio.timeout(DEADLINE):
            await search.aclose()
    problems += _verdict("search with a hung cache", timings, ())
    if fresh_search_server.calls < CALLS:
        problems.append(f"only {fresh_search_server.calls} searches reached upstream")

    tracker = CostTracker(
        PostgresCostStore(black_hole),
        daily_budget="1",
        outbox_path=tmp_path / "outbox.sqlite",
        retry_interval=None,
    )
    try:
        timings = await _timed(
            [
                lambda: tracker.reserve(
                    CostEstimate(uuid.uuid4().hex, "openai", "gpt-4o-mini", "t", Decimal("0.01"))
                )
                for _ in range(CALLS)
            ]
        )
    finally:
        async with asyncio.timeout(DEADLINE):
            await tracker.aclose()
    problems += _verdict("cost reserve", timings, ("StoreUnavailableError",))

    runs = PostgresRunStore(black_hole)
    try:
        timings = await _timed([lambda: runs.get_run(str(uuid.uuid4())) for _ in range(CALLS)])
    finally:
        async with asyncio.timeout(DEADLINE):
            await runs.aclose()
    problems += _verdict("run store", timings, ("RunStoreError", "StoreUnavailableError"))

    messages = PostgresMessageStore(black_hole)
    try:
        timings = await _timed(
            [lambda: messages.export_user(str(uuid.uuid4())) for _ in range(CALLS)]
        )
    finally:
        async with asyncio.timeout(DEADLINE):
            await messages.aclose()
    problems += _verdict("message store", timings, ("StoreUnavailableError",))
    assert not problems, "\n".join(problems)
