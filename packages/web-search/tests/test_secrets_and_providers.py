"""API keys never leak; provider selection; the Tavily provider over real HTTP."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from web_search import (
    AuthenticationError,
    ConfigurationError,
    InsufficientBalanceError,
    RateLimitError,
    SearchCache,
    SearchTimeoutError,
    ServerError,
    TavilySearchProvider,
    WebSearchClient,
    WebSearchError,
    ZaiSearchProvider,
    make_provider,
)
from web_search.testing import FakeZaiSearchServer, Reply

from .conftest import API_KEY, FAST_RETRY, MakeClient, RecordingSink


async def test_key_never_in_reprs_errors_logs_or_records(
    server: FakeZaiSearchServer,
    make_client: MakeClient,
    sink: RecordingSink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    server.script(
        Reply.unauthorized(),
        Reply.bad_request(),
        Reply.insufficient_balance(),
        *[Reply.server_error()] * 3,
        *[Reply.rate_limited(0)] * 3,
        Reply.hang_forever(),
    )
    async with make_client(cost_sink=sink, timeout=0.3) as client:
        seen += [repr(client), str(client), repr(client.provider), repr(client.cache.persistent)]
        for query in ("a", "b", "c", "d", "e", "f"):
            with pytest.raises(WebSearchError) as info:
                await client.search(query)
            exc = info.value
            seen += [
                str(exc),
                repr(exc),
                repr(exc.__cause__),
                repr(exc.__context__),
                repr(vars(exc)),
            ]
        server.release_hangs()
        await client.search("ok")
    seen += [repr(r) for r in sink.settled + sink.released] + [repr(sink.reserved)]
    seen += [r.getMessage() for r in caplog.records] + [caplog.text]
    seen += [repr(r) for r in server.requests]
    assert all(API_KEY not in text for text in seen)
    assert sum(1 for r in server.requests if r.headers["authorization"] == "Bearer ***") == len(
        server.requests
    )


def test_missing_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZAI_API_KEY", raising=False)
    monkeypatch.delenv("TAVILY_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="ZAI_API_KEY"):
        ZaiSearchProvider()
    with pytest.raises(ConfigurationError, match="TAVILY_API_KEY"):
        TavilySearchProvider()


def test_provider_from_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAI_API_KEY", "z-key")
    monkeypatch.setenv("TAVILY_API_KEY", "t-key")
    monkeypatch.setenv("WEB_SEARCH_BASE_URL", "http://127.0.0.1:9/api/paas/v4")
    monkeypatch.delenv("WEB_SEARCH_PROVIDER", raising=False)
    assert isinstance(make_provider(None), ZaiSearchProvider)
    assert make_provider(None).url == "http://127.0.0.1:9/api/paas/v4/web_search"  # type: ignore[attr-defined]
    monkeypatch.setenv("WEB_SEARCH_PROVIDER", "tavily")
    assert isinstance(make_provider(None), TavilySearchProvider)
    assert isinstance(make_provider("zai"), ZaiSearchProvider)
    with pytest.raises(ConfigurationError, match="unknown web search provider"):
        make_provider("bing")
    assert "z-key" not in repr(make_provider("zai"))
    assert "t-key" not in repr(make_provider("tavily"))


async def test_tavily_mapping_and_single_call_for_many_domains(
    server: FakeZaiSearchServer, sink: RecordingSink
) -> None:
    provider = TavilySearchProvider(
        API_KEY, base_url=server.tavily_base_url, price_per_call=Decimal("0.008")
    )
    async with WebSearchClient(provider, SearchCache(None), sink, retry=FAST_RETRY) as client:
        results = await client.search(
            "ira contribution limits", count=6, domains=["irs.gov", "investor.gov"], recency="1y"
        )
        again = await client.search(
            "IRA contribution limits", count=6, domains=["investor.gov", "irs.gov"], recency="1y"
        )
    [request] = server.requests
    assert request.path == "/search"
    assert request.json == {
        "query": "ira contribution limits",
        "max_results": 6,
        "search_depth": "basic",
        "topic": "general",
        "include_answer": False,
        "include_raw_content": False,
        "include_images": False,
        "include_domains": ["investor.gov", "irs.gov"],
        "time_range": "year",
    }
    assert again == results
    assert len(results) == 6
    assert {r.site for r in results} == {"irs.gov", "investor.gov"}
    assert all(r.provider == "tavily" and r.score is not None for r in results)
    assert [r.cost for r in sink.settled] == [Decimal("0.008")]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply.insufficient_balance(), InsufficientBalanceError),
        (Reply.unauthorized(), AuthenticationError),
        (Reply.rate_limited(0), RateLimitError),
        (Reply.server_error(), ServerError),
    ],
)
async def test_tavily_errors(
    server: FakeZaiSearchServer, reply: Reply, error: type[Exception]
) -> None:
    server.script(*[reply] * 3)
    provider = TavilySearchProvider(API_KEY, base_url=server.tavily_base_url)
    async with WebSearchClient(provider, SearchCache(None), retry=FAST_RETRY) as client:
        with pytest.raises(error):
            await client.search("tavily error")


async def test_connection_refused_is_a_server_error(make_client: MakeClient) -> None:
    provider = ZaiSearchProvider(API_KEY, base_url="http://127.0.0.1:9/api/paas/v4")
    async with make_client(None, provider=provider) as client:
        with pytest.raises((ServerError, SearchTimeoutError)):
            await client.search("nobody home")
