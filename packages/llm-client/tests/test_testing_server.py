"""FakeLLMServer over real HTTP: the openai SDK and httpx against 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Literal

import httpx
import openai
import pytest
from llm_client.testing import AUTO_TEXT, FakeLLMServer, Reply, approx_tokens
from pydantic import BaseModel, Field

SECRET = "sk-test-secret"
USER = [{"role": "user", "content": "Say something nice."}]


class Address(BaseModel):
    street: str
    city: str
    country: Literal["DE", "FR", "US"]


class Person(BaseModel):
    name: str = Field(min_length=2, max_length=20)
    age: int = Field(ge=18, le=99)
    addresses: list[Address] = Field(min_length=2)
    nickname: str | None = None


@pytest.fixture
async def client(fake_llm_server: FakeLLMServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=fake_llm_server.base_url, api_key=SECRET, max_retries=0
    ) as sdk:
        yield sdk


async def test_text_reply_echoes_model_and_reports_usage(
    fake_llm_server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    fake_llm_server.script(Reply.text("Hello!"))
    done = await client.chat.completions.create(model="vendor/model-x", messages=USER)
    assert done.choices[0].message.content == "Hello!"
    assert done.choices[0].finish_reason == "stop"
    assert done.model == "vendor/model-x"
    assert done.id.startswith("chatcmpl-")
    assert done.usage is not None
    assert done.usage.prompt_tokens == approx_tokens("Say something nice.")
    assert done.usage.completion_tokens == approx_tokens("Hello!")
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    assert done.usage.prompt_tokens_details is not None
    assert done.usage.prompt_tokens_details.cached_tokens == 0
    assert done.usage.completion_tokens_details is not None
    assert done.usage.completion_tokens_details.reasoning_tokens == 0


async def test_usage_overrides_and_openrouter_cost(
    fake_llm_server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    reply = Reply.text("ok").with_usage(
        prompt_tokens=1000, completion_tokens=300, cached_tokens=400, reasoning_tokens=200,
        cost="0.001234",
    )  # fmt: skip
    fake_llm_server.script(reply)
    raw = await client.chat.completions.with_raw_response.create(model="m", messages=USER)
    usage = json.loads(raw.text)["usage"]
    assert usage["prompt_tokens"] == 1000
    assert usage["completion_tokens"] == 300
    assert usage["total_tokens"] == 1300
    assert usage["prompt_tokens_details"]["cached_tokens"] == 400
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 200
    assert Decimal(str(usage["cost"])) == Decimal("0.001234")


async def test_default_usage_is_deterministic(
    fake_llm_server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    usages = []
    for _ in range(3):
        done = await client.chat.completions.create(model="m", messages=USER)
        assert done.choices[0].message.content == AUTO_TEXT
        assert done.usage is not None
        usages.append(done.usage.model_dump())
    assert usages[0] == usages[1] == usages[2]
    assert usages[0]["completion_tokens"] == approx_tokens(AUTO_TEXT)


async def test_json_fenced_and_invalid_content(
    fake_llm_server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    address = Address(street="Main St 1", city="Berlin", country="DE")
    fake_llm_server.script(
        Reply.json({"a": 1}),
        Reply.fenced_json(address, preamble="Here you go:"),
        Reply.invalid_json(),
    )
    contents = []
    for _ in range(3):
        done = await client.chat.completions.create(model="m", messages=USER)
        contents.append(done.choices[0].message.content or "")
    assert json.loads(contents[0]) == {"a": 1}
    assert contents[1].startswith("Here you go:\n```json\n")
    assert contents[1].endswith("\n```")
    inner = contents[1].split("```json\n", 1)[1].rsplit("\n```", 1)[0]
    assert Address.model_validate_json(inner) == address
    with pytest.raises(json.JSONDecodeError):
        json.loads(contents[2])


async def test_scripted_tool_call(
    fake_llm_server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    fake_llm_server.script(Reply.tool_call("lookup", {"city": "Paris"}))
    done = await client.chat.completions.create(model="m", messages=USER)
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "lookup"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert done.usage is not None
    assert done.usage.completion_tokens == approx_tokens(call.function.arguments)


async def test_auto_answers_tools_with_schema_valid_arguments(client: openai.AsyncOpenAI) -> None:
    wanted = {"name": "Person", "parameters": Person.model_json_schema()}
    other = {"name": "Other", "parameters": {"type": "object"}}
    tools = [{"type": "function", "function": other}, {"type": "function", "function": wanted}]
    done = await client.chat.completions.create(
        model="m",
        messages=USER,
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "Person"}},
    )
    calls = done.choices[0].message.tool_calls
    assert calls is not None
    assert calls[0].function.name == "Person"
    person = Person.model_validate_json(calls[0].function.arguments)
    assert len(person.addresses) >= 2
    assert 18 <= person.age <= 99


async def test_auto_answers_json_schema_response_format(client: openai.AsyncOpenAI) -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "Person", "schema": Person.model_json_schema(), "strict": True},
    }
    done = await client.chat.completions.create(
        model="m",
        messages=USER,
        response_format=response_format,
    )
    Person.model_validate_json(done.choices[0].message.content or "")


async def test_auto_answers_json_object_with_schema_in_messages(client: openai.AsyncOpenAI) -> None:
    schema = json.dumps(Person.model_json_schema())
    messages = [
        {"role": "system", "content": f"Answer with JSON matching this schema:\n\n{schema}\n"},
        *USER,
    ]
    done = await client.chat.completions.create(
        model="m",
        messages=messages,
        response_format={"type": "json_object"},
    )
    Person.model_validate_json(done.choices[0].message.content or "")


async def test_handler_answers_per_request(
    fake_llm_server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    fake_llm_server.handler = lambda request: Reply.text(f"I am {request.model}")
    fake_llm_server.script(Reply.text("scripted first"))
    first = await client.chat.completions.create(model="a", messages=USER)
    second = await client.chat.completions.create(model="b", messages=USER)
    assert first.choices[0].message.content == "scripted first"
    assert second.choices[0].message.content == "I am b"


async def test_429_carries_retry_after(
    fake_llm_server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    fake_llm_server.script(Reply.error(429, retry_after=7))
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="m", messages=USER)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors(
    fake_llm_server: FakeLLMServer, client: openai.AsyncOpenAI, status: int
) -> None:
    fake_llm_server.script(Reply.error(status))
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="m", messages=USER)
    assert caught.value.status_code == status


@pytest.mark.parametrize(("code", "status"), [(1113, 429), (1214, 400)])
async def test_zai_error_bodies_under_the_zai_base_url(
    fake_llm_server: FakeLLMServer, code: int, status: int
) -> None:
    fake_llm_server.script(Reply.zai_error(code))
    async with openai.AsyncOpenAI(
        base_url=fake_llm_server.zai_base_url, api_key=SECRET, max_retries=0
    ) as zai:
        with pytest.raises(openai.APIStatusError) as caught:
            await zai.chat.completions.create(model="glm-4.6", messages=USER)
    assert caught.value.status_code == status
    error = caught.value.response.json()["error"]
    assert error["code"] == str(code)
    assert error["message"]
    assert fake_llm_server.last_request.path == "/api/paas/v4/chat/completions"


async def test_openrouter_base_url(fake_llm_server: FakeLLMServer) -> None:
    async with openai.AsyncOpenAI(
        base_url=fake_llm_server.openrouter_base_url, api_key=SECRET, max_retries=0
    ) as router:
        await router.chat.completions.create(model="openai/gpt-4o-mini", messages=USER)
    assert fake_llm_server.last_request.path == "/api/v1/chat/completions"
    assert fake_llm_server.last_request.model == "openai/gpt-4o-mini"


async def test_hang_until_client_timeout(
    fake_llm_server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    fake_llm_server.script(Reply.hang())
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(model="m", messages=USER, timeout=0.2)
    # The server is still healthy afterwards.
    done = await client.chat.completions.create(model="m", messages=USER)
    assert done.choices[0].message.content == AUTO_TEXT


async def test_hang_with_seconds_then_answers(
    fake_llm_server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    fake_llm_server.script(Reply.hang(0.05, then=Reply.text("late")))
    done = await client.chat.completions.create(model="m", messages=USER)
    assert done.choices[0].message.content == "late"


async def test_hang_then_answer_keeps_the_keep_alive_connection_usable(
    fake_llm_server: FakeLLMServer,
) -> None:
    # Regression: the cancelled read of a finished hang used to break the next request's read.
    fake_llm_server.script(
        Reply.hang(0.02, then=Reply.text("one")), Reply.hang(0.02, then=Reply.text("two"))
    )
    before = fake_llm_server.connections_accepted
    async with httpx.AsyncClient(base_url=fake_llm_server.base_url) as http:
        first = await http.post("/chat/completions", json={"model": "m", "messages": USER})
        second = await http.post("/chat/completions", json={"model": "m", "messages": USER})
    contents = [r.json()["choices"][0]["message"]["content"] for r in (first, second)]
    assert contents == ["one", "two"]
    assert fake_llm_server.connections_accepted == before + 1


async def test_release_hangs_drops_the_request(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(Reply.hang())
    async with httpx.AsyncClient(base_url=fake_llm_server.base_url) as http:
        call = asyncio.create_task(http.post("/chat/completions", json={"model": "m"}))
        await asyncio.to_thread(fake_llm_server.wait_for_hangs, 1)
        assert fake_llm_server.hanging == 1
        fake_llm_server.release_hangs()
        with pytest.raises(httpx.RemoteProtocolError):
            await call
    assert fake_llm_server.hanging == 0


async def test_hang_ends_when_the_client_disconnects(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(Reply.hang())
    http = httpx.AsyncClient(base_url=fake_llm_server.base_url)
    call = asyncio.create_task(http.post("/chat/completions", json={"model": "m"}))
    await asyncio.to_thread(fake_llm_server.wait_for_hangs, 1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await http.aclose()
    # The server notices the closed socket and stops holding the request.
    await asyncio.to_thread(fake_llm_server.wait_until_no_hangs)


async def test_drop_is_a_connection_error(
    fake_llm_server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    fake_llm_server.script(Reply.drop())
    with pytest.raises(openai.APIConnectionError) as caught:
        await client.chat.completions.create(model="m", messages=USER)
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)


async def test_requests_are_recorded_without_secrets(
    fake_llm_server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    await client.chat.completions.create(model="m1", messages=USER, temperature=0.25)
    async with httpx.AsyncClient(base_url=fake_llm_server.base_url) as http:
        headers = {"api-key": SECRET, "x-api-key": SECRET}
        await http.post(
            "/chat/completions", json={"model": "m2", "messages": USER}, headers=headers
        )
    first, second = fake_llm_server.requests
    assert (first.model, first.messages, first.body["temperature"]) == ("m1", USER, 0.25)
    assert first.headers["authorization"] == "Bearer [REDACTED]"
    assert second.model == "m2"
    assert second.headers["api-key"] == second.headers["x-api-key"] == "[REDACTED]"
    assert fake_llm_server.request_count == 2
    assert SECRET not in repr(fake_llm_server.requests)
    assert SECRET not in json.dumps([(r.headers, r.body) for r in fake_llm_server.requests])


async def test_streaming_text_with_usage(
    fake_llm_server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    text = "A streamed answer that is long enough to come in several chunks."
    fake_llm_server.script(Reply.text(text))
    stream = await client.chat.completions.create(
        model="m",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usages, finishes = [], [], []
    async for chunk in stream:
        if chunk.usage is not None:
            usages.append(chunk.usage)
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finishes.append(choice.finish_reason)
    assert "".join(pieces) == text
    assert len(pieces) > 3
    assert finishes[-1] == "stop"
    assert len(usages) == 1
    assert usages[0].completion_tokens == approx_tokens(text)
    assert fake_llm_server.last_request.stream


async def test_streaming_tool_call(
    fake_llm_server: FakeLLMServer, client: openai.AsyncOpenAI
) -> None:
    fake_llm_server.script(Reply.tool_call("save", {"items": list(range(30))}))
    stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
    names, arguments = [], []
    async for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or []:
            if call.function and call.function.name:
                names.append(call.function.name)
            if call.function and call.function.arguments:
                arguments.append(call.function.arguments)
    assert names == ["save"]
    assert json.loads("".join(arguments)) == {"items": list(range(30))}


async def test_keep_alive_reuses_one_connection(fake_llm_server: FakeLLMServer) -> None:
    before = fake_llm_server.connections_accepted
    async with httpx.AsyncClient(base_url=fake_llm_server.base_url) as http:
        for _ in range(5):
            response = await http.post("/chat/completions", json={"model": "m", "messages": USER})
            assert response.status_code == 200
            assert response.http_version == "HTTP/1.1"
    assert fake_llm_server.connections_accepted == before + 1


async def test_bad_requests(fake_llm_server: FakeLLMServer) -> None:
    async with httpx.AsyncClient(base_url=fake_llm_server.url) as http:
        assert (await http.post("/v1/chat/completions", content=b"{nope")).status_code == 400
        assert (await http.get("/v1/chat/completions")).status_code == 405
        assert (await http.post("/v1/embeddings", json={})).status_code == 404
    assert fake_llm_server.request_count == 0


def test_many_asyncio_run_cycles_against_one_server() -> None:
    fds_before = _open_fds()
    threads_before = threading.active_count()
    with FakeLLMServer(default=Reply.text("pong")) as server:

        async def one_call() -> str:
            # verify=False: plain HTTP anyway, and building the default SSL context costs more
            # than the whole call on a busy machine.
            http = httpx.AsyncClient(verify=False)
            async with openai.AsyncOpenAI(
                base_url=server.base_url, api_key=SECRET, max_retries=0, http_client=http
            ) as sdk:
                done = await sdk.chat.completions.create(model="m", messages=USER)
                return done.choices[0].message.content or ""

        answers = [asyncio.run(one_call()) for _ in range(300)]
        assert server.request_count == 300
    assert answers == ["pong"] * 300
    gc.collect()
    assert threading.active_count() == threads_before
    assert _open_fds() <= fds_before


async def test_async_context_manager_and_restart_safety() -> None:
    async with FakeLLMServer(Reply.text("x")) as server:
        url = server.base_url
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.post("/chat/completions", json={"model": "m", "messages": USER})
            assert response.json()["choices"][0]["message"]["content"] == "x"
    server.close()  # idempotent
    assert "stopped" in repr(server)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_sync_clients_and_restart_on_the_same_port() -> None:
    server = FakeLLMServer(Reply.text("first"), Reply.text("second"))
    with server, httpx.Client(base_url=server.base_url) as http:
        port = server.port
        body = {"model": "m", "messages": USER}
        assert (
            http.post("/chat/completions", json=body).json()["choices"][0]["message"]["content"]
            == "first"
        )
    # Restarting binds the same port: a way to simulate a provider outage and recovery.
    with server, httpx.Client(base_url=server.base_url) as http:
        assert server.port == port
        reply = http.post("/chat/completions", json=body).json()
        assert reply["choices"][0]["message"]["content"] == "second"


def test_port_in_use_raises_and_leaks_no_thread() -> None:
    threads_before = threading.active_count()
    with FakeLLMServer() as first:
        with pytest.raises(OSError, match="address already in use"):
            FakeLLMServer(port=first.port).start()
        assert threading.active_count() == threads_before + 1
    assert threading.active_count() == threads_before


def test_headers_and_finish_reason_overrides(fake_llm_server: FakeLLMServer) -> None:
    reply = Reply.text("cut").with_finish_reason("length").with_headers({"X-Request-Id": "abc"})
    fake_llm_server.script(reply)
    with httpx.Client(base_url=fake_llm_server.base_url) as http:
        response = http.post("/chat/completions", json={"model": "m", "messages": USER})
    assert response.headers["x-request-id"] == "abc"
    assert response.json()["choices"][0]["finish_reason"] == "length"
