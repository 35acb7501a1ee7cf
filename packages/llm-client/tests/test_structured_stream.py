"""``stream(response_model=M)``: validated partial objects as the JSON arrives, the validated
whole at the end, billed however the stream ends."""

from __future__ import annotations

import pytest
from llm_client import (
    LLMClient,
    LLMConfig,
    ProviderConnectionError,
    StructuredOutputError,
    StructuredStream,
)
from llm_client._structured_stream import partial_model
from llm_client.testing import FakeLLMServer, Reply, TestModel
from pydantic import BaseModel

from ._helpers import RecordingSink, SleepRecorder, fast_policy

MODEL = "openai/gpt-4o-mini"


class Step(BaseModel):
    title: str
    minutes: int


class Plan(BaseModel):
    goal: str
    steps: list[Step]
    done: bool


PLAN = Plan(
    goal="File the 2025 tax return before the April deadline",
    steps=[Step(title="Collect the W-2 and 1099 forms", minutes=30),
           Step(title="Enter the deductions", minutes=45)],
    done=False,
)  # fmt: skip


def client(sink: object = None) -> LLMClient:
    return LLMClient(
        sink,  # type: ignore[arg-type]
        config=LLMConfig(),
        retry=fast_policy(SleepRecorder()),
    )


async def test_partials_arrive_then_the_whole_is_validated(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(Reply.json(PLAN))
    sink = RecordingSink()
    partials: list[BaseModel] = []
    async with client(sink) as llm:
        stream = llm.stream("Plan my taxes", MODEL, Plan, api_base=fake_llm_server.base_url)
        assert isinstance(stream, StructuredStream)
        async with stream as s:
            async for partial in s:
                partials.append(partial)
    assert len(partials) >= 3
    assert all(isinstance(p, partial_model(Plan)) for p in partials)
    assert partials[0].model_dump()["done"] is None  # not received yet
    assert partials[-1].model_dump() == PLAN.model_dump()
    assert s.output == PLAN
    assert type(s.output) is Plan
    assert s.completion.output == PLAN
    [record] = sink.settled()
    assert record.success
    assert record.metadata["usage_source"] == "reported"
    sent = fake_llm_server.last_request.body
    assert sent["response_format"] == {"type": "json_object"}
    assert "properties" in sent["messages"][0]["content"]  # the schema went along


async def test_a_fenced_reply_validates_too() -> None:
    model = TestModel(Reply.fenced_json(PLAN, preamble="Here you go:"))
    async with client() as llm, llm.stream("plan", model, Plan) as s:
        _ = [p async for p in s]
    assert s.output == PLAN


async def test_a_stream_cut_short_is_billed_as_estimated(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(Reply.json(PLAN).cut_after_events(4))
    sink = RecordingSink()
    partials: list[BaseModel] = []

    async def read(stream: StructuredStream[Plan]) -> None:
        async with stream as s:
            async for partial in s:
                partials.append(partial)

    async with client(sink) as llm:
        s = llm.stream("plan", MODEL, Plan, api_base=fake_llm_server.base_url)
        with pytest.raises(ProviderConnectionError) as failed:
            await read(s)
    assert partials  # part of the object arrived
    [record] = sink.settled()
    assert not record.success
    assert record.metadata["usage_source"] == "estimated"
    assert record.completion_tokens > 0
    assert record.cost is not None
    assert record.cost > 0
    assert failed.value.attempt_records[-1].cost == record.cost
    assert s.completion.cost == record.cost


async def test_a_whole_reply_that_does_not_validate_is_billed_and_raised(
    fake_llm_server: FakeLLMServer,
) -> None:
    fake_llm_server.script(Reply.json({"goal": "x", "steps": [{"title": "y"}]}))
    sink = RecordingSink()

    async def read(stream: StructuredStream[Plan]) -> None:
        async with stream as s:
            _ = [p async for p in s]

    async with client(sink) as llm:
        s = llm.stream("plan", MODEL, Plan, api_base=fake_llm_server.base_url)
        with pytest.raises(StructuredOutputError) as failed:
            await read(s)
    [record] = sink.settled()
    assert record.error == "StructuredOutputError"
    assert not record.success
    assert record.metadata["usage_source"] == "reported"
    assert failed.value.attempt_records[-1].cost == record.cost
    with pytest.raises(Exception, match="validated"):
        _ = s.output


async def test_leaving_early_bills_what_arrived(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(Reply.json(PLAN))
    sink = RecordingSink()
    async with (
        client(sink) as llm,
        llm.stream("plan", MODEL, Plan, api_base=fake_llm_server.base_url) as s,
    ):
        async for _partial in s:
            break
    [record] = sink.settled()
    assert record.error == "ClosedEarly"
    assert record.metadata["usage_source"] == "estimated"
