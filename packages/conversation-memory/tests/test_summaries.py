"""Rolling summaries written by a real LLMClient (offline TestModel and loopback HTTP server)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from conversation_memory import (
    ConversationMemory,
    LLMSummarizer,
    LocalMessageStore,
    SummarizationError,
)
from llm_client import LLMClient, RetryPolicy
from llm_client.testing import FakeLLMServer, Reply, TestModel


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LocalMessageStore]:
    opened = LocalMessageStore(tmp_path / "m.sqlite3")
    yield opened
    await opened.aclose()


@pytest.fixture
async def llm() -> AsyncIterator[LLMClient]:
    async with LLMClient(retry=RetryPolicy(max_attempts=1)) as client:
        yield client


@pytest.fixture(scope="module")
def _server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def server(_server: FakeLLMServer) -> FakeLLMServer:
    _server.reset()
    return _server


async def _talk(memory: ConversationMemory, start: int, count: int) -> None:
    for i in range(start, start + count):
        await memory.save_message("user" if i % 2 == 0 else "assistant", f"turn {i}")


async def test_older_turns_fold_into_a_versioned_incremental_summary(
    store: LocalMessageStore, llm: LLMClient
) -> None:
    model = TestModel(Reply.text("Summary one."), Reply.text("Summary two."))
    memory = ConversationMemory(
        store,
        uuid.uuid4(),
        max_messages=4,
        summary_threshold=4,
        summarizer=LLMSummarizer(llm, model=model),
    )
    await _talk(memory, 0, 7)
    context = await memory.get_context()  # 3 aged out: below the threshold, no call yet
    assert model.request_count == 0
    assert len(context) == 4

    await _talk(memory, 7, 1)
    context = await memory.get_context()
    assert model.request_count == 1
    assert context[0] == {
        "role": "system",
        "content": "Summary of the earlier conversation:\nSummary one.",
    }
    assert [m["content"] for m in context[1:]] == ["turn 4", "turn 5", "turn 6", "turn 7"]
    first = model.requests[0].messages[-1]["content"]
    assert "(none yet)" in first
    assert "turn 0" in first
    assert "turn 3" in first
    assert "turn 4" not in first

    await _talk(memory, 8, 4)
    context = await memory.get_context()
    assert model.request_count == 2
    second = model.requests[1].messages[-1]["content"]
    # Incremental: the old summary plus only the newly aged-out turns.
    assert "Summary one." in second
    assert "turn 4" in second
    assert "turn 7" in second
    assert "turn 3" not in second
    assert "turn 8" not in second
    assert context[0]["content"].endswith("Summary two.")
    exported = await memory.export()
    [summary] = exported["conversations"][0]["summaries"]
    assert (summary["version"], summary["covers_up_to_seq"], summary["model"]) == (2, 8, "test")
    assert len(exported["conversations"][0]["messages"]) == 12  # history is never rewritten


async def test_summaries_over_real_http(
    store: LocalMessageStore, llm: LLMClient, server: FakeLLMServer
) -> None:
    server.script(Reply.text("They discussed Roth conversions."))
    summarizer = LLMSummarizer(llm, model="openai/cheap-summary", api_base=server.base_url)
    memory = ConversationMemory(store, uuid.uuid4(), max_messages=2, summarizer=summarizer)
    await _talk(memory, 0, 5)
    summary = await memory.summarize()
    assert summary is not None
    assert summary.summary == "They discussed Roth conversions."
    assert summary.model == "openai/cheap-summary"
    assert summary.covers_up_to_seq == 3
    [request] = server.requests
    assert request.model == "cheap-summary"
    assert "turn 0" in request.messages[-1]["content"]
    assert await memory.summarize() is None  # nothing new aged out


async def test_failing_summariser_leaves_history_and_context_and_retries(
    store: LocalMessageStore,
    llm: LLMClient,
    server: FakeLLMServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.script(Reply.error(500), Reply.text("Recovered summary."))
    memory = ConversationMemory(
        store,
        uuid.uuid4(),
        max_messages=2,
        summary_threshold=2,
        summary_retry_interval=0,
        summarizer=LLMSummarizer(llm, model="openai/cheap", api_base=server.base_url),
    )
    await _talk(memory, 0, 6)
    with caplog.at_level(logging.WARNING, logger="conversation_memory"):
        context = await memory.get_context()
    assert [m["content"] for m in context] == ["turn 4", "turn 5"]
    assert "summary update" in caplog.text
    assert "will retry" in caplog.text
    assert "turn 0" not in caplog.text  # no conversation content in logs
    assert len(await memory.history()) == 6

    context = await memory.get_context()  # the retry succeeds
    assert context[0]["content"].endswith("Recovered summary.")
    assert len(server.requests) == 2


async def test_hanging_summariser_times_out_and_backs_off(
    store: LocalMessageStore,
    llm: LLMClient,
    server: FakeLLMServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.script(Reply.hang())
    memory = ConversationMemory(
        store,
        uuid.uuid4(),
        max_messages=2,
        summary_threshold=2,
        summary_timeout=0.2,
        summarizer=LLMSummarizer(llm, model="openai/cheap", api_base=server.base_url),
    )
    await _talk(memory, 0, 6)
    with caplog.at_level(logging.WARNING, logger="conversation_memory"):
        assert [m["content"] for m in await memory.get_context()] == ["turn 4", "turn 5"]
        assert len(caplog.records) == 1
        assert "timed out" in caplog.text
        server.release_hangs()
        # Within the retry interval no new attempt is made (so no new failure either).
        assert [m["content"] for m in await memory.get_context()] == ["turn 4", "turn 5"]
        assert len(caplog.records) == 1


async def test_explicit_summarize_raises_typed_errors(
    store: LocalMessageStore, llm: LLMClient, server: FakeLLMServer
) -> None:
    memory = ConversationMemory(store, uuid.uuid4(), max_messages=2)
    with pytest.raises(SummarizationError, match="no summarizer"):
        await memory.summarize()
    server.script(Reply.error(400))
    memory.summarizer = LLMSummarizer(llm, model="openai/cheap", api_base=server.base_url)
    await _talk(memory, 0, 4)
    with pytest.raises(SummarizationError):
        await memory.summarize()
    assert len(await memory.history()) == 4


async def test_summaries_can_run_off_the_request_path(
    store: LocalMessageStore, llm: LLMClient
) -> None:
    model = TestModel(Reply.text("Off-path summary."))
    memory = ConversationMemory(
        store,
        uuid.uuid4(),
        max_messages=2,
        summary_threshold=3,
        auto_summarize=False,
        summarizer=LLMSummarizer(llm, model=model),
    )
    await _talk(memory, 0, 4)
    assert len(await memory.get_context()) == 2
    assert await memory.summarize(force=False) is None  # 2 aged out: below the threshold
    await _talk(memory, 4, 1)
    assert len(await memory.get_context()) == 2  # due now, but not on the request path
    assert model.request_count == 0
    summary = await memory.summarize(force=False)
    assert summary is not None
    assert summary.covers_up_to_seq == 3
    context = await memory.get_context()
    assert context[0]["content"].endswith("Off-path summary.")


@pytest.mark.parametrize("text", ["Broken \ud800 summary.", "NUL \x00 in a summary."])
async def test_a_summary_that_cannot_be_stored_is_a_summarization_error_not_a_crash(
    store: LocalMessageStore, text: str
) -> None:
    class Hostile:
        model_name = "hostile"

        async def summarize(self, previous: str | None, messages: object) -> str:
            return text

    memory = ConversationMemory(
        store, uuid.uuid4(), max_messages=2, summary_threshold=2, summarizer=Hostile()
    )
    await _talk(memory, 0, 6)
    with pytest.raises(SummarizationError, match="cannot be stored"):
        await memory.summarize()
    context = await memory.get_context()  # the automatic update logs it and answers anyway
    assert [m["content"] for m in context] == ["turn 4", "turn 5"]
    assert len(await memory.history()) == 6
