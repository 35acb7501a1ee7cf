"""An unreachable persistent tier costs one short wait per interval, and leaks no secret.

Issue 17, class 6: a search with an unreachable PostgreSQL cache took 90 s (three 30 s pool
waits) before answering from upstream. Class 1: the cache database's password and the
Supabase key must never reach a log line (any library, DEBUG), a repr or an error.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime

import pytest
from llm_common_testkit import TcpProxy, replace_url
from llm_common_testkit.postgrest import SupabaseServer
from psycopg_pool import AsyncConnectionPool
from web_search import (
    ConfigurationError,
    PersistentCache,
    PostgresSearchCache,
    SearchCache,
    StoreUnavailableError,
    SupabaseSearchCache,
    WebSearchClient,
    ZaiSearchProvider,
)
from web_search._stores.postgres import DEFAULT_CONNECT_TIMEOUT
from web_search.testing import FakeZaiSearchServer

from .conftest import API_KEY, FAST_RETRY

SLACK = 1.0
"""Seconds of scheduling slack on a loaded 2-core box."""


async def _wait_until(check: Callable[[], Awaitable[bool]], within: float) -> None:
    """Poll ``check`` until it holds, failing after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.05)


def _client(server: FakeZaiSearchServer, store: PersistentCache) -> WebSearchClient:
    provider = ZaiSearchProvider(API_KEY, base_url=server.base_url)
    return WebSearchClient(provider, SearchCache(store), retry=FAST_RETRY)


async def _outage_then_recovery(
    server: FakeZaiSearchServer,
    make_store: Callable[[], Awaitable[PersistentCache]],
    proxy: TcpProxy,
    connect_timeout: float,
    caplog: pytest.LogCaptureFixture,
) -> PersistentCache:
    """The scenario every networked tier must pass; returns the store (still open)."""
    store = await make_store()
    client = _client(server, store)
    assert (await client.search_detailed("before the outage")).source == "upstream"
    proxy.stop()
    caplog.clear()
    started = time.monotonic()
    assert (await client.search_detailed("during the outage 0")).source == "upstream"
    assert time.monotonic() - started < connect_timeout + SLACK
    started = time.monotonic()
    for n in range(1, 21):
        assert (await client.search_detailed(f"during the outage {n}")).source == "upstream"
    assert (await client.search_detailed("during the outage 3")).source == "l1"
    assert time.monotonic() - started < SLACK  # the breaker answers at once: no more waits
    # One line per layer for the whole outage (the pool's, the cache's), not one per search;
    # psycopg_pool adds one per pooled connection it finds dead (one here: searches were serial).
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("unreachable" in w and "failing fast" in w for w in warnings) == 1, warnings
    assert sum("persistent read failed" in w for w in warnings) == 1, warnings
    assert sum("discarding closed connection" in w for w in warnings) <= 1, warnings
    assert len(warnings) <= 3, warnings
    proxy.start()

    async def cache_answers() -> bool:
        try:
            return await store.get("0" * 64, datetime.now(UTC)) is None
        except StoreUnavailableError:
            return False

    await _wait_until(cache_answers, within=10.0)
    async with _client(server, await make_store()) as other:  # another process
        assert (await other.search_detailed("before the outage")).source == "l2"
        assert (await other.search_detailed("during the outage 7")).source == "upstream"
        assert (await other.search_detailed("stored by another process")).source == "upstream"
    # The first client reads and writes the persistent tier again.
    assert (await client.search_detailed("stored by another process")).source == "l2"
    assert (await client.search_detailed("after the outage")).source == "upstream"
    async with _client(server, await make_store()) as other:
        assert (await other.search_detailed("after the outage")).source == "l2"
    assert server.calls == 1 + 21 + 2 + 1
    client.cache.persistent = None  # the caller closes the store
    await client.aclose()
    return store


@pytest.fixture
def supabase_proxy(supabase_server: SupabaseServer) -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", supabase_server.port).start() as proxy:
        yield proxy


