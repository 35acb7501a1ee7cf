"""OpenTelemetry spans through the loopback server, read back with the SDK's in-memory exporter:
GenAI attributes, cost per billed attempt, retries and fallbacks as events, no secrets."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest
from llm_client import LLMClient, LLMConfig, Telemetry
from llm_client.testing import FakeLLMServer, Reply
from llm_common_testkit.tracing import SpanRecorder
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from ._helpers import RecordingSink, SleepRecorder, fast_policy

MODEL = "openai/gpt-4o-mini"
SENTINEL_KEY = "sk-SENTINEL-key-4f1d9a"
SENTINEL_PASSWORD = "SENTINEL-proxy-pass-77"


@pytest.fixture
def exporter(span_recorder: SpanRecorder) -> InMemorySpanExporter:
    return span_recorder.exporter


@pytest.fixture
def provider(span_recorder: SpanRecorder) -> TracerProvider:
    return span_recorder.provider


def client(provider: TracerProvider, sink: object = None, **telemetry: Any) -> LLMClient:
    return LLMClient(
        sink,  # type: ignore[arg-type]
        config=LLMConfig(),
        retry=fast_policy(SleepRecorder()),
        api_keys={"openai": SENTINEL_KEY, "anthropic": SENTINEL_KEY},
        telemetry=Telemetry(provider, **telemetry),
    )


def by_kind(spans: tuple[ReadableSpan, ...], kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in spans if s.kind == kind]


def everything_recorded(spans: tuple[ReadableSpan, ...]) -> str:
    parts: list[str] = []
    for span in spans:
        parts.append(span.name)
        parts.append(json.dumps(dict(span.attributes or {}), default=str))
        parts.append(str(span.status.description))
        for event in span.events:
            parts.append(event.name)
            parts.append(json.dumps(dict(event.attributes or {}), default=str))
    return "\n".join(parts)


async def test_a_retried_call_is_one_call_span_with_an_attempt_span_each(
    fake_llm_server: FakeLLMServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    fake_llm_server.script(
        Reply.error(503), Reply.text("recovered").with_usage(prompt_tokens=120, completion_tokens=8)
    )
    sink = RecordingSink()
    async with client(provider, sink) as llm:
        done = await llm.complete(
            "hi", MODEL, api_base=fake_llm_server.base_url, step="generate", temperature=0.2,
            top_p=0.5, seed=3,
        )  # fmt: skip
    spans = exporter.get_finished_spans()
    [call] = by_kind(spans, SpanKind.INTERNAL)
    failed, ok = by_kind(spans, SpanKind.CLIENT)
    assert call.name == f"chat {MODEL}"
    assert {failed.parent.span_id, ok.parent.span_id} == {call.context.span_id}  # type: ignore[union-attr]
    assert len({s.context.trace_id for s in spans}) == 1
    attributes = dict(call.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == MODEL
    assert attributes["gen_ai.response.model"] == MODEL
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["llm_client.step"] == "generate"
    assert "gen_ai.usage.cost.amount" not in attributes  # only attempts carry cost
    [retry] = call.events
    assert retry.name == "llm_client.retry"
    assert dict(retry.attributes or {})["error.type"] == "ServerError"
    assert dict(retry.attributes or {})["llm_client.attempt"] == 2
    assert dict(failed.attributes or {})["error.type"] == "ServerError"
    assert failed.status.status_code == StatusCode.ERROR
    assert "gen_ai.usage.cost.amount" not in dict(failed.attributes or {})  # released, unbilled
    billed = dict(ok.attributes or {})
    assert billed["gen_ai.provider.name"] == "openai"
    assert billed["gen_ai.response.model"] == "gpt-4o-mini"
    assert billed["gen_ai.usage.input_tokens"] == 120
    assert billed["gen_ai.usage.output_tokens"] == 8
    assert billed["gen_ai.usage.cache_read.input_tokens"] == 0
    assert billed["gen_ai.usage.cache_creation.input_tokens"] == 0
    assert billed["gen_ai.usage.reasoning.output_tokens"] == 0
    assert billed["gen_ai.request.temperature"] == 0.2
    assert billed["gen_ai.request.top_p"] == 0.5
    assert billed["gen_ai.request.seed"] == 3
    assert billed["server.address"] == "127.0.0.1"
    assert billed["gen_ai.usage.cost.currency"] == "USD"
    assert billed["gen_ai.usage.cost.source"] == "local"
    assert Decimal(str(billed["gen_ai.usage.cost.amount"])) == done.cost
    [record] = sink.settled()
    assert Decimal(str(billed["gen_ai.usage.cost.amount"])) == record.cost
    assert "gen_ai.input.messages" not in billed  # content only on opt-in


async def test_reported_cache_and_reasoning_usage_and_provider_cost(
    fake_llm_server: FakeLLMServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    fake_llm_server.script(
        Reply.text("ok").with_usage(
            prompt_tokens=1_000, completion_tokens=50, cached_tokens=400, cache_write_tokens=100,
            reasoning_tokens=20, cost="0.00123",
        )
    )  # fmt: skip
    async with client(provider) as llm:
        await llm.chat(
            "hi", "openrouter/anthropic/claude-haiku-4.5",
            api_base=fake_llm_server.openrouter_base_url,
        )  # fmt: skip
    [attempt] = by_kind(exporter.get_finished_spans(), SpanKind.CLIENT)
    attributes = dict(attempt.attributes or {})
    assert attributes["gen_ai.provider.name"] == "openrouter"
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 400
    assert attributes["gen_ai.usage.cache_creation.input_tokens"] == 100
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 20
    assert attributes["gen_ai.usage.cost.amount"] == "0.00123"
    assert attributes["gen_ai.usage.cost.source"] == "provider"


async def test_an_unpriced_model_says_so(
    fake_llm_server: FakeLLMServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with client(provider) as llm:
        await llm.chat("hi", "openai/no-price-model-xyz", api_base=fake_llm_server.base_url)
    [attempt] = by_kind(exporter.get_finished_spans(), SpanKind.CLIENT)
    attributes = dict(attempt.attributes or {})
    assert attributes["gen_ai.usage.cost.source"] == "unpriced"
    assert "gen_ai.usage.cost.amount" not in attributes


async def test_a_fallback_is_an_event(
    fake_llm_server: FakeLLMServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    fake_llm_server.script(Reply.error(401), Reply.text("second model"))
    async with client(provider) as llm:
        text = await llm.chat("hi", [MODEL, "openai/gpt-4o"], api_base=fake_llm_server.base_url)
    assert text == "second model"
    [call] = by_kind(exporter.get_finished_spans(), SpanKind.INTERNAL)
    [event] = call.events
    assert event.name == "llm_client.fallback"
    assert dict(event.attributes or {}) == {
        "gen_ai.request.model": MODEL,
        "error.type": "AuthenticationError",
    }
    assert dict(call.attributes or {})["gen_ai.response.model"] == "openai/gpt-4o"


async def test_a_failed_call_span_carries_the_error_type_only(
    fake_llm_server: FakeLLMServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    fake_llm_server.script(Reply.error(400))
    async with client(provider) as llm:
        with pytest.raises(Exception, match="HTTP 400"):
            await llm.chat("hi", MODEL, api_base=fake_llm_server.base_url)
    [call] = by_kind(exporter.get_finished_spans(), SpanKind.INTERNAL)
    assert call.status.status_code == StatusCode.ERROR
    assert dict(call.attributes or {})["error.type"] == "BadRequestError"


async def test_no_secret_reaches_a_span_even_with_content_captured(
    fake_llm_server: FakeLLMServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    proxy = fake_llm_server.base_url.replace("http://", f"http://user:{SENTINEL_PASSWORD}@")
    fake_llm_server.script(Reply.error(401), Reply.text("fine"), Reply.error(429, retry_after=0))
    async with client(provider, capture_content=True) as llm:
        with pytest.raises(Exception, match="401"):
            await llm.chat("hello there", MODEL, api_base=proxy)
        await llm.chat("hello again", MODEL, api_base=proxy)
        async with llm.stream("stream me", MODEL, api_base=proxy) as s:
            _ = [d async for d in s]
    recorded = everything_recorded(exporter.get_finished_spans())
    assert "hello again" in recorded  # content was captured, as asked
    assert "fine" in recorded  # and the reply
    assert SENTINEL_KEY not in recorded
    assert SENTINEL_PASSWORD not in recorded
    assert "user:" not in recorded


async def test_a_stream_cut_short_is_billed_as_estimated_on_its_span(
    fake_llm_server: FakeLLMServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    fake_llm_server.script(Reply.text("a fairly long answer " * 20).cut_after_events(3))
    sink = RecordingSink()
    async with client(provider, sink) as llm:
        with pytest.raises(Exception, match="connection"):
            async with llm.stream("hi", MODEL, api_base=fake_llm_server.base_url) as s:
                _ = [d async for d in s]
    spans = exporter.get_finished_spans()
    [attempt] = by_kind(spans, SpanKind.CLIENT)
    [call] = by_kind(spans, SpanKind.INTERNAL)
    attributes = dict(attempt.attributes or {})
    assert attributes["llm_client.usage_source"] == "estimated"
    [record] = sink.settled()
    assert Decimal(str(attributes["gen_ai.usage.cost.amount"])) == record.cost
    assert call.status.status_code == StatusCode.ERROR


async def test_tool_executions_have_spans(
    fake_llm_server: FakeLLMServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    def lookup(rule: str) -> str:
        """Look a rule up."""
        if rule == "bad":
            raise ValueError("no")
        return "found"

    fake_llm_server.script(
        Reply.tool_calls(("lookup", {"rule": "AB-1"}), ("lookup", {"rule": "bad"})),
        Reply.text("done"),
    )
    async with client(provider) as llm:
        await llm.run_tools("x", MODEL, tools=[lookup], api_base=fake_llm_server.base_url)
    tools = [s for s in exporter.get_finished_spans() if s.name == "execute_tool lookup"]
    assert len(tools) == 2
    errors = [dict(s.attributes or {}).get("error.type") for s in tools]
    assert sorted(map(str, errors)) == ["None", "ValueError"]
    assert all(dict(s.attributes or {})["gen_ai.operation.name"] == "execute_tool" for s in tools)


async def test_telemetry_off_records_nothing(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with LLMClient(config=LLMConfig(), telemetry=Telemetry(provider, enabled=False)) as llm:
        await llm.chat("hi", "test")
    assert exporter.get_finished_spans() == ()


def test_without_opentelemetry_nothing_of_it_is_imported() -> None:
    script = """
