"""Every PostgreSQL-backed store survives its first uses arriving all at once.

Found by the pipeline chaos run: ten runs starting together on a fresh ``PostgresRunStore``
each opened its pool, and psycopg_pool's ``open()`` raised a bare ``AssertionError`` in all but
one of them. A store must open its pool once, however many callers arrive first.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

pytestmark = pytest.mark.postgres

CALLERS = 10


async def _together(make_call: Any) -> list[Any]:
    results = await asyncio.gather(*(make_call() for _ in range(CALLERS)), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, f"{len(failures)} of {CALLERS} first calls failed: {failures[:3]!r}"
    return results


async def test_run_store(postgres_db: str) -> None:
    from analysis_pipeline import PostgresRunStore

    store = PostgresRunStore(postgres_db)
    try:
        results = await _together(store.get_model_configs)
        assert results == [{}] * CALLERS
    finally:
        await store.aclose()


async def test_cost_store(postgres_db: str) -> None:
    from cost_tracker import CostMetrics, CostTracker, PostgresCostStore

    tracker = CostTracker(PostgresCostStore(postgres_db), retry_interval=None)
    try:
        await _together(lambda: tracker.log_cost(CostMetrics(provider="p", model="m", cost="0.1")))
        assert await tracker.get_daily_cost() == CALLERS * Decimal("0.1")
    finally:
        await tracker.aclose()


async def test_search_cache(postgres_db: str) -> None:
    from web_search import PostgresSearchCache

    cache = PostgresSearchCache(postgres_db)
    try:
        now = datetime.now(UTC)
        results = await _together(lambda: cache.get("no-such-key", now))
        assert results == [None] * CALLERS
    finally:
        await cache.aclose()


async def test_message_store(postgres_db: str) -> None:
    from conversation_memory import PostgresMessageStore

    store = PostgresMessageStore(postgres_db)
    try:
        user = str(uuid.uuid4())
        results = await _together(lambda: store.export_user(user))
        assert results == [([], [])] * CALLERS
    finally:
        await store.aclose()
