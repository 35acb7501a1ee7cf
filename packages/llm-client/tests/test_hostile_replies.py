"""Replies of unexpected shape, bogus usage and bogus provider costs (issue 17, item 5).

Every route (the openai SDK's and LiteLLM's) goes through one shape check: an unusable reply
is a typed, retryable ``ResponseFormatError``, never ``""`` passed off as a success and never
``IndexError``/``KeyError``/``JSONDecodeError``; every attempt that got a reply is settled
(ledgered) exactly once, never released.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from llm_client import (
    InMemoryBudget,
    LLMClient,
    LLMConfig,
    ProviderError,
    ResponseFormatError,
    count_tokens,
    estimate_cost,
)
from llm_client.testing import FakeLLMServer, Reply
from pydantic import BaseModel

from ._helpers import RecordingSink, fast_policy, needs_litellm

MODEL = "openai/gpt-4o-mini"  # priced by LiteLLM's bundled map; served by the loopback server
ROUTES = [MODEL, needs_litellm("litellm/openai/gpt-4o-mini")]
INPUT, OUTPUT = Decimal("1.5E-7"), Decimal("6E-7")  # gpt-4o-mini, dollars per token
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def _choice(message: Any) -> dict[str, Any]:
    return {"index": 0, "message": message, "finish_reason": "stop"}


def _completion(content: Any = "fine", usage: Any = USAGE, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-hostile",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [_choice({"role": "assistant", "content": content})],
        **extra,
    }
    if usage is not None:
        body["usage"] = usage
    return body


UNUSABLE: dict[str, Any] = {
    "no choices": {"id": "x", "object": "chat.completion", "model": "m", "usage": USAGE},
    "empty choices": {"id": "x", "choices": [], "usage": USAGE},
    "choice without message": {"id": "x", "choices": [{"index": 0}], "usage": USAGE},
    "null content, no tool calls": _completion(content=None),
    "not JSON": "<html><body>502 from a proxy, served as 200</body></html>",
    "JSON list": [1, 2, 3],
    "JSON string": '"just a string"',
    # Found by test_hostile_properties: NULs make json.loads read the bytes as UTF-16.
    "NUL bytes read as UTF-16": "\x0000\x80",
}


def client(**kwargs: Any) -> LLMClient:
    return LLMClient(config=LLMConfig(), retry=fast_policy(), **kwargs)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("shape", list(UNUSABLE))
async def test_unusable_reply_is_a_typed_retried_error_and_every_attempt_is_ledgered(
    fake_llm_server: FakeLLMServer, route: str, shape: str
) -> None:
    fake_llm_server.script(*[Reply.raw(UNUSABLE[shape])] * 3)
    sink = RecordingSink()
    async with client(cost_sink=sink) as llm:
        with pytest.raises(ResponseFormatError) as caught:
            await llm.chat("hi", route, api_base=fake_llm_server.base_url)
    error = caught.value
    assert isinstance(error, ProviderError)
    assert error.retryable
    assert error.reason
    assert fake_llm_server.request_count == 3  # retried like any transient failure
    # A reply arrived each time, so each attempt was billed: settled once, never released.
    assert sink.kinds() == ["reserve", "settle"] * 3
    for record in sink.settled():
        assert record.success is False
        assert record.error == "ResponseFormatError"
        assert record.cost is not None
        assert record.cost > 0
        assert record.prompt_tokens > 0
    assert [a.error for a in error.attempt_records] == ["ResponseFormatError"] * 3


@pytest.mark.parametrize("route", ROUTES)
async def test_an_unusable_reply_is_retried_into_a_good_one(
    fake_llm_server: FakeLLMServer, route: str
) -> None:
    fake_llm_server.script(Reply.raw(UNUSABLE["empty choices"]), Reply.text("recovered"))
    sink = RecordingSink()
    async with client(cost_sink=sink) as llm:
        done = await llm.complete("hi", route, api_base=fake_llm_server.base_url)
    assert done.output == "recovered"
    first, second = sink.settled()
    assert (first.success, first.error, second.success) == (False, "ResponseFormatError", True)
    # The malformed reply still carried usage: billed as reported.
    assert first.metadata["usage_source"] == "reported"
    assert first.cost == 10 * INPUT + 5 * OUTPUT
    assert done.cost == first.cost + second.cost


class Verdict(BaseModel):
    passed: bool


async def test_structured_call_retries_an_unusable_reply(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(Reply.raw(UNUSABLE["null content, no tool calls"]), Reply.auto())
    sink = RecordingSink()
    async with client(cost_sink=sink) as llm:
        verdict = await llm.chat("ok?", MODEL, Verdict, api_base=fake_llm_server.base_url)
    assert isinstance(verdict, Verdict)
    assert [r.success for r in sink.settled()] == [False, True]


async def test_a_tool_call_only_reply_is_not_an_error(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(Reply.tool_call("lookup", {"q": "x"}))
    async with client() as llm:
        assert await llm.chat("hi", MODEL, api_base=fake_llm_server.base_url) == ""


async def test_a_stream_chunk_of_the_wrong_shape_is_a_typed_error_and_billed(
    fake_llm_server: FakeLLMServer,
) -> None:
    chunk = '{"id": "c1", "object": "chat.completion.chunk", "choices": "nope"}'
    fake_llm_server.script(
        Reply.raw(f"data: {chunk}\n\ndata: [DONE]\n\n", content_type="text/event-stream")
    )
    sink = RecordingSink()

    async def read(llm: LLMClient) -> None:
        async with llm.stream("hi", MODEL, api_base=fake_llm_server.base_url) as s:
            async for _ in s:
                pass

    async with client(cost_sink=sink) as llm:
        with pytest.raises(ResponseFormatError):
            await read(llm)
    [record] = sink.settled()
    assert record.success is False
    assert record.metadata["usage_source"] == "estimated"


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": "lots", "completion_tokens": 5},
        {"prompt_tokens": -10, "completion_tokens": 5},
        {"prompt_tokens": 10, "completion_tokens": 5.5},
        {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "ten tokens",
    ],
)
async def test_usage_of_the_wrong_type_is_counted_locally_and_flagged(
    fake_llm_server: FakeLLMServer, usage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake_llm_server.script(Reply.raw(_completion("fine", usage=usage)))
    sink = RecordingSink()
    async with client(cost_sink=sink) as llm:
        done = await llm.complete("hi", MODEL, api_base=fake_llm_server.base_url)
    assert done.output == "fine"  # the answer is good; failing it would pay for it twice
    prompt = count_tokens([{"role": "user", "content": "hi"}], MODEL)
    completion = count_tokens("fine", MODEL)
    [record] = sink.settled()
    assert (record.prompt_tokens, record.completion_tokens) == (prompt, completion)
    assert record.cost == estimate_cost(prompt, completion, MODEL) == done.cost
    assert record.metadata["usage_source"] == "estimated"
    assert record.metadata["usage_problem"]
    assert any("usage not usable" in r.getMessage() for r in caplog.records)


async def test_a_reply_without_usage_is_never_a_silent_zero(
    fake_llm_server: FakeLLMServer,
) -> None:
    fake_llm_server.script(Reply.raw(_completion("a longer answer than one word", usage=None)))
    budget = InMemoryBudget(Decimal("1"))
    async with client(cost_sink=budget) as llm:
        done = await llm.complete("hi", MODEL, api_base=fake_llm_server.base_url)
    [record] = budget.records
    assert record.cost is not None
    assert record.cost > 0
    assert budget.spent == record.cost == done.cost
    assert record.metadata["usage_source"] == "estimated"
    assert record.metadata["usage_problem"] == "missing"


# ---- provider-reported cost: a plausibility bound -------------------------------------------


@pytest.mark.parametrize("bogus", [1000, -5, "NaN", "a lot", 10**30])
async def test_an_implausible_reported_cost_is_replaced_by_the_local_price(
    fake_llm_server: FakeLLMServer, bogus: Any, caplog: pytest.LogCaptureFixture
) -> None:
    usage = {**USAGE, "cost": bogus}
    fake_llm_server.script(Reply.raw(_completion("fine", usage=usage)), Reply.text("again"))
    budget = InMemoryBudget(Decimal("0.05"))
    caplog.set_level(logging.WARNING, logger="llm_client")
    async with client(cost_sink=budget) as llm:
        done = await llm.complete("hi", MODEL, api_base=fake_llm_server.base_url)
        # The bogus figure never reached the budget: the next call is admitted.
        await llm.chat("hi", MODEL, api_base=fake_llm_server.base_url)
    local = 10 * INPUT + 5 * OUTPUT
    first = budget.records[0]
    assert done.cost == first.cost == local
    assert first.metadata["cost_source"] == "local"
    assert first.metadata["reported_cost_rejected"] == str(bogus)
    assert first.metadata["price_source"] == "genai-prices"
    assert budget.spent < Decimal("0.001")
    assert any("rejected as implausible" in r.getMessage() for r in caplog.records)


async def test_a_plausible_reported_cost_is_kept(fake_llm_server: FakeLLMServer) -> None:
    # Ten times the local price plus one cent is the bound; just under it is believed.
    fake_llm_server.script(
        Reply.text("fine").with_usage(prompt_tokens=10, completion_tokens=5, cost="0.0100")
    )
    sink = RecordingSink()
    async with client(cost_sink=sink) as llm:
        done = await llm.complete("hi", MODEL, api_base=fake_llm_server.base_url)
    [record] = sink.settled()
    assert done.cost == record.cost == Decimal("0.0100")
    assert record.metadata["price_source"] == "provider"
    assert "reported_cost_rejected" not in record.metadata


@pytest.mark.parametrize(("reported", "kept"), [("2.50", True), ("100.01", False)])
async def test_an_unpriced_model_keeps_reported_costs_up_to_100_dollars(
    fake_llm_server: FakeLLMServer, reported: str, kept: bool
) -> None:
    model = "openai/no-such-model-anywhere-7"
    fake_llm_server.script(
        Reply.text("fine").with_usage(prompt_tokens=10, completion_tokens=5, cost=reported)
    )
    sink = RecordingSink()
    async with client(cost_sink=sink) as llm:
        done = await llm.complete("hi", model, api_base=fake_llm_server.base_url)
    [record] = sink.settled()
    if kept:
        assert done.cost == record.cost == Decimal(reported)
    else:
        assert done.cost is None
        assert record.cost is None
        assert record.metadata["reported_cost_rejected"] == reported
