"""Tool calls end to end through the loopback server, OpenAI and Anthropic wire formats:
schemas from functions and models, typed (parallel) calls, and the bounded tool loop."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest
from llm_client import (
    AuthenticationError,
    InvalidRequestError,
    LLMClient,
    LLMConfig,
    Tool,
    ToolLoopLimitError,
    ToolReply,
    total_cost,
)
from llm_client.testing import FakeLLMServer, Reply
from pydantic import BaseModel, Field

from ._helpers import RecordingSink, SleepRecorder, fast_policy

OPENAI = "openai/gpt-4o-mini"
ANTHROPIC = "anthropic/claude-haiku-4-5"


def client(sink: object = None) -> LLMClient:
    return LLMClient(
        sink,  # type: ignore[arg-type]
        config=LLMConfig(),
        retry=fast_policy(SleepRecorder()),
        api_keys={"anthropic": "sk-ant-test-key-0123456789", "openai": "sk-test-openai-0000"},
    )


def base(server: FakeLLMServer, model: str) -> str:
    return server.anthropic_base_url if model.startswith("anthropic/") else server.base_url


class Portfolio(BaseModel):
    """Look up the user's holdings of one asset class."""

    asset_class: str = Field(description="stocks, bonds or cash")
    as_of: str | None = None


async def price(ticker: str, currency: str = "USD") -> dict[str, Any]:
    """Latest price of a stock.

    Args:
        ticker: Exchange ticker, e.g. AAPL.
        currency: ISO currency of the answer.
    """
    return {"ticker": ticker, "price": "189.50", "currency": currency}


def test_a_function_becomes_a_schema_with_its_docstring() -> None:
    spec = Tool.from_function(price).definition()
    function = spec["function"]
    assert function["name"] == "price"
    assert function["description"] == "Latest price of a stock."
    params = function["parameters"]
    assert params["required"] == ["ticker"]
    assert params["properties"]["ticker"]["description"] == "Exchange ticker, e.g. AAPL."
    assert params["properties"]["currency"]["default"] == "USD"
    assert params["additionalProperties"] is False
    model_spec = Tool.from_model(Portfolio).definition()["function"]
    assert model_spec["name"] == "Portfolio"
    assert model_spec["description"] == "Look up the user's holdings of one asset class."
    assert model_spec["parameters"]["required"] == ["asset_class"]


def test_things_that_cannot_be_tools_are_refused_clearly() -> None:
    with pytest.raises(InvalidRequestError, match="name"):
        Tool.from_function(lambda x: x)

    def untyped(x):  # type: ignore[no-untyped-def]
        return x

    def star(*items: int) -> int:
        return 0

    with pytest.raises(InvalidRequestError, match="annotation"):
        Tool.from_function(untyped)
    with pytest.raises(InvalidRequestError, match="args"):
        Tool.from_function(star)


@pytest.mark.parametrize("model", [OPENAI, ANTHROPIC])
async def test_parallel_calls_come_back_typed(fake_llm_server: FakeLLMServer, model: str) -> None:
    fake_llm_server.script(
        Reply.tool_calls(
            ("Portfolio", {"asset_class": "stocks"}),
            ("price", {"ticker": "AAPL"}),
            ("price", {"ticker": 7}),  # invalid: the call comes back with an error, not a crash
        )
    )
    async with client() as llm:
        reply = await llm.chat(
            "What is my AAPL position worth?",
            model,
            api_base=base(fake_llm_server, model),
            tools=[Portfolio, price],
            tool_choice="auto",
        )
    assert isinstance(reply, ToolReply)
    first, second, bad = reply.tool_calls
    assert isinstance(first.args, Portfolio)
    assert first.args == Portfolio(asset_class="stocks")
    assert second.name == "price"
    assert second.args is not None
    assert second.args.model_dump() == {"ticker": "AAPL", "currency": "USD"}
    assert bad.args is None
    assert bad.error is not None
    assert "ticker" in bad.error
    assert len({first.id, second.id, bad.id}) == 3
    body = fake_llm_server.last_request.body
    names = [t.get("name") or t.get("function", {}).get("name") for t in body["tools"]]
    assert names == ["Portfolio", "price"]


