"""Retries and fallbacks against the loopback server: what is retried, how often, how long."""

from __future__ import annotations

import email.utils
import time
from decimal import Decimal

import pytest
from llm_client import (
    AllModelsFailedError,
    AuthenticationError,
    BadRequestError,
    LLMClient,
    LLMConfig,
    ProviderConnectionError,
    ProviderSettings,
    ProviderTimeoutError,
    QuotaExhaustedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from llm_client._retry import parse_retry_after
from llm_client.testing import FakeLLMServer, Reply
from pydantic import BaseModel

from ._helpers import RecordingSink, SleepRecorder, fast_policy

MODEL = "openai/gpt-4o-mini"


def test_production_schedule_is_1_2_4_seconds_with_bounded_jitter() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 3
    for _ in range(200):
        waits = [policy.wait_for(n) for n in (1, 2, 3)]
        for wait, base in zip(waits, (1.0, 2.0, 4.0), strict=True):
            assert base <= wait <= base + policy.jitter


def test_retry_after_overrides_the_schedule_up_to_max_retry_after() -> None:
    policy = RetryPolicy(max_wait=5.0, max_retry_after=30.0)
    limited = RateLimitError("slow down", retry_after=7.0)
    assert policy.wait_for(1, limited) == 7.0  # longer than max_wait: Retry-After wins
    assert policy.should_retry(limited)
    assert not policy.should_retry(RateLimitError("x", retry_after=120.0))  # fails at once


async def test_a_retry_after_beyond_max_retry_after_fails_at_once(
    fake_llm_server: FakeLLMServer,
) -> None:
    recorder = SleepRecorder()
    fake_llm_server.script(Reply.error(429, retry_after=600), Reply.text("never"))
    policy = RetryPolicy(max_retry_after=60.0, sleep=recorder)
    async with LLMClient(config=LLMConfig(), retry=policy) as llm:
        with pytest.raises(RateLimitError):
            await llm.chat("hi", MODEL, api_base=fake_llm_server.base_url)
    assert fake_llm_server.request_count == 1
    assert recorder.waits == []


def test_retry_policy_speaks_the_shared_vocabulary() -> None:
    policy = RetryPolicy(max_attempts=2, initial_wait=0.5, max_wait=4.0, jitter=0.1)
    fields = ("max_attempts", "initial_wait", "max_wait", "jitter", "max_retry_after")
    assert [getattr(policy, name) for name in fields] == [2, 0.5, 4.0, 0.1, 60.0]


def test_the_old_base_name_still_works_with_a_deprecation_warning() -> None:
    with pytest.warns(DeprecationWarning, match="initial_wait"):
        policy = RetryPolicy(base=0.25, jitter=0.0)
    assert policy.initial_wait == 0.25
    with pytest.warns(DeprecationWarning, match="initial_wait"):
        assert policy.base == 0.25


def test_retry_after_parsing() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    later = email.utils.formatdate(time.time() + 20, usegmt=True)
    parsed = parse_retry_after({"retry-after": later})
    assert parsed is not None
    assert 15 <= parsed <= 21


def client(recorder: SleepRecorder, **kwargs: object) -> LLMClient:
    return LLMClient(config=LLMConfig(), retry=fast_policy(recorder), **kwargs)  # type: ignore[arg-type]


async def test_429_with_retry_after_is_retried_then_succeeds(
    fake_llm_server: FakeLLMServer,
) -> None:
    fake_llm_server.script(Reply.error(429, retry_after=2), Reply.text("ok"))
    recorder = SleepRecorder()
    async with client(recorder) as llm:
        done = await llm.complete("hi", MODEL, api_base=fake_llm_server.base_url)
    assert done.output == "ok"
    assert recorder.waits == [2.0]  # the server's Retry-After, not the 1 s backoff
    assert fake_llm_server.request_count == 2
    assert [a.error for a in done.attempts] == ["RateLimitError", None]
    assert done.attempts[0].cost == Decimal(0)


async def test_500s_exhaust_three_attempts_then_fall_back(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(*[Reply.error(500)] * 3, Reply.text("from the fallback"))
    recorder = SleepRecorder()
    sink = RecordingSink()
    async with client(recorder, cost_sink=sink) as llm:
        done = await llm.complete("hi", [MODEL, "openai/gpt-4o"], api_base=fake_llm_server.base_url)
    assert done.output == "from the fallback"
    assert done.model == "openai/gpt-4o"
    assert [r.model for r in fake_llm_server.requests] == ["gpt-4o-mini"] * 3 + ["gpt-4o"]
    assert len(recorder.waits) == 2
    assert 1.0 <= recorder.waits[0] <= 1.5
    assert 2.0 <= recorder.waits[1] <= 2.5
    assert [(a.model, a.attempt, a.error) for a in done.attempts] == [
        (MODEL, 1, "ServerError"),
        (MODEL, 2, "ServerError"),
        (MODEL, 3, "ServerError"),
        ("openai/gpt-4o", 1, None),
    ]
    assert sink.kinds() == ["reserve", "release"] * 3 + ["reserve", "settle"]


async def test_all_models_failing_carries_every_attempt(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(*[Reply.error(503)] * 3, Reply.error(401))
    async with client(SleepRecorder()) as llm:
        with pytest.raises(AllModelsFailedError) as info:
            await llm.chat_with_fallback(
                "hi", [MODEL, "openai/gpt-4o"], api_base=fake_llm_server.base_url
            )
    attempts = info.value.attempts
    assert [(m, type(e)) for m, e in attempts] == [
        (MODEL, ServerError),
        ("openai/gpt-4o", AuthenticationError),
    ]
    assert fake_llm_server.request_count == 4


async def test_zai_1113_is_quota_exhausted_and_never_retried(
    fake_llm_server: FakeLLMServer,
) -> None:
    fake_llm_server.script(Reply.zai_error(1113))
    recorder = SleepRecorder()
    config = LLMConfig(
        providers={"zai": ProviderSettings(base_url=fake_llm_server.zai_base_url, api_key="k")}  # type: ignore[arg-type]
    )
    async with LLMClient(config=config, retry=fast_policy(recorder)) as llm:
        with pytest.raises(QuotaExhaustedError) as info:
            await llm.chat("hi", "zai/glm-4.6")
    assert info.value.status_code == 429
    assert info.value.provider == "zai"
    assert fake_llm_server.request_count == 1
    assert fake_llm_server.last_request.path == "/api/paas/v4/chat/completions"
    assert recorder.waits == []


@pytest.mark.parametrize(("status", "error"), [(400, BadRequestError), (401, AuthenticationError)])
async def test_400_and_401_are_not_retried(
    fake_llm_server: FakeLLMServer, status: int, error: type[Exception]
) -> None:
    fake_llm_server.script(Reply.error(status))
    recorder = SleepRecorder()
    async with client(recorder) as llm:
        with pytest.raises(error):
            await llm.chat("hi", MODEL, api_base=fake_llm_server.base_url)
    assert fake_llm_server.request_count == 1
    assert recorder.waits == []


async def test_timeouts_are_retried_up_to_three_attempts(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(Reply.hang(), Reply.hang(), Reply.hang())
    recorder = SleepRecorder()
    async with client(recorder) as llm:
        with pytest.raises(ProviderTimeoutError):
            await llm.chat("hi", MODEL, api_base=fake_llm_server.base_url, timeout=0.2)
    assert fake_llm_server.request_count == 3
    assert len(recorder.waits) == 2


async def test_timeout_then_success(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(Reply.hang(), Reply.text("late but fine"))
    async with client(SleepRecorder()) as llm:
        done = await llm.complete("hi", MODEL, api_base=fake_llm_server.base_url, timeout=1.0)
    assert done.output == "late but fine"
    assert [a.error for a in done.attempts] == ["ProviderTimeoutError", None]


async def test_dropped_connection_is_retried(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(Reply.drop(), Reply.text("reconnected"))
    async with client(SleepRecorder()) as llm:
        done = await llm.complete("hi", MODEL, api_base=fake_llm_server.base_url)
    assert done.output == "reconnected"
    assert done.attempts[0].error == "ProviderConnectionError"


async def test_connection_refused_is_a_connection_error() -> None:
    recorder = SleepRecorder()
    async with client(recorder) as llm:
        with pytest.raises(ProviderConnectionError):
            await llm.chat("hi", MODEL, api_base="http://127.0.0.1:9/v1")
    assert len(recorder.waits) == 2


async def test_every_attempt_is_logged(
    fake_llm_server: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    fake_llm_server.script(Reply.error(502), Reply.text("ok"))
    caplog.set_level("WARNING", logger="llm_client")
    async with client(SleepRecorder()) as llm:
        await llm.chat("hi", MODEL, api_base=fake_llm_server.base_url)
    lines = [r.getMessage() for r in caplog.records if r.name == "llm_client"]
    assert any(
        f"model={MODEL}" in line
        and "attempt=1/3" in line
        and "ServerError" in line
        and "retry_in=" in line
        for line in lines
    ), lines


async def test_failed_calls_carry_their_attempts_and_cost(fake_llm_server: FakeLLMServer) -> None:
    from llm_client import LLMClientError, total_cost

    fake_llm_server.script(
        Reply.invalid_json().with_usage(prompt_tokens=10, completion_tokens=2),
        *[Reply.error(500)] * 3,
    )

    class Out(BaseModel):
        value: int

    async with client(SleepRecorder()) as llm:
        with pytest.raises(LLMClientError) as info:
            await llm.complete(
                "hi",
                [MODEL, "openai/gpt-4o"],
                Out,
                api_base=fake_llm_server.base_url,
                max_validation_retries=0,
            )
    records = info.value.attempt_records
    assert [(r.model, r.error) for r in records] == [
        (MODEL, "StructuredOutputError"),
        ("openai/gpt-4o", "ServerError"),
        ("openai/gpt-4o", "ServerError"),
        ("openai/gpt-4o", "ServerError"),
    ]
    assert total_cost(records) == Decimal(10) * Decimal("1.5E-7") + Decimal(2) * Decimal("6E-7")


def test_a_custom_base_scales_the_schedule_without_deprecated_tenacity_arguments() -> None:
    # filterwarnings=error turns tenacity's "'initial' is deprecated" into a failure here.
    policy = RetryPolicy(initial_wait=0.01, jitter=0.0)
    assert [policy.wait_for(n) for n in (1, 2, 3)] == [0.01, 0.02, 0.04]
