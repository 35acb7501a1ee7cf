"""Fixtures: a loopback z.ai server, an injectable clock, a recording cost sink, client factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from web_search import (
    CostEstimate,
    CostRecord,
    LocalSearchCache,
    PersistentCache,
    RetryPolicy,
    SearchCache,
    WebSearchClient,
    ZaiSearchProvider,
)
from web_search.testing import FakeZaiSearchServer

API_KEY = "zai-test-key-SECRET-9f8e7d"
FAST_RETRY = RetryPolicy(max_attempts=3, initial_wait=0.001, max_wait=0.005, jitter=0.0)


class FakeClock:
    """A settable clock (timezone-aware UTC)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class RecordingSink:
    """A cost sink that keeps everything it is told."""

    def __init__(self) -> None:
        self.reserved: list[CostEstimate] = []
        self.settled: list[CostRecord] = []
        self.released: list[CostEstimate] = []

    async def reserve(self, estimate: CostEstimate) -> CostEstimate:
        self.reserved.append(estimate)
        return estimate

    async def settle(self, reservation: CostEstimate, record: CostRecord) -> None:
        assert record.idempotency_id == reservation.idempotency_id
        self.settled.append(record)

    async def release(self, reservation: CostEstimate) -> None:
        self.released.append(reservation)


@pytest.fixture
async def server() -> AsyncIterator[FakeZaiSearchServer]:
    async with FakeZaiSearchServer(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


MakeClient = Callable[..., WebSearchClient]


@pytest.fixture
def make_client(server: FakeZaiSearchServer, clock: FakeClock, tmp_path: Path) -> MakeClient:
    """Build clients against the fake; by default each shares ``tmp_path/cache`` as L2."""

    def make(
        persistent: PersistentCache | str | None = "local",
        *,
        cost_sink: Any = None,
        timeout: float = 5.0,
        provider: Any = None,
        retry: RetryPolicy = FAST_RETRY,
    ) -> WebSearchClient:
        store: PersistentCache | None
        store = LocalSearchCache(tmp_path / "cache") if persistent == "local" else persistent  # type: ignore[assignment]
        return WebSearchClient(
            provider or ZaiSearchProvider(API_KEY, base_url=server.base_url),
            SearchCache(store, clock=clock),
            cost_sink,
            timeout=timeout,
            retry=retry,
        )

    return make
