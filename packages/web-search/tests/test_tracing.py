"""Each upstream search attempt is a span; a paid one carries its price as cost attributes."""

from __future__ import annotations

from decimal import Decimal

from llm_common_testkit.tracing import SpanRecorder
from opentelemetry.trace import StatusCode
from web_search import RetryPolicy, SearchCache, WebSearchClient
from web_search.testing import FakeZaiSearchServer, Reply

SENTINEL = "zai-SENTINEL-key-31337"


async def test_attempt_spans_carry_the_billed_price_and_no_key(
    span_recorder: SpanRecorder,
) -> None:
    # web-search takes anything with tracer(scope), like llm_client.Telemetry: here the recorder.
    with FakeZaiSearchServer() as server:
        server.script(Reply.server_error(500))
        async with WebSearchClient(
            "zai", cache=SearchCache(None), api_key=SENTINEL, base_url=server.base_url,
            retry=RetryPolicy(initial_wait=0, max_wait=0, jitter=0), telemetry=span_recorder,
        ) as client:  # fmt: skip
            results = await client.search("California rent cap", step="research")
            cached = await client.search("California rent cap", step="research")
    assert results == cached
    failed, paid = span_recorder.spans()  # the cache hit made no call and no span
    assert failed.name == paid.name == "web_search zai"
    assert failed.status.status_code == StatusCode.ERROR
    assert "gen_ai.usage.cost.amount" not in dict(failed.attributes or {})
    attributes = dict(paid.attributes or {})
    assert Decimal(str(attributes["gen_ai.usage.cost.amount"])) == Decimal("0.01")
    assert attributes["gen_ai.usage.cost.source"] == "local"
    assert attributes["web_search.attempt"] == 2
    assert attributes["web_search.results"] == len(results)
    assert SENTINEL not in str([dict(s.attributes or {}) for s in span_recorder.spans()])
