"""Hostile or broken input at both boundaries: typed errors or correct results, paid once.

Issue 17, class 5: links that are not http(s) URLs were returned as sources, text that is not
valid Unicode raised ``UnicodeEncodeError``, and answers of unexpected shape came back as an
empty success.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web_search import (
    BudgetExceededError,
    InvalidQueryError,
    ResponseFormatError,
    SearchCache,
    TavilySearchProvider,
    WebSearchClient,
    WebSearchError,
    ZaiSearchProvider,
)
from web_search._results import link_problem
from web_search.testing import FakeZaiSearchServer, Reply

from .conftest import API_KEY, FAST_RETRY, MakeClient, RecordingSink

GOOD = ["https://lao.ca.gov/a", "http://example.com/b?x=1#f", "HTTPS://Data.Census.gov/c"]
BAD = [
    "javascript:alert(document.cookie)",
    "data:text/html;base64,PHNjcmlwdD4=",
    "file:///etc/passwd",
    "/relative/path",
    "//lao.ca.gov/no-scheme",
    "",
    "https://" + "a" * 2100 + ".com/",
    "https://user:hunter2-SECRET@lao.ca.gov/x",
    "https://token-SECRET@lao.ca.gov/y",
    "ftp://lao.ca.gov/z",
    "https:///no-host",
    "https://lao.ca.gov:99999/bad-port",
    "https://lao.ca.gov/new\nline",
    None,
    42,
]


def _items(links: list[Any]) -> list[dict[str, Any]]:
    return [{"title": f"t{i}", "content": "c", "link": link} for i, link in enumerate(links)]


async def test_unusable_links_are_dropped_and_counted(
    server: FakeZaiSearchServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(Reply.ok(_items([*BAD[:7], GOOD[0], *BAD[7:], GOOD[1], GOOD[2]])))
    async with make_client(None) as client:
        results = await client.search("hostile links")
    assert [r.url for r in results] == GOOD
    assert [r.rank for r in results] == [1, 2, 3]
    [warning] = [r for r in caplog.records if "unusable links" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert f"dropped {len(BAD)} of {len(BAD) + 3}" in warning.getMessage()
    assert "SECRET" not in caplog.text


async def test_unusable_icons_are_dropped_with_the_result_kept(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    icons = ["javascript:alert(1)", "data:image/svg+xml,<svg/onload=alert(1)>", GOOD[0]]
    server.script(
        Reply.ok(
            [{"title": "t", "link": f"{GOOD[0]}/{i}", "icon": icon} for i, icon in enumerate(icons)]
        )
    )
    async with make_client(None) as client:
        results = await client.search("hostile icons")
    assert [r.icon for r in results] == [None, None, GOOD[0]]


async def test_links_cached_before_the_check_are_not_served(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from web_search import LocalSearchCache, SearchResult
    from web_search._cache import CacheEntry

    now = datetime(2026, 1, 1, tzinfo=UTC)
    urls = ["javascript:alert(1)", GOOD[0], "https://u:p@x.org/", GOOD[1]]
    old = tuple(SearchResult(title=u, url=u, rank=n) for n, u in enumerate(urls, 1))
    entry = CacheEntry(old, Decimal("0.01"), 1, now, now + timedelta(hours=1))
    store = LocalSearchCache(tmp_path)
    await store.set("k" * 64, entry.to_payload("k" * 64), expires_at=entry.expires_at, now=now,
                    provider="zai", query="q")  # fmt: skip
    got = await SearchCache(store).persistent_get("k" * 64, now)
    await store.aclose()
    assert got is not None
    assert [(r.url, r.rank) for r in got.results] == [(GOOD[0], 1), (GOOD[1], 2)]


async def test_tavily_links_pass_the_same_check(
    server: FakeZaiSearchServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(Reply.ok(_items(["javascript:void(0)", GOOD[0], "https://u:p@x.org/"])))
    provider = TavilySearchProvider(API_KEY, base_url=server.tavily_base_url)
    async with WebSearchClient(provider, SearchCache(None), retry=FAST_RETRY) as client:
        results = await client.search("tavily links")
    assert [r.url for r in results] == [GOOD[0]]
    assert "dropped 2 of 3" in caplog.text


@pytest.mark.parametrize("link", GOOD)
def test_good_links_pass(link: str) -> None:
    assert link_problem(link) is None


@pytest.mark.parametrize("link", BAD)
def test_bad_links_are_refused(link: object) -> None:
    assert link_problem(link) is not None


@settings(deadline=None, max_examples=300)
@given(st.text(max_size=80))
def test_any_accepted_link_is_absolute_http_without_credentials(text: str) -> None:
    from urllib.parse import urlsplit

    if link_problem(text) is None:
        parts = urlsplit(text)
        assert parts.scheme.lower() in ("http", "https")
        assert parts.hostname
        assert "@" not in parts.netloc


@pytest.mark.parametrize(
    "kwargs",
    [
        {"query": "rent \ud800 cap"},
        {"query": "\udfff"},
        {"query": "rent cap", "domains": ["lao.ca.gov\udc80"]},
        {"query": "rent cap site:lao\ud800.gov"},
        {"query": "rent cap", "domains": [42]},
        {"query": "rent cap", "recency": 7},
    ],
)
async def test_invalid_text_is_refused_before_paying(
    server: FakeZaiSearchServer,
    make_client: MakeClient,
    sink: RecordingSink,
    kwargs: dict[str, Any],
) -> None:
    async with make_client(cost_sink=sink) as client:
        with pytest.raises(InvalidQueryError):
            await client.search(**kwargs)
        with pytest.raises(InvalidQueryError):
            await client.search_detailed(**kwargs)
    assert server.calls == 0
    assert sink.reserved == []


def test_control_characters_fold_into_spaces() -> None:
    from web_search import clean_query

    assert clean_query("rent\x00cap\x1f  law\x7f").full == "rent cap law"


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b"{}",
        b'{"search_result": null}',
        b'{"search_result": "nope"}',
        b'{"search_result": {"link": "https://a.gov"}}',
        b'{"search_result": [1, 2]}',
        b'{"search_result": [null]}',
        b'{"search_result": [{"link": "https://a.gov/1", "title": {"x": 1}}]}',
        b'{"search_result": [{"link": "https://a.gov/1", "content": ["a"]}]}',
        b'{"search_result": [{"link": "https://a.gov/1", "media": true}]}',
        b'{"search_result": [{"link": "https://a.gov/1", "publish_date": {}}]}',
    ],
)
async def test_unexpected_shapes_are_format_errors_billed_once(
    server: FakeZaiSearchServer, make_client: MakeClient, sink: RecordingSink, body: bytes
) -> None:
    server.script(Reply.raw(200, body))
    async with make_client(cost_sink=sink) as client:
        with pytest.raises(ResponseFormatError) as info:
            await client.search("odd shape")
    assert info.value.status_code == 200
    assert server.calls == 1  # not retried: the provider answered, and billed
    [record] = sink.settled
    assert (record.success, record.error, record.cost) == (
        False,
        "ResponseFormatError",
        Decimal("0.01"),
    )
    assert sink.released == []


async def test_tavily_shapes_are_format_errors(server: FakeZaiSearchServer) -> None:
    server.script(Reply.raw(200, b'{"results": [1]}'), Reply.raw(200, b'{"query": "x"}'))
    provider = TavilySearchProvider(API_KEY, base_url=server.tavily_base_url)
    async with WebSearchClient(provider, SearchCache(None), retry=FAST_RETRY) as client:
        with pytest.raises(ResponseFormatError, match=r"results\[0\] is int"):
            await client.search("tavily shape one")
        with pytest.raises(ResponseFormatError, match="results is missing"):
            await client.search("tavily shape two")


async def test_a_provider_tripping_over_a_body_raises_a_typed_error(
    server: FakeZaiSearchServer, make_client: MakeClient, sink: RecordingSink
) -> None:
    class Fragile(ZaiSearchProvider):
        def parse_response(
            self, call: Any, status: int, headers: dict[str, str], body: bytes
        ) -> list[Any]:
            return [json.loads(body)["search_result"][99]]  # IndexError

    provider = Fragile(API_KEY, base_url=server.base_url)
    async with make_client(None, provider=provider, cost_sink=sink) as client:
        with pytest.raises(ResponseFormatError) as info:
            await client.search("fragile")
    assert isinstance(info.value.__cause__, IndexError)
    assert len(sink.settled) == 1


async def test_unstorable_text_in_answers_is_cleaned_and_cached(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    body = (
        b'{"search_result": [{"link": "https://a.gov/1", "title": "bad \\ud800 title\\u0000",'
        b' "content": "lone \\udfff", "publish_date": 20250101}]}'
    )
    server.script(Reply.raw(200, body))
    async with make_client() as first:
        [result] = await first.search("unstorable text")
    assert result.title == "bad \ufffd title"
    assert result.snippet == "lone \ufffd"
    assert result.published_raw == "20250101"
    async with make_client() as second:  # a new process: only the persistent tier is shared
        outcome = await second.search_detailed("unstorable text")
    assert outcome.source == "l2"
    assert outcome.results == [result]
    assert server.calls == 1


@settings(
    deadline=None, max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    )
)
async def test_any_json_answer_is_a_result_or_a_typed_error(
    server: FakeZaiSearchServer, data: Any
) -> None:
    body = json.dumps({"search_result": data}).encode()
    server.script(Reply.raw(200, body))
    provider = ZaiSearchProvider(API_KEY, base_url=server.base_url)
    async with WebSearchClient(provider, SearchCache(None), retry=FAST_RETRY) as client:
        try:
            results = await client.search("any json")
        except WebSearchError:
            return
    assert all(link_problem(r.url) is None for r in results)


class Refusal(Exception):
    """A sink's budget refusal, recognised by its marker (as cost-tracker's is)."""

    is_budget_refusal = True


class RefusingSink(RecordingSink):
    def __init__(self, wrap: bool) -> None:
        super().__init__()
        self.wrap = wrap

    async def reserve(self, estimate: Any) -> Any:
        if not self.wrap:
            raise Refusal("daily budget of $1.00 would be exceeded")
        try:
            raise Refusal("monthly budget of $5.00 would be exceeded")
        except Refusal as exc:
            raise RuntimeError("store said no") from exc


@pytest.mark.parametrize("wrap", [False, True])
async def test_a_budget_refusal_is_a_web_search_error(
    server: FakeZaiSearchServer, make_client: MakeClient, wrap: bool
) -> None:
    sink = RefusingSink(wrap)
    async with make_client(cost_sink=sink) as client:
        with pytest.raises(BudgetExceededError) as info:
            await client.search("over budget")
    assert isinstance(info.value, WebSearchError)
    assert BudgetExceededError.is_budget_refusal is True
    cause = info.value.__cause__
    assert cause is not None
    if wrap:
        assert str(info.value) == "store said no"
        assert isinstance(cause.__cause__, Refusal)
    else:
        assert isinstance(cause, Refusal)
        assert str(info.value) == "daily budget of $1.00 would be exceeded"
    assert server.calls == 0


async def test_other_sink_failures_are_not_budget_refusals(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    class Broken(RecordingSink):
        async def reserve(self, estimate: Any) -> Any:
            raise ConnectionError("ledger down")

    async with make_client(cost_sink=Broken()) as client:
        with pytest.raises(ConnectionError):
            await client.search("ledger down")
    assert server.calls == 0


@settings(
    deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.text(st.characters(exclude_categories=()), max_size=120),  # lone surrogates included
    st.lists(st.text(st.characters(exclude_categories=()), max_size=30), max_size=3),
)
async def test_any_query_text_is_a_search_or_a_typed_error_before_paying(
    server: FakeZaiSearchServer, query: str, domains: list[str]
) -> None:
    server.reset()
    sink = RecordingSink()
    provider = ZaiSearchProvider(API_KEY, base_url=server.base_url)
    async with WebSearchClient(provider, SearchCache(None), sink, retry=FAST_RETRY) as client:
        try:
            results = await client.search(query, domains=domains)
        except InvalidQueryError:
            assert server.calls == 0
            assert sink.reserved == []
            return
    assert len(sink.settled) == server.calls >= 1
    assert all(link_problem(r.url) is None for r in results)
