"""LLMClient.stream over real HTTP (FakeLLMServer) and the in-process TestModel: text deltas as
they arrive, retries and fallbacks before the first byte, and billing however the stream ends."""

from __future__ import annotations

from decimal import Decimal

import pytest
from llm_client import (
    AllModelsFailedError,
    BudgetExceededError,
    InMemoryBudget,
    LLMClient,
    LLMClientError,
    LLMConfig,
    ProviderConnectionError,
    TextStream,
)
from llm_client.testing import FakeLLMServer, Reply, TestModel

from ._helpers import RecordingSink, SleepRecorder, fast_policy

MODEL = "openai/gpt-4o-mini"  # priced; served by the loopback server
STORY = "Once upon a time a small bill became law, and rents rose no more than five percent."
INPUT, OUTPUT = Decimal("1.5E-7"), Decimal("6E-7")  # gpt-4o-mini, dollars per token


def client(**kwargs: object) -> LLMClient:
    return LLMClient(config=LLMConfig(), retry=fast_policy(), **kwargs)  # type: ignore[arg-type]


async def _read_into(received: list[str], stream: TextStream) -> None:
    async with stream as s:
        async for delta in s:
            received.append(delta)


async def test_deltas_arrive_in_pieces_and_the_reported_usage_is_billed(
    fake_llm_server: FakeLLMServer,
) -> None:
    fake_llm_server.script(Reply.text(STORY).with_usage(prompt_tokens=12, completion_tokens=20))
    sink = RecordingSink()
    async with client(cost_sink=sink) as llm:
        stream = llm.stream("tell me", MODEL, api_base=fake_llm_server.base_url, step="chat")
        assert isinstance(stream, TextStream)
        async with stream as s:
            deltas = [delta async for delta in s]
    assert len(deltas) > 1
    assert "".join(deltas) == STORY == s.text
    sent = fake_llm_server.last_request
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    done = s.completion
    assert done.output == STORY
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (12, 20)
    assert done.cost == 12 * INPUT + 20 * OUTPUT
    assert sink.kinds() == ["reserve", "settle"]
    [record] = sink.settled()
    assert record.success
    assert record.cost == done.cost
    assert record.step == "chat"
    assert record.metadata["usage_source"] == "reported"


