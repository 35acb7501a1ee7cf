"""API keys never appear in logs (any logger, DEBUG), exception messages or reprs."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from llm_client import (
    AllModelsFailedError,
    AuthenticationError,
    LLMClient,
    LLMClientError,
    LLMConfig,
    ProviderSettings,
)
from llm_client.testing import FakeLLMServer, Reply
from pydantic import BaseModel

from ._helpers import LITELLM_INSTALLED, fast_policy, needs_litellm

KEY = "sk-test-SECRET0123456789abcdefXYZ"
ZAI_KEY = "zai-SECRET-0123456789.abcdefgh"


class Answer(BaseModel):
    answer: str


def leaks(text: str) -> bool:
    return KEY in text or ZAI_KEY in text or "SECRET" in text


async def test_keys_absent_from_logs_errors_and_reprs(
    fake_llm_server: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(
        logging.DEBUG
    )  # root: llm_client, openai, httpx, httpcore, LiteLLM, instructor
    for name in ("openai", "httpx", "httpcore", "LiteLLM", "instructor", "llm_client"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    config = LLMConfig(
        providers={
            "zai": ProviderSettings(base_url=fake_llm_server.zai_base_url, api_key=ZAI_KEY),  # type: ignore[arg-type]
            "openai": ProviderSettings(base_url=fake_llm_server.base_url),
        }
    )
    errors: list[BaseException] = []
    fake_llm_server.script(
        Reply.text("fine"),
        Reply.error(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}}),
        *[Reply.error(500, {"error": {"message": f"upstream said Bearer {KEY}"}})] * 3,
        Reply.zai_error(1113, f"balance too low for key {ZAI_KEY}"),
        Reply.json({"answer": "42"}),
        Reply.error(401, {"error": {"message": f"bad key {KEY}"}}),
    )
    async with LLMClient(config=config, api_keys={"openai": KEY}, retry=fast_policy()) as llm:
        base = fake_llm_server.base_url
        assert await llm.chat("hi", "openai/gpt-4o-mini", api_base=base) == "fine"
        with pytest.raises(AuthenticationError) as auth:
            await llm.chat("hi", "openai/gpt-4o-mini", api_base=base)
        errors.append(auth.value)
        with pytest.raises(AllModelsFailedError) as failed:
            await llm.chat_with_fallback("hi", ["openai/gpt-4o-mini", "zai/glm-4.6"])
        errors.append(failed.value)
        errors.extend(exc for _, exc in failed.value.attempts)
        if LITELLM_INSTALLED:  # the LiteLLM path gets the key too
            assert await llm.chat("hi", "litellm/openai/gpt-4o-mini", Answer, api_base=base)
            with pytest.raises(LLMClientError) as lite:
                await llm.chat("hi", "litellm/openai/gpt-4o-mini", api_base=base)
            errors.append(lite.value)
        client_repr = repr(llm)
    # The key really was sent (so the test would notice a leak) ...
    assert fake_llm_server.request_count >= (8 if LITELLM_INSTALLED else 6)
    # ... yet it shows up nowhere.
    assert caplog.records, "expected some log records"
    assert not leaks(caplog.text), [r.getMessage() for r in caplog.records if leaks(r.getMessage())]
    for exc in errors:
        assert not leaks(str(exc)), str(exc)
        assert not leaks(repr(exc)), repr(exc)
    assert not leaks(client_repr)
    assert not leaks(repr(config))
    assert not leaks(str(config))
    assert not leaks(config.model_dump_json())


async def test_recorded_requests_carry_redacted_auth(fake_llm_server: FakeLLMServer) -> None:
    async with LLMClient(config=LLMConfig(), api_keys={"openai": KEY}, retry=fast_policy()) as llm:
        await llm.chat("hi", "openai/gpt-4o-mini", api_base=fake_llm_server.base_url)
    assert not leaks(str(fake_llm_server.last_request.headers))


PROXY_SECRET = "pr0xy-SENTINEL-9f8e7d"


@pytest.fixture
def every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """DEBUG on the root and on every logger that exists (LiteLLM's included), restored after."""
    if LITELLM_INSTALLED:
        from llm_client._litellm import load_litellm

        load_litellm()  # creates LiteLLM's loggers, so they are switched to DEBUG too
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    levels = [(lg, lg.level, lg.disabled) for lg in loggers if isinstance(lg, logging.Logger)]
    caplog.set_level(logging.DEBUG)
    for lg, _, _ in levels:
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
    yield caplog
    for lg, level, disabled in levels:
        lg.setLevel(level)
        lg.disabled = disabled


@pytest.mark.parametrize(
    "route", ["openai/gpt-4o-mini", needs_litellm("litellm/openai/gpt-4o-mini")]
)
async def test_a_proxy_password_in_the_base_url_reaches_no_log_or_repr(
    fake_llm_server: FakeLLMServer, every_logger_at_debug: pytest.LogCaptureFixture, route: str
) -> None:
    import base64

    token = base64.b64encode(f"proxyuser:{PROXY_SECRET}".encode()).decode()
    base = fake_llm_server.base_url.replace("://", f"://proxyuser:{PROXY_SECRET}@", 1)
    config = LLMConfig(providers={"openai": ProviderSettings(base_url=base)})
    fake_llm_server.script(Reply.text("through the proxy"), *[Reply.error(503)] * 3)
    async with LLMClient(config=config, api_keys={"openai": KEY}, retry=fast_policy()) as llm:
        assert await llm.chat("hi", route) == "through the proxy"
        with pytest.raises(LLMClientError) as failed:
            await llm.chat("hi", route)
        client_repr = repr(llm)
    # The credentials still reached the proxy, as the Basic auth httpx derives from a URL.
    assert fake_llm_server.requests[0].headers["authorization"] == "Basic [REDACTED]"
    records = every_logger_at_debug.records
    assert any(r.levelno == logging.DEBUG for r in records), "expected DEBUG records"
    # A configuration is often logged whole: its repr must not show the password either.
    texts = [every_logger_at_debug.text, str(failed.value), repr(failed.value), client_repr]
    texts += [repr(config), str(config), repr(config.providers["openai"])]
    texts += [r.getMessage() for r in records] + [str(r.args) for r in records]
    for text in texts:
        assert PROXY_SECRET not in text, text
        assert token not in text, text
