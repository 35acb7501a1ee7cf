"""Cache behaviour end to end: tiers, TTLs with an injected clock, corruption, coalescing, costs."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import diskcache
import pytest
from web_search import LocalSearchCache, SearchCache, WebSearchClient, ZaiSearchProvider
from web_search.testing import FakeZaiSearchServer, Reply

from .conftest import API_KEY, FAST_RETRY, FakeClock, MakeClient, RecordingSink


async def test_second_search_is_an_l1_hit(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    async with make_client() as client:
        first = await client.search("rent caps California")
        second = await client.search("RENT   caps california")  # case and spaces fold into one key
        stats = await client.get_cache_stats()
    assert first == second
    assert server.calls == 1
    assert (stats.l1_hits, stats.l2_hits, stats.misses, stats.upstream_calls) == (1, 0, 1, 1)
    assert stats.dollars_saved == Decimal("0.01")
    assert stats.dollars_spent == Decimal("0.01")
    assert stats.hit_rate == 0.5


async def test_key_covers_count_domains_recency(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    async with make_client(None) as client:
        await client.search("q", domains=["b.gov", "a.gov"])
        await client.search("q", domains=["a.gov", "b.gov"])  # same key: domains sorted
        await client.search("q", count=5)
        await client.search("q", recency="1m")
        await client.search("q")
    assert server.calls == 2 + 3


async def test_l2_serves_a_new_client_and_l1_ttl_expires(
    server: FakeZaiSearchServer, make_client: MakeClient, clock: FakeClock
) -> None:
    async with make_client() as first:
        await first.search("tenant protection act")
    async with make_client() as second:  # new process-equivalent: empty L1, same L2
        await second.search("tenant protection act")
        stats = await second.get_cache_stats()
        assert server.calls == 1
        assert stats.l2_hits == 1
        clock.advance(timedelta(minutes=59))
        await second.search("tenant protection act")
        clock.advance(timedelta(minutes=2))  # L1 entry (1 h) gone, L2 (24 h) still fresh
        await second.search("tenant protection act")
        stats = await second.get_cache_stats()
    assert server.calls == 1
    assert (stats.l1_hits, stats.l2_hits) == (1, 2)


async def test_l2_ttl_is_24_hours(
    server: FakeZaiSearchServer, make_client: MakeClient, clock: FakeClock
) -> None:
    async with make_client() as client:
        await client.search("fast food minimum wage")
        clock.advance(timedelta(hours=23, minutes=59))
    async with make_client() as client:
        await client.search("fast food minimum wage")
        assert server.calls == 1
        clock.advance(timedelta(minutes=2))
    async with make_client() as client:
        await client.search("fast food minimum wage")
    assert server.calls == 2


async def test_one_day_recency_is_never_served_older_than_three_hours(
    server: FakeZaiSearchServer, make_client: MakeClient, clock: FakeClock
) -> None:
    async with make_client() as client:
        await client.search("breaking news", recency="1d")
        clock.advance(timedelta(hours=2, minutes=59))
    async with make_client() as client:
        await client.search("breaking news", recency="1d")
        assert server.calls == 1
        clock.advance(timedelta(minutes=2))
        await client.search("breaking news", recency="1d")  # L1 capped by the L2 expiry too
    assert server.calls == 2


async def test_empty_results_are_cached_for_a_shorter_time(
    server: FakeZaiSearchServer, make_client: MakeClient, clock: FakeClock
) -> None:
    server.on_query("obscure", Reply.empty())
    async with make_client() as client:
        assert await client.search("obscure") == []
        await client.search("popular")
        clock.advance(timedelta(minutes=9))
        assert await client.search("obscure") == []
        assert server.calls == 2
        clock.advance(timedelta(minutes=2))  # past the 10-minute empty TTL, inside the 1 h TTL
        assert await client.search("obscure") == []
        await client.search("popular")
    assert server.calls_for("obscure") == 2
    assert server.calls_for("popular") == 1


async def test_filtered_to_nothing_keeps_the_normal_ttl(
    server: FakeZaiSearchServer, make_client: MakeClient, clock: FakeClock
) -> None:
    server.on_query("no gov here", Reply.ok([{"title": "t", "link": "https://example.com/1"}]))
    async with make_client() as client:
        assert await client.search("no gov here", domains=["*.gov"]) == []
        clock.advance(timedelta(minutes=50))  # past the empty TTL: upstream did find something
        assert await client.search("no gov here", domains=["*.gov"]) == []
    assert server.calls == 1


@pytest.mark.parametrize(
    "garbage",
    [
        "not json at all",
        json.dumps({"v": 99, "results": []}),
        json.dumps({"v": 1, "key": "x"}),
        b"\xff\xfe",
    ],
)
async def test_corrupt_local_entry_is_a_logged_miss(
    server: FakeZaiSearchServer,
    make_client: MakeClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    garbage: str | bytes,
) -> None:
    async with make_client() as client:
        await client.search("corrupt me")
    raw = diskcache.Cache(str(tmp_path / "cache"))
    [name] = [k for k in raw.iterkeys() if str(k).startswith("web-search:entry:")]
    raw.set(name, garbage)
    raw.close()
    caplog.set_level(logging.WARNING, logger="web_search")
    async with make_client() as client:
        results = await client.search("corrupt me")
    assert results
    assert server.calls == 2
    assert any("corrupt entry" in r.getMessage() for r in caplog.records)
    async with make_client() as client:  # the re-fetched entry replaced the garbage
        await client.search("corrupt me")
    assert server.calls == 2


async def test_100_concurrent_identical_searches_make_one_call(
    server: FakeZaiSearchServer, make_client: MakeClient, sink: RecordingSink
) -> None:
    server.latency = 0.05
    async with make_client(cost_sink=sink) as client:
        answers = await asyncio.gather(*(client.search("coalesce  Me") for _ in range(100)))
        stats = await client.get_cache_stats()
    assert server.calls == 1
    assert all(a == answers[0] for a in answers)
    assert answers[0]
    assert (stats.misses, stats.coalesced, stats.upstream_calls) == (1, 99, 1)
    assert stats.dollars_saved == Decimal("0.99")
    assert len(sink.settled) == 1


async def test_failure_reaches_every_coalesced_caller(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    from web_search import InsufficientBalanceError

    server.script(Reply.insufficient_balance())
    async with make_client() as client:
        outcomes = await asyncio.gather(
            *(client.search("broke") for _ in range(10)), return_exceptions=True
        )
        assert all(isinstance(o, InsufficientBalanceError) for o in outcomes)
        assert await client.search("broke")  # failures are not cached
    assert server.calls == 2


async def test_cancelled_caller_does_not_cancel_the_shared_search(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    server.script(Reply.hang_forever())  # held until release_hangs: no timing involved
    async with make_client() as client:
        leader = asyncio.create_task(client.search("shared"))
        await server.wait_for_calls(1)
        follower = asyncio.create_task(client.search("shared"))
        leader.cancel()  # the shared search runs on (shielded) for whoever else waits
        with pytest.raises(asyncio.CancelledError):
            await leader
        server.release_hangs()
        assert await follower
    assert server.calls == 1


async def test_cost_sink_gets_one_cent_per_call_and_nothing_for_hits(
    server: FakeZaiSearchServer, make_client: MakeClient, sink: RecordingSink
) -> None:
    server.script(Reply.rate_limited(retry_after=0))
    async with make_client(cost_sink=sink) as client:
        await client.search("priced", domains=["a.gov", "b.gov"])
        await client.search("priced", domains=["b.gov", "a.gov"])
        await client.search("priced", domains=["a.gov", "b.gov"], step="generate")
    assert server.calls == 3  # one 429 + two domains
    assert len(sink.reserved) == 3
    assert len(sink.released) == 1  # the rate-limited attempt was not billed
    assert len(sink.settled) == 2
    for record in sink.settled:
        assert record.cost == Decimal("0.01")
        assert record.step == "research"
        assert record.provider == "zai"
        assert record.model == "search-prime"
        assert record.success
        assert record.metadata["kind"] == "web_search"
        assert record.timestamp.tzinfo is not None


async def test_price_is_configurable_per_provider(
    server: FakeZaiSearchServer, make_client: MakeClient, sink: RecordingSink
) -> None:
    provider = ZaiSearchProvider(API_KEY, base_url=server.base_url, price_per_call=Decimal("0.025"))
    async with make_client(provider=provider, cost_sink=sink) as client:
        await client.search("price")
        await client.search("price")
        stats = await client.get_cache_stats()
    assert [r.cost for r in sink.settled] == [Decimal("0.025")]
    assert stats.dollars_saved == Decimal("0.025")


async def test_sink_refusal_propagates_and_makes_no_call(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    class Refuse(RecordingSink):
        async def reserve(self, estimate):  # type: ignore[no-untyped-def]
            raise RuntimeError("budget exceeded")

    async with make_client(cost_sink=Refuse()) as client:
        with pytest.raises(RuntimeError, match="budget exceeded"):
            await client.search("over budget")
    assert server.calls == 0


async def test_stats_survive_a_restart(
    server: FakeZaiSearchServer, tmp_path: Path, clock: FakeClock
) -> None:
    def client() -> WebSearchClient:
        provider = ZaiSearchProvider(API_KEY, base_url=server.base_url)
        return WebSearchClient(
            provider, SearchCache(LocalSearchCache(tmp_path / "c"), clock=clock), retry=FAST_RETRY
        )

    async with client() as first:
        for query in ("a", "b", "a", "a"):
            await first.search(query)
    async with client() as second:
        before = await second.get_cache_stats()
        await second.search("b")
        after = await second.get_cache_stats()
    assert (before.misses, before.l1_hits, before.upstream_calls) == (2, 2, 2)
    assert before.dollars_saved == Decimal("0.02")
    assert (after.l2_hits, after.hits, after.lookups) == (1, 3, 5)
    assert after.hit_rate == pytest.approx(0.6)


async def test_in_process_only_cache(server: FakeZaiSearchServer, make_client: MakeClient) -> None:
    async with make_client(None) as client:
        await client.search("memory only")
        await client.search("memory only")
        stats = await client.get_cache_stats()
    assert (stats.l1_hits, stats.misses) == (1, 1)


async def test_unreachable_persistent_tier_degrades_to_misses(
    server: FakeZaiSearchServer,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    class Broken(LocalSearchCache):
        async def get(self, key, now):  # type: ignore[no-untyped-def]
            raise ConnectionError("database down")

        async def set(self, key, payload, **kw):  # type: ignore[no-untyped-def]
            raise ConnectionError("database down")

    caplog.set_level(logging.DEBUG, logger="web_search")
    async with make_client(Broken(tmp_path / "broken")) as client:
        assert await client.search("resilient")
        assert await client.search("still resilient")
    levels = {
        (r.levelname, r.getMessage().split(" (")[0])
        for r in caplog.records
        if "persistent" in r.getMessage()
    }
    # One WARNING for the outage; the failures that follow in it are DEBUG lines.
    assert levels == {
        ("WARNING", "web-search cache: persistent read failed"),
        ("DEBUG", "web-search cache: persistent write failed"),
        ("DEBUG", "web-search cache: persistent read failed"),
    }
    assert (
        sum(r.levelno == logging.WARNING for r in caplog.records if "persistent" in r.getMessage())
        == 1
    )


async def test_cleanup_drops_expired_entries(
    server: FakeZaiSearchServer, make_client: MakeClient, clock: FakeClock
) -> None:
    async with make_client() as client:
        await client.search("old news", recency="1d")
        await client.search("evergreen")
        clock.advance(timedelta(hours=4))
        assert await client.cache.cleanup() == 1
        assert len(client.cache.memory) == 0  # both past the 1 h in-process TTL
        await client.search("evergreen")
    assert server.calls == 2


async def test_failing_stats_flushes_warn_once_per_outage(
    server: FakeZaiSearchServer,
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    from web_search import CacheStats
    from web_search._stats import FLUSH_EVERY

    class StatsDown(LocalSearchCache):
        attempts = 0

        async def add_stats(self, namespace: str, delta: CacheStats) -> None:
            StatsDown.attempts += 1
            raise ConnectionError("stats table unreachable")

    caplog.set_level(logging.DEBUG, logger="web_search")
    async with make_client(StatsDown(tmp_path / "s")) as client:
        await client.search("counted")
        for flushes in range(1, 4):
            for _ in range(FLUSH_EVERY):
                await client.search("counted")  # an L1 hit: counted, never yields
            deadline = asyncio.get_running_loop().time() + 10
            while StatsDown.attempts < flushes:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.01)
    lines = [
        (r.levelno, r.getMessage()) for r in caplog.records if "flush failed" in r.getMessage()
    ]
    assert sum(level == logging.WARNING and "will retry" in m for level, m in lines) == 1
    assert sum(level == logging.DEBUG for level, _ in lines) == 2