async def test_tool_choice_names_one_tool(fake_llm_server: FakeLLMServer) -> None:
    async with client() as llm:
        reply = await llm.chat(
            "hi", OPENAI, api_base=fake_llm_server.base_url, tools=[Portfolio, price],
            tool_choice=price,
        )  # fmt: skip
    assert fake_llm_server.last_request.body["tool_choice"] == {
        "type": "function",
        "function": {"name": "price"},
    }
    [call] = reply.tool_calls  # Reply.auto answered the chosen tool with valid arguments
    assert call.name == "price"
    assert call.args is not None
    with pytest.raises(InvalidRequestError, match="none of the tools"):
        await llm.chat("hi", OPENAI, tools=[price], tool_choice="nope")


@pytest.mark.parametrize("model", [OPENAI, ANTHROPIC])
async def test_two_rounds_with_parallel_calls_run_concurrently_and_are_ledgered(
    fake_llm_server: FakeLLMServer, model: str
) -> None:
    both_started = asyncio.Event()
    started: list[str] = []

    async def quote(ticker: str) -> str:
        """Quote a ticker."""
        started.append(ticker)
        if len(started) == 2:
            both_started.set()
        # Each call waits for the other: only a concurrent run gets past this.
        await asyncio.wait_for(both_started.wait(), timeout=5)
        return f"{ticker}=100"

    fake_llm_server.script(
        Reply.tool_calls(("quote", {"ticker": "AAPL"}), ("quote", {"ticker": "MSFT"})),
        Reply.text("AAPL and MSFT both trade at 100."),
    )
    sink = RecordingSink()
    async with client(sink) as llm:
        run = await llm.run_tools(
            "Quote AAPL and MSFT", model, tools=[quote], api_base=base(fake_llm_server, model),
            step="chat",
        )  # fmt: skip
    assert run.output == "AAPL and MSFT both trade at 100."
    assert sorted(started) == ["AAPL", "MSFT"]
    assert len(run.rounds) == 2
    assert fake_llm_server.request_count == 2
    roles = [m["role"] for m in run.messages]
    assert roles == ["user", "assistant", "tool", "tool", "assistant"]
    assert [m["content"] for m in run.messages if m["role"] == "tool"] == ["AAPL=100", "MSFT=100"]
    second = json.dumps(fake_llm_server.requests[1].body)
    assert "AAPL=100" in second
    assert "MSFT=100" in second
    settled = sink.settled()
    assert len(settled) == 2
    assert all(r.step == "chat" for r in settled)
    assert run.cost == sum((r.cost for r in settled if r.cost is not None), Decimal(0))
    assert run.cost == total_cost(run.attempts)


@pytest.mark.parametrize("model", [OPENAI, ANTHROPIC])
async def test_a_tool_that_raises_is_fed_back_as_an_error(
    fake_llm_server: FakeLLMServer, model: str
) -> None:
    def lookup(rule: str) -> str:
        """Look a tax rule up."""
        raise KeyError(f"no rule {rule}")

    fake_llm_server.script(
        Reply.tool_call("lookup", {"rule": "AB-1482"}),
        Reply.tool_call("missing_tool", {}),
        Reply.text("I could not find that rule."),
    )
    async with client() as llm:
        run = await llm.run_tools(
            "AB 1482?", model, tools=[lookup], api_base=base(fake_llm_server, model)
        )
    assert run.output == "I could not find that rule."
    results = [json.loads(m["content"]) for m in run.messages if m["role"] == "tool"]
    assert results == [
        {"error": "KeyError: 'no rule AB-1482'"},
        {"error": "unknown tool 'missing_tool'"},
    ]


async def test_the_round_cap_stops_the_loop_without_running_the_last_tools(
    fake_llm_server: FakeLLMServer,
) -> None:
    calls: list[str] = []

    def again(n: int) -> str:
        """Ask again."""
        calls.append(str(n))
        return "again"

    fake_llm_server.default = Reply.tool_call("again", {"n": 1})
    sink = RecordingSink()
    async with client(sink) as llm:
        with pytest.raises(ToolLoopLimitError) as stopped:
            await llm.run_tools(
                "loop", OPENAI, tools=[again], max_rounds=3, api_base=fake_llm_server.base_url
            )
    error = stopped.value
    assert error.reason == "rounds"
    assert error.rounds == 3
    assert fake_llm_server.request_count == 3
    assert len(calls) == 2  # rounds 1 and 2's tools ran; round 3's never will
    assert len(error.attempt_records) == 3 == len(sink.settled())
    assert error.spent == total_cost(error.attempt_records) > 0
    assert error.messages[-1]["tool_calls"]


