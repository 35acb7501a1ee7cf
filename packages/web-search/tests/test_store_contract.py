"""One contract, every persistent backend: local diskcache, PostgreSQL and Supabase."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import diskcache
import psycopg
import pytest
import web_search
from llm_common_testkit.contract import ContractBackend, GenericStoreContract, StoreContract
from web_search import (
    CacheStats,
    LocalSearchCache,
    PersistentCache,
    PostgresSearchCache,
    SearchCache,
    SearchResult,
    SupabaseSearchCache,
    WebSearchClient,
    ZaiSearchProvider,
)
from web_search._cache import CacheEntry
from web_search._stores._protocol import CacheWrite
from web_search.testing import FakeZaiSearchServer

from .conftest import API_KEY, FAST_RETRY, FakeClock

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
# What the generic checks found on main before the store work of issues 11/17 (which adds
# StoreCorruptError) landed; with that work every check passes, and a stale entry would fail.
_BEFORE_STORE_WORK = not hasattr(web_search, "StoreCorruptError")
_GAPS_BEFORE_STORE_WORK = {
    "unreachable": "no StoreUnavailableError yet: a cut database raises psycopg's "
    "OperationalError, an unreachable Supabase API httpx.ConnectError",
    "corrupt_local_file": "no StoreCorruptError yet: a corrupt cache.db raises "
    "sqlite3.DatabaseError",
}


async def _supabase(server: Any, url: str) -> PersistentCache:
    return await SupabaseSearchCache.connect(server.url, server.service_key)


async def _exercise(store: PersistentCache) -> None:
    await store.get("0" * 64, NOW)


CONTRACT = StoreContract(
    package="web-search",
    local=lambda tmp_path: LocalSearchCache(tmp_path / "store"),
    postgres=PostgresSearchCache,
    supabase=_supabase,
    exercise=_exercise,
    local_file=lambda tmp_path: tmp_path / "store" / "cache.db",
    unavailable_error="web_search.StoreUnavailableError",
    corrupt_error="web_search.StoreCorruptError",
    known_gaps=_GAPS_BEFORE_STORE_WORK if _BEFORE_STORE_WORK else {},
)
contract_backend, store_contract = CONTRACT.fixtures()


class Backend:
    """A store plus a way to write garbage into its raw storage."""

    def __init__(self, handle: ContractBackend, store: PersistentCache) -> None:
        self.kind, self.store, self.tmp = handle.kind, store, handle.tmp_path
        self.db_url, self.server = handle.url, handle.server
        self._handle = handle

    async def fresh(self) -> PersistentCache:
        """A second handle on the same storage (another process would open one)."""
        store: PersistentCache = await self._handle.new_store()
        return store

    def corrupt(self, key: str, payload: Any) -> None:
        if self.kind == "local":
            raw = diskcache.Cache(str(self.tmp / "store"))
            raw.set(LocalSearchCache.entry_name(key), payload)
            raw.close()
            return
        assert self.db_url
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            conn.execute(
                "update public.web_search_cache set payload = %s::jsonb where key = %s",
                (payload, key),
            )

    def hit_count(self, key: str) -> int | None:
        if self.kind == "local":
            return None
        assert self.db_url
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            row = conn.execute(
                "select hit_count from public.web_search_cache where key = %s", (key,)
            ).fetchone()
        return int(row[0]) if row else None


@pytest.fixture
async def backend(contract_backend: ContractBackend) -> Backend:
    """Each persistent backend in turn; every store it builds is closed at teardown."""
    return Backend(contract_backend, await contract_backend.new_store())


def _entry(title: str = "t", expires_in: timedelta = timedelta(hours=24)) -> CacheEntry:
    result = SearchResult(
        title=title,
        url="https://lao.ca.gov/x",
        snippet="s",
        site="lao.ca.gov",
        published=date(2025, 10, 1),
        published_raw="2025年10月1日",
        rank=1,
        provider="zai",
        query="q",
    )
    return CacheEntry((result,), Decimal("0.01"), 1, NOW, NOW + expires_in)


async def _put(store: PersistentCache, key: str, entry: CacheEntry) -> None:
    await store.set(
        key,
        entry.to_payload(key),
        expires_at=entry.expires_at,
        now=entry.stored_at,
        provider="zai",
        query="q",
    )


async def test_missing_key_is_none(backend: Backend) -> None:
    assert await backend.store.get("k" * 64, NOW) is None


async def test_round_trip_through_search_cache(backend: Backend) -> None:
    cache = SearchCache(backend.store, clock=lambda: NOW)
    entry = _entry()
    await _put(backend.store, "a" * 64, entry)
    got = await cache.persistent_get("a" * 64, NOW)
    assert got == entry
    assert got is not None
    assert got.results[0].published is not None
    other = await backend.fresh()
    assert await SearchCache(other, clock=lambda: NOW).persistent_get("a" * 64, NOW) == entry
    await other.aclose()


async def test_overwrite_replaces(backend: Backend) -> None:
    await _put(backend.store, "b" * 64, _entry("old"))
    await _put(backend.store, "b" * 64, _entry("new"))
    got = await SearchCache(backend.store).persistent_get("b" * 64, NOW)
    assert got is not None
    assert got.results[0].title == "new"


async def test_expired_entries_are_not_served_and_cleanup_removes_them(backend: Backend) -> None:
    await _put(backend.store, "c" * 64, _entry(expires_in=timedelta(hours=1)))
    await _put(backend.store, "d" * 64, _entry(expires_in=timedelta(hours=48)))
    later = NOW + timedelta(hours=2)
    assert await backend.store.get("c" * 64, later) is None
    assert await backend.store.get("d" * 64, later) is not None
    assert await backend.store.cleanup(later) == 1
    assert await backend.store.get("c" * 64, NOW) is None
    assert await backend.store.get("d" * 64, NOW) is not None


async def test_delete(backend: Backend) -> None:
    await _put(backend.store, "e" * 64, _entry())
    await backend.store.delete("e" * 64)
    assert await backend.store.get("e" * 64, NOW) is None


async def test_hits_are_counted(backend: Backend) -> None:
    await _put(backend.store, "f" * 64, _entry())
    for _ in range(3):
        await backend.store.get("f" * 64, NOW)
    assert backend.hit_count("f" * 64) in (None, 3)


async def test_batched_read_and_write(backend: Backend) -> None:
    """A research set's one read and one write: every key at once, hits counted, last wins."""
    keys = [c * 64 for c in "0123"]
    fresh, stale = _entry("fresh"), _entry("stale", expires_in=timedelta(hours=1))
    writes = [
        CacheWrite(keys[0], _entry("first").to_payload(keys[0]), fresh.expires_at, "zai", "q0"),
        CacheWrite(keys[1], stale.to_payload(keys[1]), stale.expires_at, "zai", "q1"),
        CacheWrite(keys[2], fresh.to_payload(keys[2]), fresh.expires_at, "zai", "q2"),
        CacheWrite(keys[0], fresh.to_payload(keys[0]), fresh.expires_at, "zai", "q0"),
    ]
    await backend.store.set_many(writes, now=NOW)
    assert await backend.store.get_many([], NOW) == {}
    later = NOW + timedelta(hours=2)
    found = await backend.store.get_many(keys, later)
    assert set(found) == {keys[0], keys[2]}  # keys[1] expired, keys[3] never written
    cache = SearchCache(backend.store, clock=lambda: later)
    entries = await cache.persistent_get_many(keys, later)
    assert {k: e.results[0].title for k, e in entries.items()} == {
        keys[0]: "fresh",
        keys[2]: "fresh",
    }
    assert backend.hit_count(keys[0]) in (None, 2)
    assert backend.hit_count(keys[3]) is None
    # The single-key form reads what the batched form wrote.
    assert await backend.store.get(keys[2], later) is not None


