"""Text and structured replies through real HTTP (FakeLLMServer) and the in-process TestModel."""

from __future__ import annotations

from decimal import Decimal

import pytest
from llm_client import (
    Completion,
    ConfigurationError,
    InvalidMessagesError,
    LLMClient,
    LLMConfig,
    StructuredOutputError,
)
from llm_client.testing import FakeLLMServer, Reply, TestModel
from pydantic import BaseModel, Field

from ._helpers import RecordingSink, fast_policy

MODEL = "openai/gpt-4o-mini"  # priced by LiteLLM's bundled map; served by the loopback server


class Address(BaseModel):
    street: str
    city: str


class Person(BaseModel):
    name: str
    age: int = Field(ge=0)
    addresses: list[Address]


PERSON = {"name": "Ada", "age": 36, "addresses": [{"street": "1 Main St", "city": "London"}]}


def client(**kwargs: object) -> LLMClient:
    return LLMClient(config=LLMConfig(), retry=fast_policy(), **kwargs)  # type: ignore[arg-type]


async def test_text_reply_over_http(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(
        Reply.text("hello there").with_usage(prompt_tokens=10, completion_tokens=5)
    )
    async with client() as llm:
        done = await llm.complete("hi", MODEL, api_base=fake_llm_server.base_url)
    assert done.output == "hello there"
    assert done.model == MODEL
    assert done.provider == "openai"
    assert done.usage.prompt_tokens == 10
    assert done.usage.completion_tokens == 5
    # 10 * 0.15/M + 5 * 0.6/M, exact Decimal
    assert done.cost == Decimal("10") * Decimal("1.5E-7") + Decimal("5") * Decimal("6E-7")
    sent = fake_llm_server.last_request
    assert sent.model == "gpt-4o-mini"
    assert sent.messages == [{"role": "user", "content": "hi"}]
    # temperature and max_tokens pass through only when given
    assert "temperature" not in sent.body
    assert "max_tokens" not in sent.body


async def test_options_pass_through_when_given(fake_llm_server: FakeLLMServer) -> None:
    async with client() as llm:
        await llm.chat(
            [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            MODEL,
            temperature=0.2,
            max_tokens=50,
            api_base=fake_llm_server.base_url,
        )
    body = fake_llm_server.last_request.body
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 50


async def test_test_model_text_and_structured_offline() -> None:
    async with client() as llm:
        assert isinstance(await llm.chat("hi", "test"), str)
        person = await llm.chat("who?", "test", Person)
    assert isinstance(person, Person)
    assert isinstance(person.addresses[0], Address)


async def test_nested_structured_reply_over_http(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(Reply.json(PERSON))
    async with client() as llm:
        person = await llm.chat("who?", MODEL, Person, api_base=fake_llm_server.base_url)
    assert person == Person.model_validate(PERSON)
    sent = fake_llm_server.last_request
    assert sent.body["response_format"] == {"type": "json_object"}
    assert "addresses" in sent.messages[0]["content"]  # the schema went into the system prompt


@pytest.mark.parametrize("preamble", ["", "Sure! Here is the JSON you asked for:"])
async def test_fenced_json_is_accepted(fake_llm_server: FakeLLMServer, preamble: str) -> None:
    fake_llm_server.script(Reply.fenced_json(PERSON, preamble=preamble))
    async with client() as llm:
        done = await llm.complete("who?", MODEL, Person, api_base=fake_llm_server.base_url)
    assert done.output == Person.model_validate(PERSON)
    assert len(done.attempts) == 1
    assert fake_llm_server.request_count == 1


async def test_invalid_json_is_reasked_with_the_error_and_every_attempt_billed(
    fake_llm_server: FakeLLMServer,
) -> None:
    bad_age = {**PERSON, "age": -3}
    fake_llm_server.script(
        Reply.invalid_json().with_usage(prompt_tokens=100, completion_tokens=7),
        Reply.json(bad_age).with_usage(prompt_tokens=150, completion_tokens=30),
        Reply.json(PERSON).with_usage(prompt_tokens=200, completion_tokens=30),
    )
    sink = RecordingSink()
    async with client(cost_sink=sink) as llm:
        done = await llm.complete("who?", MODEL, Person, api_base=fake_llm_server.base_url)
    assert done.output.age == 36
    requests = fake_llm_server.requests
    assert len(requests) == 3
    # Each re-ask carries the previous reply and the validation error fed back to the model.
    second = requests[1].messages
    assert second[-2]["role"] == "assistant"
    assert "unterminated" in second[-2]["content"]
    assert second[-1]["role"] == "user"
    assert "json" in second[-1]["content"].lower()
    third = requests[2].messages
    assert "greater than or equal to 0" in third[-1]["content"]
    # All three replies were billed and counted: in .usage, .cost, .attempts and the sink.
    assert [a.error for a in done.attempts] == ["ValidationError", "ValidationError", None]
    assert done.usage.prompt_tokens == 450
    assert done.usage.completion_tokens == 67
    expected = [
        Decimal(p) * Decimal("1.5E-7") + Decimal(c) * Decimal("6E-7")
        for p, c in [(100, 7), (150, 30), (200, 30)]
    ]
    assert [a.cost for a in done.attempts] == expected
    assert done.cost == sum(expected)
    assert sink.kinds() == ["reserve", "settle"] * 3
    settled = sink.settled()
    assert [r.success for r in settled] == [False, False, True]
    assert [r.cost for r in settled] == expected
    assert [r.metadata["attempt"] for r in settled] == [1, 2, 3]


async def test_validation_exhausted_raises_structured_output_error(
    fake_llm_server: FakeLLMServer,
) -> None:
    fake_llm_server.script(*[Reply.invalid_json("not json at all")] * 2)
    sink = RecordingSink()
    async with client(cost_sink=sink) as llm:
        with pytest.raises(StructuredOutputError) as info:
            await llm.chat(
                "who?", MODEL, Person, api_base=fake_llm_server.base_url, max_validation_retries=1
            )
    assert info.value.attempts == 2
    assert info.value.raw_text == "not json at all"
    assert info.value.errors
    assert fake_llm_server.request_count == 2
    assert [r.success for r in sink.settled()] == [False, False]


async def test_truncated_reply_is_a_structured_output_error(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(Reply.text('{"name": "A').with_finish_reason("length"))
    async with client() as llm:
        with pytest.raises(StructuredOutputError, match="max_tokens"):
            await llm.chat("who?", MODEL, Person, api_base=fake_llm_server.base_url)


async def test_scripted_test_model_object() -> None:
    model = TestModel(Reply.text("scripted"), name="my-test")
    async with client() as llm:
        done: Completion[str] = await llm.complete("hi", model)
    assert done.output == "scripted"
    assert done.provider == "test"
    assert model.request_count == 1


async def test_offline_test_models_cost_zero_unless_named_after_a_priced_model() -> None:
    async with client() as llm:
        offline = await llm.complete("hi", TestModel(Reply.text("a"), name="offline-analyst"))
        priced = await llm.complete("hi", TestModel(Reply.text("a"), name="gpt-4o-mini"))
    assert offline.cost == Decimal(0)  # explicitly free, never "unpriced"
    assert priced.cost is not None
    assert priced.cost > 0


@pytest.mark.parametrize(
    "messages",
    [
        [],
        "",
        "   ",
        [{"role": "wizard", "content": "hi"}],
        [{"role": "user"}],
        [{"role": "user", "content": 3}],
        [{"role": "user", "content": ""}],
        ["hi"],
        42,
    ],
)
async def test_bad_messages_are_refused_before_any_request(messages: object) -> None:
    model = TestModel()
    async with client() as llm:
        with pytest.raises(InvalidMessagesError):
            await llm.chat(messages, model)  # type: ignore[arg-type]
    assert model.request_count == 0


async def test_step_chain_from_config() -> None:
    config = LLMConfig(aliases={"cheap": "test"}, steps={"generate": ["cheap"]})
    async with LLMClient(config=config) as llm:
        assert llm.model_for_step("generate") == ["test"]
        done = await llm.complete("hi", step="generate")
        assert done.model == "test"
        with pytest.raises(ConfigurationError):
            await llm.chat("hi", step="unknown")
        with pytest.raises(ConfigurationError):
            await llm.chat("hi")


async def test_closed_client_refuses_calls() -> None:
    llm = client()
    await llm.aclose()
    with pytest.raises(Exception, match="closed"):
        await llm.chat("hi", "test")


def test_instructor_schema_is_built_once_and_handed_out_as_copies() -> None:
    from llm_client._structured import _instructor_schema

    wrapped = _instructor_schema(Person)
    assert _instructor_schema(Person) is wrapped
    first = wrapped.model_json_schema()
    first["properties"]["mutated"] = {"type": "string"}  # a caller editing its copy...
    assert wrapped.model_json_schema() == Person.model_json_schema()  # ...changes nothing
    assert wrapped.model_json_schema(mode="serialization") == Person.model_json_schema(
        mode="serialization"
    )


async def test_a_reply_without_usage_is_estimated_and_flagged_never_a_silent_zero(
    fake_llm_server: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    bare = {
        "id": "chatcmpl-bare",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
    }  # no "usage": some OpenAI-compatible servers leave it out
    fake_llm_server.script(Reply.error(200, bare))
    sink = RecordingSink()
    async with client(cost_sink=sink) as llm:
        done = await llm.complete("hi", MODEL, api_base=fake_llm_server.base_url)
    assert done.output == "hi"
    # Counted locally: the prompt's tokens and the reply's, at the model's price (issue 17).
    from llm_client import count_tokens, estimate_cost

    prompt = count_tokens([{"role": "user", "content": "hi"}], MODEL)
    completion = count_tokens("hi", MODEL)
    assert done.usage.prompt_tokens == prompt > 0
    assert done.usage.completion_tokens == completion > 0
    assert done.cost == estimate_cost(prompt, completion, MODEL)
    assert done.cost is not None
    assert done.cost > 0
    [record] = sink.settled()
    assert record.cost == done.cost
    assert record.metadata["usage_source"] == "estimated"
    assert record.metadata["usage_problem"] == "missing"
    assert any("usage not usable (missing)" in r.getMessage() for r in caplog.records)