async def test_a_failing_open_is_retried_then_streams(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(Reply.error(503), Reply.text("second time lucky"))
    sink = RecordingSink()
    async with (
        client(cost_sink=sink) as llm,
        llm.stream("hi", MODEL, api_base=fake_llm_server.base_url) as s,
    ):
        text = "".join([d async for d in s])
    assert text == "second time lucky"
    assert [a.error for a in s.completion.attempts] == ["ServerError", None]
    assert sink.kinds() == ["reserve", "release", "reserve", "settle"]


async def test_a_chain_falls_back_while_opening(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.handler = lambda r: Reply.error(401) if r.model == "gpt-4o-mini" else None
    chain = [MODEL, "openai/gpt-4.1-mini"]
    async with client() as llm, llm.stream("hi", chain, api_base=fake_llm_server.base_url) as s:
        text = "".join([d async for d in s])
    assert text
    assert s.completion.model == "openai/gpt-4.1-mini"
    assert [a.error for a in s.completion.attempts] == ["AuthenticationError", None]


async def test_every_model_failing_to_open_is_all_models_failed(
    fake_llm_server: FakeLLMServer,
) -> None:
    fake_llm_server.handler = lambda r: Reply.error(400 if r.model == "gpt-4o-mini" else 401)
    async with client() as llm:
        with pytest.raises(AllModelsFailedError) as failed:
            async with llm.stream(
                "hi", [MODEL, "openai/gpt-4.1-mini"], api_base=fake_llm_server.base_url
            ):
                pass  # pragma: no cover
    assert len(failed.value.attempt_records) == 2


async def test_leaving_early_closes_the_response_and_bills_what_was_generated(
    fake_llm_server: FakeLLMServer,
) -> None:
    fake_llm_server.script(Reply.text(STORY))
    sink = RecordingSink()
    async with client(cost_sink=sink) as llm:
        async with llm.stream("hi", MODEL, api_base=fake_llm_server.base_url) as s:
            async for delta in s:
                first = delta
                break
        # The connection went back to the pool: the next call on it works.
        assert await llm.chat("again", MODEL, api_base=fake_llm_server.base_url)
    assert s.text == first
    [record, _] = sink.settled()
    assert not record.success
    assert record.error == "ClosedEarly"
    assert record.metadata["usage_source"] == "estimated"
    assert record.prompt_tokens > 0
    assert record.completion_tokens > 0
    assert record.cost == record.prompt_tokens * INPUT + record.completion_tokens * OUTPUT
    assert s.completion.cost == record.cost


async def test_a_connection_dropped_mid_stream_raises_and_still_bills(
    fake_llm_server: FakeLLMServer,
) -> None:
    fake_llm_server.script(Reply.text(STORY).cut_after_events(3))
    sink = RecordingSink()
    received: list[str] = []
    async with client(cost_sink=sink) as llm:
        with pytest.raises(ProviderConnectionError) as failed:
            await _read_into(received, llm.stream("hi", MODEL, api_base=fake_llm_server.base_url))
    assert received  # part of the text arrived; nothing is retried after it
    assert "".join(received) != STORY
    assert fake_llm_server.request_count == 1
    [record] = sink.settled()
    assert record.error == "ProviderConnectionError"
    assert record.metadata["usage_source"] == "estimated"
    assert record.completion_tokens > 0
    assert failed.value.attempt_records[-1].cost == record.cost > 0


async def test_budget_refusal_happens_before_anything_is_sent(
    fake_llm_server: FakeLLMServer,
) -> None:
    async with client(cost_sink=InMemoryBudget(Decimal("0.0000001"))) as llm:
        with pytest.raises(BudgetExceededError):
            async with llm.stream("hi", MODEL, api_base=fake_llm_server.base_url):
                pass  # pragma: no cover
    assert fake_llm_server.request_count == 0


async def test_in_process_test_model_streams_too() -> None:
    model = TestModel(Reply.text(STORY).cut_after_events(2), Reply.text("whole"))
    async with LLMClient(config=LLMConfig(), retry=fast_policy(SleepRecorder())) as llm:
        with pytest.raises(ProviderConnectionError):
            await _read_into([], llm.stream("hi", model))
        async with llm.stream("hi", model) as s:
            assert "".join([d async for d in s]) == "whole"


async def test_misuse_is_a_clear_error(fake_llm_server: FakeLLMServer) -> None:
    async with client() as llm:
        stream = llm.stream("hi", MODEL, api_base=fake_llm_server.base_url)
        with pytest.raises(LLMClientError, match="async with"):
            stream.__aiter__()
        with pytest.raises(LLMClientError, match="not ended"):
            _ = stream.completion
    with pytest.raises(LLMClientError, match="closed"):
        llm.stream("hi", MODEL)


async def test_open_and_aclose_without_async_with(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(Reply.text("opened by hand"))
    sink = RecordingSink()
    async with client(cost_sink=sink) as llm:
        stream = await llm.stream("hi", MODEL, api_base=fake_llm_server.base_url).open()
        with pytest.raises(LLMClientError, match="already open"):
            await stream.open()
        assert "".join([d async for d in stream]) == "opened by hand"
        await stream.aclose()
        await stream.aclose()  # idempotent: billed once
    assert sink.kinds() == ["reserve", "settle"]
    assert stream.completion.output == "opened by hand"


def test_the_stream_and_the_client_do_not_import_each_other() -> None:
    """One fallback loop (``_fallback``) serves both; the stream gets what it needs passed in."""
    import ast
    import inspect

    import llm_client._streaming as streaming

    tree = ast.parse(inspect.getsource(streaming))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "llm_client._client" not in imported
    assert "llm_client._fallback" in imported
    assert "._client" not in inspect.getsource(streaming)