import asyncio, sys
sys.modules["opentelemetry"] = None  # as if the [otel] extra were not installed
from llm_client import LLMClient, LLMConfig
async def main():
    async with LLMClient(config=LLMConfig()) as llm:
        assert await llm.chat("hi", "test")
asyncio.run(main())
loaded = [m for m in sys.modules if m.startswith("opentelemetry") and sys.modules[m] is not None]
assert not loaded, loaded
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr


async def test_a_validation_reask_is_an_event_and_both_replies_are_billed(
    fake_llm_server: FakeLLMServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    from pydantic import BaseModel

    class Verdict(BaseModel):
        passed: bool

    fake_llm_server.script(Reply.invalid_json(), Reply.json({"passed": True}))
    sink = RecordingSink()
    async with client(provider, sink) as llm:
        verdict = await llm.chat("ok?", MODEL, Verdict, api_base=fake_llm_server.base_url)
    assert verdict.passed
    spans = exporter.get_finished_spans()
    [call] = by_kind(spans, SpanKind.INTERNAL)
    assert [e.name for e in call.events] == ["llm_client.reask"]
    attempts = by_kind(spans, SpanKind.CLIENT)
    costs = [Decimal(str(dict(s.attributes or {})["gen_ai.usage.cost.amount"])) for s in attempts]
    assert costs == [r.cost for r in sink.settled()]
    assert len(costs) == 2