@pytest.mark.postgres
async def test_unreachable_supabase_costs_one_short_wait(
    supabase_server: SupabaseServer,
    supabase_proxy: TcpProxy,
    server: FakeZaiSearchServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    async def make_store() -> PersistentCache:
        return await SupabaseSearchCache.connect(
            f"http://127.0.0.1:{supabase_proxy.port}",
            supabase_server.service_key,
            connect_timeout=1.0,
            breaker_interval=1.0,
        )

    store = await _outage_then_recovery(server, make_store, supabase_proxy, 1.0, caplog)
    try:
        supabase_proxy.stop()
        with pytest.raises(StoreUnavailableError) as info:
            await store.get("1" * 64, datetime.now(UTC))
        seen = [repr(store), caplog.text, *_chain(info.value)]
    finally:
        await store.aclose()
    assert all(supabase_server.service_key not in text for text in seen)
    assert supabase_server.jwt_secret not in caplog.text


def _chain(exc: BaseException | None) -> list[str]:
    """str and repr of an exception and everything it was raised from."""
    texts: list[str] = []
    while exc is not None:
        texts += [str(exc), repr(exc), repr(getattr(exc, "args", ()))]
        exc = exc.__cause__ or exc.__context__
    return texts


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A port that accepts TCP connections and never answers (a hung server)."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        yield listener.getsockname()[1]


PG_SECRET = "pg-SENTINEL-password-7c1d"


@pytest.mark.postgres
async def test_unreachable_postgres_costs_one_short_wait(
    postgres_db: str,
    tcp_proxy: TcpProxy,
    server: FakeZaiSearchServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every library's logs, psycopg_pool's included
    url = replace_url(tcp_proxy.url_for(postgres_db), password=PG_SECRET)  # trust auth

    async def make_store() -> PersistentCache:
        return PostgresSearchCache(url, connect_timeout=1.0, breaker_interval=1.0)

    store = await _outage_then_recovery(server, make_store, tcp_proxy, 1.0, caplog)
    try:
        tcp_proxy.stop()
        with pytest.raises(StoreUnavailableError) as info:
            await store.get("1" * 64, datetime.now(UTC))
        seen = [repr(store), str(store), caplog.text, *_chain(info.value)]
        seen += [str(r.args) for r in caplog.records]
    finally:
        await store.aclose()
    assert all(PG_SECRET not in text for text in seen)
    assert "***" in repr(store) or "pg-SENTINEL" not in repr(store)


@pytest.mark.postgres
async def test_a_hung_database_is_bounded_by_connect_timeout(
    blackhole: int, server: FakeZaiSearchServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The 90 s of the probe: the server accepts but never answers."""
    caplog.set_level(logging.DEBUG)
    store = PostgresSearchCache(f"postgresql://postgres:{PG_SECRET}@127.0.0.1:{blackhole}/db")
    async with _client(server, store) as client:
        started = time.monotonic()
        assert (await client.search_detailed("hung cache")).source == "upstream"
        assert time.monotonic() - started < DEFAULT_CONNECT_TIMEOUT + SLACK
        started = time.monotonic()
        for n in range(20):
            assert (await client.search_detailed(f"hung cache {n}")).source == "upstream"
        assert time.monotonic() - started < SLACK
    assert PG_SECRET not in caplog.text


@pytest.mark.postgres
async def test_pool_ownership(postgres_db: str) -> None:
    owned = PostgresSearchCache.from_url(postgres_db)
    assert owned.owns_client
    assert await owned.get("0" * 64, datetime.now(UTC)) is None
    await owned.aclose()
    with pytest.raises(StoreUnavailableError):
        await owned.get("0" * 64, datetime.now(UTC))

    async with AsyncConnectionPool(
        postgres_db, kwargs={"autocommit": True}, min_size=1, open=False
    ) as pool:
        borrowed = PostgresSearchCache(pool=pool)
        assert not borrowed.owns_client
        assert await borrowed.get("0" * 64, datetime.now(UTC)) is None
        await borrowed.aclose()
        assert not pool.closed  # the app's pool stays open
        async with pool.connection() as conn:
            await conn.execute("select 1")


def test_a_bad_connection_string_is_a_configuration_error_without_the_password() -> None:
    with pytest.raises(ConfigurationError) as info:
        PostgresSearchCache(f"postgresql://u:{PG_SECRET}@host/db?no_such_option=1")
    assert all(PG_SECRET not in text for text in _chain(info.value))
