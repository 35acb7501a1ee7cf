"""Memory operations emit spans, and the summary call made inside ``get_context`` is their child."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conversation_memory import ConversationMemory, LLMSummarizer, LocalMessageStore
from llm_client import LLMClient, RetryPolicy, Telemetry
from llm_client.testing import Reply, TestModel
from llm_common_testkit.tracing import SpanRecorder
from opentelemetry.trace import SpanKind


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LocalMessageStore]:
    opened = LocalMessageStore(tmp_path / "m.sqlite3")
    yield opened
    await opened.aclose()


async def test_get_context_holds_the_summary_call(
    store: LocalMessageStore, span_recorder: SpanRecorder
) -> None:
    telemetry = Telemetry(span_recorder.provider)
    model = TestModel(Reply.text("Summary one."), name="summary-model")
    async with LLMClient(retry=RetryPolicy(max_attempts=1), telemetry=telemetry) as llm:
        memory = ConversationMemory(
            store, uuid.uuid4(), max_messages=2, summary_threshold=2,
            summarizer=LLMSummarizer(llm, model=model), telemetry=llm.telemetry,
        )  # fmt: skip
        for i in range(5):
            await memory.save_message("user" if i % 2 == 0 else "assistant", f"turn {i}")
        await memory.get_context()
    spans = span_recorder.spans()
    names = [s.name for s in spans]
    assert names.count("conversation_memory.save_message") == 5
    [context] = [s for s in spans if s.name == "conversation_memory.get_context"]
    [call] = [s for s in spans if s.name == "chat summary-model" and s.kind == SpanKind.INTERNAL]
    assert call.parent is not None
    assert call.parent.span_id == context.context.span_id
    assert "turn 1" not in str([dict(s.attributes or {}) for s in spans])  # no content by default


async def test_no_spans_when_off(store: LocalMessageStore, span_recorder: SpanRecorder) -> None:
    off = Telemetry(span_recorder.provider, enabled=False)
    memory = ConversationMemory(store, uuid.uuid4(), telemetry=off)
    await memory.save_message("user", "hi")
    await memory.get_context()
    assert span_recorder.spans() == ()
