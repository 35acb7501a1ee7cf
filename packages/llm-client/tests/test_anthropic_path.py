"""Anthropic models end to end: LiteLLM's Anthropic route against the loopback server's
Messages API (``/v1/messages``), with Anthropic's usage split priced exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest
from llm_client import (
    AuthenticationError,
    InMemoryBudget,
    LLMClient,
    LLMConfig,
    ProviderConnectionError,
    RateLimitError,
    ServerError,
    TextStream,
)
from llm_client.testing import FakeLLMServer, Reply
from pydantic import BaseModel

from ._helpers import RecordingSink, SleepRecorder, fast_policy

pytestmark = pytest.mark.litellm  # every test here goes through LiteLLM

MODEL = "anthropic/claude-haiku-4-5"
# Per token: input $1/M, output $5/M, cache read $0.10/M, cache write $1.25/M (LiteLLM's map).
INPUT, OUTPUT = Decimal("0.000001"), Decimal("0.000005")
CACHE_READ, CACHE_WRITE = Decimal("1E-7"), Decimal("0.00000125")


def client(sink: object = None, recorder: SleepRecorder | None = None) -> LLMClient:
    return LLMClient(
        sink,  # type: ignore[arg-type]
        config=LLMConfig(),
        retry=fast_policy(recorder),
        api_keys={"anthropic": "sk-ant-test-key-0123456789"},
    )


async def test_text_reply_and_cache_tokens_are_priced_exactly(
    fake_llm_server: FakeLLMServer,
) -> None:
    fake_llm_server.script(
        Reply.text("Rents may rise 5% plus inflation.").with_usage(
            prompt_tokens=1_000, completion_tokens=40, cached_tokens=600, cache_write_tokens=300
        )
    )
    sink = RecordingSink()
    async with client(sink) as llm:
        done = await llm.complete(
            [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "AB 1482?"}],
            MODEL,
            api_base=fake_llm_server.anthropic_base_url,
            step="generate",
        )
    assert done.output == "Rents may rise 5% plus inflation."
    assert done.provider == "anthropic"
    sent = fake_llm_server.last_request
    assert sent.path == "/v1/messages"
    assert sent.body["model"] == "claude-haiku-4-5"
    assert sent.body["system"]  # the system prompt travels in Anthropic's own field
    assert "sk-ant-test-key-0123456789" not in str(sent.headers)  # recorded redacted
    usage = done.usage
    assert usage.prompt_tokens == 1_000  # uncached input + cache reads + cache writes
    assert usage.cached_prompt_tokens == 600
    assert usage.cache_write_tokens == 300
    assert usage.completion_tokens == 40
    expected = 100 * INPUT + 600 * CACHE_READ + 300 * CACHE_WRITE + 40 * OUTPUT
    assert done.cost == expected
    [record] = sink.settled()
    assert record.cost == expected
    assert record.provider == "anthropic"
    assert record.metadata["cache_write_tokens"] == 300


async def test_overloaded_and_rate_limited_are_retried(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(
        Reply.error(529), Reply.error(429, retry_after=0), Reply.text("third time")
    )
    recorder = SleepRecorder()
    async with client(recorder=recorder) as llm:
        done = await llm.complete("hi", MODEL, api_base=fake_llm_server.anthropic_base_url)
    assert done.output == "third time"
    assert [a.error for a in done.attempts] == ["ServerError", "RateLimitError", None]
    assert fake_llm_server.request_count == 3


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationError), (429, RateLimitError), (500, ServerError)],
)
async def test_errors_map_to_the_same_types_as_other_providers(
    fake_llm_server: FakeLLMServer, status: int, error: type[Exception]
) -> None:
    fake_llm_server.script(*[Reply.error(status)] * 3)
    async with client() as llm:
        with pytest.raises(error) as failed:
            await llm.chat("hi", MODEL, api_base=fake_llm_server.anthropic_base_url)
    assert "sk-ant-test-key" not in str(failed.value)


async def test_a_budget_bounds_anthropic_calls_too(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(Reply.text("ok").with_usage(prompt_tokens=10, completion_tokens=2))
    budget = InMemoryBudget(Decimal("1"))
    async with client(budget) as llm:
        done = await llm.complete("hi", MODEL, api_base=fake_llm_server.anthropic_base_url)
    assert budget.records[0].cost == done.cost == 10 * INPUT + 2 * OUTPUT


class Verdict(BaseModel):
    passed: bool
    reasons: list[str]


async def test_structured_output_with_a_re_ask(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(
        Reply.invalid_json().with_usage(prompt_tokens=50, completion_tokens=5),
        Reply.fenced_json({"passed": True, "reasons": ["cites the bill"]}).with_usage(
            prompt_tokens=80, completion_tokens=9
        ),
    )
    sink = RecordingSink()
    async with client(sink) as llm:
        done = await llm.complete(
            "judge", MODEL, Verdict, api_base=fake_llm_server.anthropic_base_url
        )
    assert done.output == Verdict(passed=True, reasons=["cites the bill"])
    assert [a.error for a in done.attempts] == ["ValidationError", None]
    assert "passed" in str(fake_llm_server.requests[0].body["system"])  # the schema went along
    # Both replies were billed, the failed one too.
    assert [r.success for r in sink.settled()] == [False, True]
    assert done.cost == 130 * INPUT + 14 * OUTPUT


async def test_streaming_through_litellm_bills_the_reported_usage(
    fake_llm_server: FakeLLMServer,
) -> None:
    story = "Rents may rise five percent plus inflation, capped at ten, for most tenants."
    fake_llm_server.script(
        Reply.text(story).with_usage(
            prompt_tokens=900, completion_tokens=30, cached_tokens=500, cache_write_tokens=100
        )
    )
    sink = RecordingSink()
    async with (
        client(sink) as llm,
        llm.stream("AB 1482?", MODEL, api_base=fake_llm_server.anthropic_base_url) as s,
    ):
        deltas = [delta async for delta in s]
    assert len(deltas) > 1
    assert "".join(deltas) == story
    assert fake_llm_server.last_request.body["stream"] is True
    expected = 300 * INPUT + 500 * CACHE_READ + 100 * CACHE_WRITE + 30 * OUTPUT
    assert s.completion.cost == expected
    [record] = sink.settled()
    assert record.success
    assert record.cost == expected
    assert record.metadata["usage_source"] == "reported"


async def test_a_litellm_stream_cut_short_raises_and_bills_an_estimate(
    fake_llm_server: FakeLLMServer,
) -> None:
    fake_llm_server.script(Reply.text("word " * 200).cut_after_events(4))
    sink = RecordingSink()
    received: list[str] = []
    async with client(sink) as llm:
        with pytest.raises(ProviderConnectionError):
            await _read_into(
                received, llm.stream("hi", MODEL, api_base=fake_llm_server.anthropic_base_url)
            )
    assert received
    [record] = sink.settled()
    assert not record.success
    assert record.metadata["usage_source"] == "estimated"
    assert record.completion_tokens > 0
    assert record.cost == record.prompt_tokens * INPUT + record.completion_tokens * OUTPUT


async def _read_into(received: list[str], stream: TextStream) -> None:
    async with stream as s:
        async for delta in s:
            received.append(delta)
