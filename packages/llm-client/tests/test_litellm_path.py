"""The LiteLLM path against the loopback server: text, structured, retries and errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from llm_client import (
    BadRequestError,
    LLMClient,
    LLMConfig,
    ProviderConnectionError,
    ProviderTimeoutError,
    QuotaExhaustedError,
    ServerError,
)
from llm_client.testing import FakeLLMServer, Reply
from pydantic import BaseModel

from ._helpers import RecordingSink, SleepRecorder, fast_policy

pytestmark = pytest.mark.litellm  # every test here goes through LiteLLM


class Verdict(BaseModel):
    passed: bool
    reasons: list[str]


@pytest.mark.parametrize("model", ["litellm/openai/gpt-4o-mini", "litellm/hosted_vllm/gpt-4o-mini"])
async def test_text_and_structured_through_litellm(
    fake_llm_server: FakeLLMServer, model: str
) -> None:
    fake_llm_server.script(
        Reply.text("hello from litellm").with_usage(prompt_tokens=20, completion_tokens=4),
        Reply.invalid_json(),
        Reply.fenced_json({"passed": True, "reasons": ["clear"]}),
    )
    sink = RecordingSink()
    async with LLMClient(sink, config=LLMConfig(), retry=fast_policy()) as llm:
        text = await llm.complete("hi", model, api_base=fake_llm_server.base_url)
        verdict = await llm.complete("judge", model, Verdict, api_base=fake_llm_server.base_url)
    assert text.output == "hello from litellm"
    assert text.usage.prompt_tokens == 20
    assert verdict.output == Verdict(passed=True, reasons=["clear"])
    assert [a.error for a in verdict.attempts] == ["ValidationError", None]
    assert [r.model for r in fake_llm_server.requests] == ["gpt-4o-mini"] * 3
    assert sink.kinds() == ["reserve", "settle"] * 3
    if model.startswith("litellm/openai/"):
        assert text.cost == Decimal(20) * Decimal("1.5E-7") + Decimal(4) * Decimal("6E-7")


async def test_litellm_errors_map_and_retry_once_per_attempt(
    fake_llm_server: FakeLLMServer,
) -> None:
    fake_llm_server.script(*[Reply.error(500)] * 3, Reply.zai_error(1113))
    recorder = SleepRecorder()
    async with LLMClient(config=LLMConfig(), retry=fast_policy(recorder)) as llm:
        with pytest.raises(ServerError):
            await llm.chat("hi", "litellm/openai/gpt-4o-mini", api_base=fake_llm_server.base_url)
        assert fake_llm_server.request_count == 3  # LiteLLM's own retries are off
        with pytest.raises(QuotaExhaustedError):
            await llm.chat("hi", "litellm/openai/gpt-4o-mini", api_base=fake_llm_server.base_url)
    assert fake_llm_server.request_count == 4
    assert len(recorder.waits) == 2


async def test_litellm_prints_no_banners(
    fake_llm_server: FakeLLMServer, capfd: pytest.CaptureFixture[str]
) -> None:
    fake_llm_server.script(Reply.error(400), Reply.text("ok"))
    async with LLMClient(config=LLMConfig(), retry=fast_policy()) as llm:
        with pytest.raises(BadRequestError):
            await llm.chat("hi", "litellm/openai/gpt-4o-mini", api_base=fake_llm_server.base_url)
        await llm.chat("hi", "litellm/openai/gpt-4o-mini", api_base=fake_llm_server.base_url)
    out, err = capfd.readouterr()
    assert "Give Feedback" not in out + err
    assert "LiteLLM" not in out


@pytest.mark.parametrize("model", ["litellm/openai/gpt-4o-mini", "litellm/hosted_vllm/gpt-4o-mini"])
async def test_litellm_timeouts_and_refused_connections_map(
    fake_llm_server: FakeLLMServer, model: str
) -> None:
    fake_llm_server.script(Reply.hang(), Reply.hang(), Reply.hang())
    recorder = SleepRecorder()
    async with LLMClient(config=LLMConfig(), retry=fast_policy(recorder)) as llm:
        with pytest.raises(ProviderTimeoutError):
            await llm.chat("hi", model, api_base=fake_llm_server.base_url, timeout=0.3)
        with pytest.raises(ProviderConnectionError):
            await llm.chat("hi", model, api_base="http://127.0.0.1:9/v1")
    assert fake_llm_server.request_count == 3
    assert len(recorder.waits) == 4


def test_litellms_own_bill_in_a_stream_chunk_is_not_taken_for_the_providers() -> None:
    from types import SimpleNamespace

    from llm_client._litellm import provider_usage
    from llm_client._usage import normalize_usage

    class Chunk(SimpleNamespace):
        pass

    def chunk(hidden: dict[str, object]) -> Chunk:
        usage = {"prompt_tokens": 10, "completion_tokens": 2, "cost": 0.0006249999999999999}
        return Chunk(usage=SimpleNamespace(model_dump=lambda: dict(usage)), _hidden_params=hidden)

    # LiteLLM stamped its own float bill; the provider reported nothing: no reported cost.
    _, reported = normalize_usage(provider_usage(chunk({"upstream_usage_cost": None})))
    assert reported is None
    # The provider (OpenRouter, say) reported its charge: that figure, not LiteLLM's.
    _, reported = normalize_usage(provider_usage(chunk({"upstream_usage_cost": 0.0012})))
    assert reported == Decimal("0.0012")
    # Nothing stamped: the usage passes through untouched.
    plain = chunk({})
    assert provider_usage(plain) is plain.usage