async def test_the_dollar_cap_never_sends_an_attempt_that_could_cross_it(
    fake_llm_server: FakeLLMServer,
) -> None:
    def again(n: int) -> str:
        """Ask again."""
        return "again"

    fake_llm_server.default = Reply.tool_call("again", {"n": 1}).with_usage(cost="0.004")
    sink = RecordingSink()
    async with client(sink) as llm:
        with pytest.raises(ToolLoopLimitError) as stopped:
            await llm.run_tools(
                "loop", "openrouter/openai/gpt-4o-mini", tools=[again],
                max_cost=Decimal("0.01"), api_base=fake_llm_server.openrouter_base_url,
            )  # fmt: skip
    error = stopped.value
    # Each attempt's worst case is ~$0.0025 (4,096 output tokens at gpt-4o-mini's price):
    # $0 + 0.0025 and $0.004 + 0.0025 fit; $0.008 + 0.0025 would not, so round 3 is never sent.
    assert error.reason == "cost"
    assert error.rounds == 2
    assert error.spent == Decimal("0.008")
    assert error.spent <= Decimal("0.01")
    assert fake_llm_server.request_count == 2
    assert len(sink.settled()) == 2
    reserved = [kind for kind in sink.kinds() if kind == "reserve"]
    assert len(reserved) == 2  # the refused attempt reserved nothing


async def test_a_dollar_cap_on_an_unpriced_model_is_refused_before_sending(
    fake_llm_server: FakeLLMServer,
) -> None:
    async with client() as llm:
        with pytest.raises(ToolLoopLimitError) as stopped:
            await llm.run_tools(
                "x", "openai/in-house-model-without-a-price", tools=[price],
                max_cost=Decimal("1"), api_base=fake_llm_server.base_url,
            )  # fmt: skip
    assert stopped.value.reason == "unpriced"
    assert fake_llm_server.request_count == 0


async def test_a_failing_round_carries_every_rounds_attempts(
    fake_llm_server: FakeLLMServer,
) -> None:
    def again(n: int) -> str:
        """Ask again."""
        return "again"

    fake_llm_server.script(Reply.tool_call("again", {"n": 1}), Reply.error(401))
    async with client() as llm:
        with pytest.raises(AuthenticationError) as failed:
            await llm.run_tools("x", OPENAI, tools=[again], api_base=fake_llm_server.base_url)
    records = failed.value.attempt_records
    assert [r.error for r in records] == [None, "AuthenticationError"]


async def test_bad_loop_arguments_are_refused_before_sending(
    fake_llm_server: FakeLLMServer,
) -> None:
    async with client() as llm:
        with pytest.raises(InvalidRequestError, match="functions"):
            await llm.run_tools("x", OPENAI, tools=[Portfolio], api_base=fake_llm_server.base_url)
        with pytest.raises(InvalidRequestError, match="max_rounds"):
            await llm.run_tools("x", OPENAI, tools=[price], max_rounds=0)
        with pytest.raises(InvalidRequestError, match="not both"):
            await llm.chat("x", OPENAI, Portfolio, tools=[price])  # type: ignore[call-overload]
    assert fake_llm_server.request_count == 0


async def test_tool_definitions_count_in_the_budget_reservation(
    fake_llm_server: FakeLLMServer,
) -> None:
    sink = RecordingSink()
    async with client(sink) as llm:
        await llm.chat("hi", OPENAI, api_base=fake_llm_server.base_url)
        await llm.chat("hi", OPENAI, api_base=fake_llm_server.base_url, tools=[Portfolio, price])
    plain, with_tools = [item.amount for kind, item in sink.events if kind == "reserve"]
    schema = json.dumps([Tool.from_model(Portfolio).definition(), Tool.from_function(price)
                         .definition()], separators=(",", ":"))  # fmt: skip
    assert with_tools - plain >= len(schema.encode()) * Decimal("0.15") / 1_000_000