async def test_batched_read_drops_a_corrupt_entry(backend: Backend) -> None:
    await _put(backend.store, "8" * 64, _entry())
    await _put(backend.store, "7" * 64, _entry())
    backend.corrupt("8" * 64, '"garbage"')
    entries = await SearchCache(backend.store).persistent_get_many(["8" * 64, "7" * 64], NOW)
    assert list(entries) == ["7" * 64]
    assert await backend.store.get("8" * 64, NOW) is None  # dropped


@pytest.mark.parametrize(
    "garbage", ['"garbage"', '{"v": 99, "results": "nope"}', '{"v": 1, "key": "ffff"}']
)
async def test_corrupt_entry_is_a_logged_miss(
    backend: Backend, garbage: str, caplog: pytest.LogCaptureFixture
) -> None:
    await _put(backend.store, "9" * 64, _entry())
    backend.corrupt("9" * 64, garbage)
    caplog.set_level(logging.WARNING, logger="web_search")
    assert await SearchCache(backend.store).persistent_get("9" * 64, NOW) is None
    assert any("corrupt entry" in r.getMessage() for r in caplog.records)
    assert await backend.store.get("9" * 64, NOW) is None  # dropped


async def test_stats_accumulate_exactly_under_concurrency(backend: Backend) -> None:
    delta = CacheStats(
        l1_hits=2,
        l2_hits=1,
        coalesced=1,
        misses=1,
        upstream_calls=3,
        dollars_spent=Decimal("0.03"),
        dollars_saved=Decimal("0.0000001"),
    )
    assert await backend.store.load_stats("ns") == CacheStats()
    await asyncio.gather(*(backend.store.add_stats("ns", delta) for _ in range(20)))
    total = await backend.store.load_stats("ns")
    assert (total.l1_hits, total.l2_hits, total.coalesced, total.misses, total.upstream_calls) == (
        40,
        20,
        20,
        20,
        60,
    )
    assert total.dollars_spent == Decimal("0.60")
    assert total.dollars_saved == Decimal("0.0000020")
    assert await backend.store.load_stats("other") == CacheStats()


async def test_client_shares_the_tier_and_persists_stats(backend: Backend) -> None:
    clock = FakeClock()
    async with FakeZaiSearchServer(api_key=API_KEY) as server:
        provider = ZaiSearchProvider(API_KEY, base_url=server.base_url)
        first = WebSearchClient(
            provider, SearchCache(await backend.fresh(), clock=clock), retry=FAST_RETRY
        )
        async with first:
            original = await first.search("shared tier", domains=["lao.ca.gov"])
        second = WebSearchClient(
            provider, SearchCache(await backend.fresh(), clock=clock), retry=FAST_RETRY
        )
        async with second:
            assert await second.search("Shared  TIER", domains=["lao.ca.gov"]) == original
            stats = await second.get_cache_stats()
    assert server.calls == 1
    assert (stats.misses, stats.l2_hits, stats.upstream_calls) == (1, 1, 1)
    assert stats.dollars_saved == Decimal("0.01")


class TestGenericStoreContract(GenericStoreContract):
    """The testkit's checks every backend of every package passes (see CONTRACT above)."""
