"""The whole request surface reaches the loopback server as sent; prompt-caching markers travel
to Anthropic directly and through OpenRouter, and cache reads and writes are priced."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from llm_client import (
    InvalidMessagesError,
    InvalidRequestError,
    LLMClient,
    LLMConfig,
    cache_breakpoint,
)
from llm_client.testing import FakeLLMServer, Reply

from ._helpers import RecordingSink, SleepRecorder, fast_policy

PARAMS: dict[str, Any] = {
    "temperature": 0.3,
    "top_p": 0.9,
    "seed": 42,
    "stop": ["\n\n", "END"],
    "presence_penalty": 0.5,
    "frequency_penalty": -0.25,
    "reasoning_effort": "high",
    "max_tokens": 300,
}


def client(sink: object = None) -> LLMClient:
    return LLMClient(
        sink,  # type: ignore[arg-type]
        config=LLMConfig(),
        retry=fast_policy(SleepRecorder()),
        api_keys={"anthropic": "sk-ant-test-key-0123456789", "openrouter": "sk-or-test-000"},
    )


async def test_every_parameter_arrives_as_sent_on_the_openai_route(
    fake_llm_server: FakeLLMServer,
) -> None:
    extras = {"provider": {"order": ["anthropic"], "allow_fallbacks": False}, "top_k": 20}
    async with client() as llm:
        await llm.chat(
            "hi", "openai/gpt-4o-mini", api_base=fake_llm_server.base_url,
            extra_body=extras, **PARAMS,
        )  # fmt: skip
        sent = fake_llm_server.last_request.body
        for name, value in PARAMS.items():
            assert sent[name] == value, name
        assert sent["provider"] == extras["provider"]
        assert sent["top_k"] == 20
        assert "extra_body" not in sent
        # Through OpenRouter the caller's extras join the provider's own (usage.include).
        await llm.chat(
            "hi", "openrouter/openai/gpt-4o-mini", api_base=fake_llm_server.openrouter_base_url,
            extra_body=extras, seed=7,
        )  # fmt: skip
        sent = fake_llm_server.last_request.body
    assert sent["usage"] == {"include": True}
    assert sent["provider"] == extras["provider"]
    assert sent["seed"] == 7


async def test_parameters_are_sent_only_when_given(fake_llm_server: FakeLLMServer) -> None:
    async with client() as llm:
        await llm.chat("hi", "openai/gpt-4o-mini", api_base=fake_llm_server.base_url)
    sent = fake_llm_server.last_request.body
    assert not set(PARAMS) & set(sent)


async def test_the_anthropic_route_gets_anthropic_names(fake_llm_server: FakeLLMServer) -> None:
    async with client() as llm:
        await llm.chat(
            "hi", "anthropic/claude-haiku-4-5", api_base=fake_llm_server.anthropic_base_url,
            top_p=0.9, stop=["END"], max_tokens=2048, reasoning_effort="low",
            extra_body={"top_k": 5, "service_tier": "standard_only"},
        )  # fmt: skip
    sent = fake_llm_server.last_request.body
    assert sent["top_p"] == 0.9
    assert sent["stop_sequences"] == ["END"]
    assert sent["max_tokens"] == 2048
    assert sent["thinking"]["type"] == "enabled"  # reasoning_effort, in Anthropic's terms
    # Provider extras reach Anthropic's body unchanged (not as a literal "extra_body").
    assert sent["top_k"] == 5
    assert sent["service_tier"] == "standard_only"
    assert "extra_body" not in sent


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("top_p", "high"),
        ("seed", 1.5),
        ("seed", True),
        ("stop", ["ok", 3]),
        ("presence_penalty", float("nan")),
        ("reasoning_effort", 3),
        ("extra_body", ["not", "a", "mapping"]),
    ],
)
async def test_bad_parameters_are_refused_before_anything_is_sent(
    fake_llm_server: FakeLLMServer, name: str, value: object
) -> None:
    sink = RecordingSink()
    async with client(sink) as llm:
        with pytest.raises(InvalidRequestError, match=name):
            await llm.chat("hi", "openai/gpt-4o-mini", api_base=fake_llm_server.base_url,
                           **{name: value})  # fmt: skip
    assert fake_llm_server.request_count == 0
    assert not sink.events


async def test_an_unknown_parameter_is_a_type_error() -> None:
    async with client() as llm:
        with pytest.raises(TypeError, match="top_q"):
            await llm.chat("hi", "test", top_q=0.3)  # type: ignore[call-overload]


async def test_streams_take_the_same_parameters(fake_llm_server: FakeLLMServer) -> None:
    async with (
        client() as llm,
        llm.stream("hi", "openai/gpt-4o-mini", api_base=fake_llm_server.base_url, seed=9,
                   stop="END", top_p=0.5) as s,
    ):  # fmt: skip
        _ = [d async for d in s]
    sent = fake_llm_server.last_request.body
    assert (sent["seed"], sent["stop"], sent["top_p"]) == (9, "END", 0.5)


def test_cache_breakpoint_marks_the_last_block_and_copies() -> None:
    message = {"role": "system", "content": "a long rulebook"}
    marked = cache_breakpoint(message, ttl="1h")
    assert message == {"role": "system", "content": "a long rulebook"}
    assert marked["content"] == [
        {
            "type": "text",
            "text": "a long rulebook",
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        }
    ]
    parts = {
        "role": "user",
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
    }
    assert "cache_control" in cache_breakpoint(parts)["content"][1]
    assert "cache_control" not in parts["content"][1]
    with pytest.raises(InvalidMessagesError):
        cache_breakpoint({"role": "assistant", "content": None})


RULES = "Rent rules. " * 200
# Per token for claude-haiku-4.5: input $1/M, output $5/M, cache read $0.10/M, write $1.25/M.
INPUT, OUTPUT = Decimal("0.000001"), Decimal("0.000005")
CACHE_READ, CACHE_WRITE = Decimal("1E-7"), Decimal("0.00000125")


@pytest.mark.parametrize(
    ("model", "where"),
    [
        ("anthropic/claude-haiku-4-5", "anthropic_base_url"),
        ("openrouter/anthropic/claude-haiku-4.5", "openrouter_base_url"),
    ],
)
async def test_cache_markers_travel_and_cache_tokens_are_priced(
    fake_llm_server: FakeLLMServer, model: str, where: str
) -> None:
    fake_llm_server.script(
        Reply.text("written").with_usage(
            prompt_tokens=1_000, completion_tokens=10, cache_write_tokens=900
        ),
        Reply.text("read").with_usage(prompt_tokens=1_000, completion_tokens=10, cached_tokens=900),
    )
    messages = [
        cache_breakpoint({"role": "system", "content": RULES}),
        {"role": "user", "content": "Can my rent rise 10%?"},
    ]
    sink = RecordingSink()
    async with client(sink) as llm:
        first = await llm.complete(messages, model, api_base=getattr(fake_llm_server, where))
        second = await llm.complete(messages, model, api_base=getattr(fake_llm_server, where))
    sent = fake_llm_server.last_request.body
    system = sent["system"] if "system" in sent else sent["messages"][0]["content"]
    assert system[-1]["cache_control"] == {"type": "ephemeral"}
    assert system[-1]["text"] == RULES
    assert first.usage.cache_write_tokens == 900
    assert first.cost == 100 * INPUT + 900 * CACHE_WRITE + 10 * OUTPUT
    assert second.usage.cached_prompt_tokens == 900
    assert second.cost == 100 * INPUT + 900 * CACHE_READ + 10 * OUTPUT
    assert [r.cost for r in sink.settled()] == [first.cost, second.cost]
