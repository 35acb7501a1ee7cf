"""The client against a real loopback z.ai server: request mapping, fan-out, errors, retries."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest
from web_search import (
    AuthenticationError,
    BadRequestError,
    InsufficientBalanceError,
    InvalidQueryError,
    RateLimitError,
    SearchTimeoutError,
    ServerError,
)
from web_search.testing import FakeZaiSearchServer, Reply

from .conftest import MakeClient


async def test_request_fields_are_the_documented_ones(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    async with make_client() as client:
        await client.search(
            "  rent   control\tCalifornia  ",
            count=7,
            domains=["https://www.LAO.ca.gov/"],
            recency="1w",
        )
    [request] = server.requests
    body = request.json
    assert body == {
        "search_engine": "search-prime",
        "search_query": "rent control California",
        "count": 7,
        "search_domain_filter": "lao.ca.gov",
        "search_recency_filter": "oneWeek",
        "request_id": body["request_id"],
    }
    assert 6 <= len(body["request_id"]) <= 64
    assert request.path == "/api/paas/v4/web_search"
    assert request.headers["authorization"] == "Bearer ***"  # recorded redacted
    assert request.bearer_ok
    assert request.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("recency", "sent"),
    [
        ("1d", "oneDay"),
        ("1w", "oneWeek"),
        ("1m", "oneMonth"),
        ("1y", "oneYear"),
        (None, "noLimit"),
        ("oneDay", "oneDay"),
    ],
)
async def test_recency_mapping(
    server: FakeZaiSearchServer, make_client: MakeClient, recency: str | None, sent: str
) -> None:
    async with make_client(None) as client:
        await client.search("recency check", recency=recency)
    assert server.requests[-1].json["search_recency_filter"] == sent
    assert "search_domain_filter" not in server.requests[-1].json


async def test_site_operator_and_long_query(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    long = (
        "fiscal impact of statewide residential rent caps on low income households"
        " and landlords site:lao.ca.gov"
    )
    async with make_client(None) as client:
        results = await client.search(long)
    body = server.requests[0].json
    assert body["search_domain_filter"] == "lao.ca.gov"
    assert len(body["search_query"]) <= 70
    assert body["search_query"] == "fiscal impact of statewide residential rent caps on low income"
    assert all(r.site.endswith("lao.ca.gov") for r in results)


async def test_multi_domain_fan_out_merges_and_deduplicates(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    async with make_client(None) as client:
        results = await client.search(
            "housing costs", count=9, domains=["lao.ca.gov", "ppic.org", "*.edu", "lao.ca.gov"]
        )
    filters = sorted(str(r.json.get("search_domain_filter")) for r in server.requests)
    assert filters == [
        "None",
        "lao.ca.gov",
        "ppic.org",
    ]  # one call per domain + one for the wildcard
    urls = [r.url for r in results]
    assert len(urls) == len(set(urls)) == 9
    assert [r.rank for r in results] == list(range(1, 10))
    sites = {r.site for r in results}
    assert {"lao.ca.gov", "ppic.org"} <= sites
    assert all(s in ("lao.ca.gov", "ppic.org") or s.endswith(".edu") for s in sites)
    # Interleaved: the first two results come from different domains.
    assert results[0].site != results[1].site


async def test_wildcard_only_is_a_post_filter(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    async with make_client(None) as client:
        results = await client.search("budget act", count=50, domains=["*.gov"])
    [request] = server.requests
    assert "search_domain_filter" not in request.json
    assert results
    assert all(r.url.split("/")[2].endswith(".gov") for r in results)


async def test_duplicates_across_domains_are_merged(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    same = {
        "title": "t",
        "content": "c",
        "link": "https://lao.ca.gov/report/1",
        "media": "LAO",
        "publish_date": "",
    }
    server.script(
        Reply.ok([same]), Reply.ok([{**same, "link": "https://www.lao.ca.gov/report/1/"}])
    )
    async with make_client(None) as client:
        results = await client.search("dup", domains=["lao.ca.gov", "ca.gov"])
    assert len(results) == 1


async def test_429_is_retried_honouring_retry_after(
    server: FakeZaiSearchServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(Reply.rate_limited(retry_after=0), Reply.rate_limited(retry_after=0))
    caplog.set_level(logging.WARNING, logger="web_search")
    async with make_client(None) as client:
        results = await client.search("retry me")
    assert results
    assert server.calls == 3
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    assert all("retrying in 0.00 s" in m for m in retries)


async def test_429_gives_up_after_three_attempts(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    server.script(*[Reply.rate_limited(retry_after=0)] * 5)
    async with make_client(None) as client:
        with pytest.raises(RateLimitError) as info:
            await client.search("always limited")
    assert server.calls == 3
    assert info.value.status_code == 429
    assert info.value.code == "1302"
    assert info.value.retry_after == 0


async def test_1113_is_not_retried(server: FakeZaiSearchServer, make_client: MakeClient) -> None:
    server.script(Reply.insufficient_balance(), Reply.ok())
    async with make_client(None) as client:
        with pytest.raises(InsufficientBalanceError) as info:
            await client.search("no money")
    assert server.calls == 1
    assert info.value.code == "1113"
    assert info.value.status_code == 429


@pytest.mark.parametrize(
    ("reply", "error", "calls"),
    [
        (Reply.unauthorized(), AuthenticationError, 1),
        (Reply.bad_request(), BadRequestError, 1),
        (Reply.server_error(500), ServerError, 3),
        (Reply.raw(503, b"<html>down</html>"), ServerError, 3),
    ],
)
async def test_errors_are_typed(
    server: FakeZaiSearchServer,
    make_client: MakeClient,
    reply: Reply,
    error: type[Exception],
    calls: int,
) -> None:
    server.script(*[reply] * 3)
    async with make_client(None) as client:
        with pytest.raises(error):
            await client.search("typed error")
    assert server.calls == calls


async def test_hang_becomes_timeout(server: FakeZaiSearchServer, make_client: MakeClient) -> None:
    server.script(Reply.hang_forever())
    async with make_client(None, timeout=0.2) as client:
        with pytest.raises(SearchTimeoutError):
            await client.search("hang")
    server.release_hangs()
    assert server.calls == 1


async def test_wrong_key_is_an_authentication_error(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    from web_search import ZaiSearchProvider

    async with make_client(
        None, provider=ZaiSearchProvider("wrong", base_url=server.base_url)
    ) as client:
        with pytest.raises(AuthenticationError):
            await client.search("who am i")


async def test_non_iso_dates_are_parsed_and_raw_kept(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    base = {"title": "t", "content": "c", "media": "m"}
    server.script(
        Reply.ok(
            [
                {**base, "link": "https://a.gov/1", "publish_date": "2025年10月1日"},
                {**base, "link": "https://a.gov/2", "publish_date": "2025-10-01T08:30:00+08:00"},
                {**base, "link": "https://a.gov/3", "publish_date": "Oct 3, 2025"},
                {**base, "link": "https://a.gov/4", "publish_date": "last Tuesday"},
                {**base, "link": "https://a.gov/5", "publish_date": ""},
            ]
        )
    )
    async with make_client() as client:
        results = await client.search("dates")
        again = await client.search("dates")
    assert [r.published for r in results] == [
        date(2025, 10, 1),
        datetime(2025, 10, 1, 0, 30, tzinfo=UTC),
        date(2025, 10, 3),
        None,
        None,
    ]
    assert [r.published_raw for r in results] == [
        "2025年10月1日",
        "2025-10-01T08:30:00+08:00",
        "Oct 3, 2025",
        "last Tuesday",
        None,
    ]
    assert again == results


async def test_empty_results_are_valid(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    server.on_query("nothing here", Reply.empty())
    async with make_client() as client:
        assert await client.search("nothing here") == []
        assert await client.search("Nothing  Here") == []
    assert server.calls == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"query": "   "},
        {"query": "site:lao.ca.gov"},
        {"query": "x", "count": 0},
        {"query": "x", "count": 51},
        {"query": "x", "recency": "fortnight"},
        {"query": "x", "domains": "lao.ca.gov"},
        {"query": "x", "domains": ["not a domain"]},
    ],
)
async def test_bad_arguments_are_typed_errors(
    server: FakeZaiSearchServer, make_client: MakeClient, kwargs: dict[str, object]
) -> None:
    async with make_client(None) as client:
        with pytest.raises(InvalidQueryError):
            await client.search(**kwargs)  # type: ignore[arg-type]
    assert server.calls == 0


async def test_retry_after_beyond_the_cap_fails_at_once(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    server.script(Reply.rate_limited(retry_after=3600), Reply.ok())
    async with make_client(None) as client:
        with pytest.raises(RateLimitError) as info:
            await client.search("come back in an hour")
    assert info.value.retry_after == 3600
    assert server.calls == 1


async def test_fake_stats_endpoint_counts_distinct_calls(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    import json
    import urllib.request

    async with make_client(None) as client:
        await client.search("one")
        await client.search("two", domains=["a.gov", "b.gov"])
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/_fake/stats") as response:
        stats = json.loads(response.read())
    assert stats == {
        "calls": 3,
        "distinct_calls": 3,
        "max_in_flight": stats["max_in_flight"],
        "served": 3,
    }
    assert server.calls_for("TWO") == 2
