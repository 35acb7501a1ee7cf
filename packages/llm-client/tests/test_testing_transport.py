"""TestModel: the in-process httpx transport, driven by httpx and the openai SDK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from llm_client.testing import AUTO_TEXT, RecordedRequest, Reply, Responder, TestModel
from pydantic import BaseModel, Field

USER = [{"role": "user", "content": "hi"}]


class Verdict(BaseModel):
    label: str = Field(min_length=1)
    score: float = Field(ge=0, le=1)
    reasons: list[str] = Field(min_length=1)


@pytest.fixture
def model() -> TestModel:
    return TestModel()


@pytest.fixture
async def sdk(model: TestModel) -> AsyncIterator[openai.AsyncOpenAI]:
    http = httpx.AsyncClient(transport=model)
    async with openai.AsyncOpenAI(
        base_url=TestModel.base_url, api_key="sk-test-secret", max_retries=0, http_client=http
    ) as client:
        yield client


async def test_plain_httpx_client(model: TestModel) -> None:
    async with httpx.AsyncClient(transport=model, base_url=TestModel.base_url) as http:
        response = await http.post("/chat/completions", json={"model": "test", "messages": USER})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "test"
    assert body["choices"][0]["message"]["content"] == AUTO_TEXT
    assert set(body["usage"]) >= {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert model.name == "test"
    assert model.request_count == 1
    assert repr(model) == "TestModel(name='test', requests=1)"


async def test_openai_sdk_structured_output(model: TestModel, sdk: openai.AsyncOpenAI) -> None:
    tool = {
        "type": "function",
        "function": {"name": "Verdict", "parameters": Verdict.model_json_schema()},
    }
    done = await sdk.chat.completions.create(model="test", messages=USER, tools=[tool])
    calls = done.choices[0].message.tool_calls
    assert calls is not None
    Verdict.model_validate_json(calls[0].function.arguments)
    assert model.last_request.body["tools"] == [tool]


async def test_scripted_replies_in_order_then_default(
    model: TestModel, sdk: openai.AsyncOpenAI
) -> None:
    model.script(Reply.text("one"), Reply.text("two"))
    model.default = Reply.text("fallback")
    assert model.pending == 2
    answers = []
    for _ in range(3):
        done = await sdk.chat.completions.create(model="test", messages=USER)
        answers.append(done.choices[0].message.content)
    assert answers == ["one", "two", "fallback"]
    assert model.pending == 0


async def test_streaming(model: TestModel, sdk: openai.AsyncOpenAI) -> None:
    model.script(Reply.json({"k": "v" * 40}))
    stream = await sdk.chat.completions.create(
        model="test", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    text = ""
    usage = None
    async for chunk in stream:
        usage = chunk.usage or usage
        text += "".join(c.delta.content or "" for c in chunk.choices)
    assert json.loads(text) == {"k": "v" * 40}
    assert usage is not None


async def test_errors_and_retry_after(model: TestModel, sdk: openai.AsyncOpenAI) -> None:
    model.script(Reply.error(429, retry_after="1.5"), Reply.error(503), Reply.zai_error(1113))
    with pytest.raises(openai.RateLimitError) as rate:
        await sdk.chat.completions.create(model="test", messages=USER)
    assert rate.value.response.headers["retry-after"] == "1.5"
    with pytest.raises(openai.InternalServerError):
        await sdk.chat.completions.create(model="test", messages=USER)
    with pytest.raises(openai.RateLimitError) as zai:
        await sdk.chat.completions.create(model="test", messages=USER)
    assert zai.value.response.json()["error"]["code"] == "1113"


async def test_drop(model: TestModel, sdk: openai.AsyncOpenAI) -> None:
    model.script(Reply.drop())
    with pytest.raises(openai.APIConnectionError) as caught:
        await sdk.chat.completions.create(model="test", messages=USER)
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)


async def test_hang_honours_the_client_read_timeout(
    model: TestModel, sdk: openai.AsyncOpenAI
) -> None:
    model.script(Reply.hang())
    with pytest.raises(openai.APITimeoutError):
        await sdk.chat.completions.create(model="test", messages=USER, timeout=0.05)
    assert model.hanging == 0


async def test_hang_is_cancelled_by_asyncio_timeouts(model: TestModel) -> None:
    model.script(Reply.hang())
    async with httpx.AsyncClient(
        transport=model, base_url=TestModel.base_url, timeout=None
    ) as http:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await http.post("/chat/completions", json={"model": "test", "messages": USER})
    assert model.hanging == 0


async def test_hang_released_and_slow_reply(model: TestModel) -> None:
    model.script(Reply.hang(), Reply.hang(0.01, then=Reply.text("slow")))
    async with httpx.AsyncClient(
        transport=model, base_url=TestModel.base_url, timeout=None
    ) as http:
        call = asyncio.create_task(http.post("/chat/completions", json={"model": "t"}))
        await asyncio.to_thread(model.wait_for_hangs, 1)
        await model.aclose()  # what closing the owning client does: releases the hang
        with pytest.raises(httpx.RemoteProtocolError):
            await call
        slow = await http.post("/chat/completions", json={"model": "t", "messages": USER})
    assert slow.json()["choices"][0]["message"]["content"] == "slow"


async def test_handler_and_concurrency(model: TestModel) -> None:
    model.handler = lambda request: Reply.text(f"answer for {request.model}")
    async with httpx.AsyncClient(transport=model, base_url=TestModel.base_url) as http:

        async def call(i: int) -> str:
            body = {"model": f"m{i}", "messages": USER}
            response = await http.post("/chat/completions", json=body)
            return str(response.json()["choices"][0]["message"]["content"])

        answers = await asyncio.gather(*(call(i) for i in range(200)))
    assert answers == [f"answer for m{i}" for i in range(200)]
    assert sorted(r.model for r in model.requests) == sorted(f"m{i}" for i in range(200))


async def test_handler_errors_become_500(model: TestModel) -> None:
    def broken(request: RecordedRequest) -> Reply:
        raise ValueError("boom")

    model.handler = broken
    async with httpx.AsyncClient(transport=model, base_url=TestModel.base_url) as http:
        response = await http.post("/chat/completions", json={"model": "t", "messages": USER})
    assert response.status_code == 500
    assert "ValueError: boom" in response.json()["error"]["message"]


async def test_thousands_of_calls(model: TestModel) -> None:
    model.default = Reply.text("ok")
    async with httpx.AsyncClient(transport=model, base_url=TestModel.base_url) as http:
        for _ in range(2000):
            response = await http.post("/chat/completions", json={"model": "t", "messages": USER})
            assert response.status_code == 200
    assert model.request_count == 2000


def test_one_model_across_event_loops() -> None:
    model = TestModel(Reply.text("a"), Reply.text("b"))

    async def one() -> str:
        async with httpx.AsyncClient(transport=model, base_url=TestModel.base_url) as http:
            response = await http.post("/chat/completions", json={"model": "t", "messages": USER})
            return str(response.json()["choices"][0]["message"]["content"])

    assert [asyncio.run(one()) for _ in range(3)] == ["a", "b", AUTO_TEXT]


def test_reset_and_last_request() -> None:
    responder = Responder(Reply.text("x"), handler=lambda r: None, default=Reply.drop())
    with pytest.raises(LookupError):
        _ = responder.last_request
    responder.plan("POST", "/v1/chat/completions", [], json.dumps({"model": "m"}).encode())
    assert responder.last_request.model == "m"
    responder.reset()
    assert (responder.request_count, responder.pending, responder.handler) == (0, 0, None)
    assert responder.default == Reply.auto()


def test_custom_name() -> None:
    assert TestModel(name="fast").name == "fast"
