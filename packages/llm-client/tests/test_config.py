"""Configuration from TOML and the environment, and how model strings route to providers."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from llm_client import (
    ConfigurationError,
    LLMClient,
    LLMConfig,
    ProviderSettings,
    RealRequestsBlockedError,
)
from llm_client._providers import resolve_route
from llm_client.testing import FakeLLMServer, Reply
from pydantic import SecretStr

from ._helpers import fast_policy, needs_litellm

TOML = """
default_timeout = 12.5
max_validation_retries = 1

[aliases]
fast = "openrouter/openai/gpt-4o-mini"
strong = "zai/glm-4.6"
smart = "strong"

[steps]
generate = ["smart", "fast"]
review = ["fast"]

[providers.zai]
base_url = "http://127.0.0.1:1/api/paas/v4"
"""


def write(tmp_path: Path, text: str = TOML) -> Path:
    path = tmp_path / "llm.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_then_env_overrides(tmp_path: Path) -> None:
    env = {
        "LLM_CLIENT_CONFIG": str(write(tmp_path)),
        "LLM_MODEL_REVIEW": "strong, fast",
        "LLM_ALIAS_CHEAP": "openai/gpt-4o-mini",
        "OPENROUTER_API_KEY": "or-key",
        "ZAI_BASE_URL": "http://127.0.0.1:2/api/paas/v4",
    }
    config = LLMConfig.load(env=env)
    assert config.default_timeout == 12.5
    assert config.max_validation_retries == 1
    assert config.models_for_step("generate") == ["zai/glm-4.6", "openrouter/openai/gpt-4o-mini"]
    assert config.models_for_step("review") == ["zai/glm-4.6", "openrouter/openai/gpt-4o-mini"]
    assert config.resolve_alias("cheap") == "openai/gpt-4o-mini"
    assert config.base_url("zai") == "http://127.0.0.1:2/api/paas/v4"
    key = config.api_key("openrouter")
    assert key is not None
    assert key.get_secret_value() == "or-key"
    assert "or-key" not in repr(config)


def test_explicit_path_wins_and_bad_files_are_config_errors(tmp_path: Path) -> None:
    assert LLMConfig.load(write(tmp_path), env={}).aliases["fast"].startswith("openrouter/")
    with pytest.raises(ConfigurationError):
        LLMConfig.load(tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigurationError):
        LLMConfig.load(write(tmp_path, "aliases = [1"), env={})
    with pytest.raises(ConfigurationError):
        LLMConfig.load(write(tmp_path, "default_timeout = -1"), env={})
    with pytest.raises(ConfigurationError):
        LLMConfig.load(write(tmp_path, "[steps]\ngenerate = []"), env={})
    with pytest.raises(ConfigurationError, match="cycle"):
        LLMConfig(aliases={"a": "b", "b": "a"}).resolve_alias("a")


def test_routing_table() -> None:
    keys = {name: SecretStr("k") for name in ("openrouter", "zai", "openai")}
    config = LLMConfig(aliases={"fast": "openrouter/openai/gpt-4o-mini"})

    route = resolve_route("fast", config, keys)
    assert (route.provider, route.backend, route.wire_model) == (
        "openrouter",
        "sdk",
        "openai/gpt-4o-mini",
    )
    assert route.base_url == "https://openrouter.ai/api/v1"
    assert route.extra_body == {"usage": {"include": True}}

    for model in ("zai/glm-4.6", "glm-4.6"):
        route = resolve_route(model, config, keys)
        assert (route.provider, route.wire_model) == ("zai", "glm-4.6")
        assert route.base_url == "https://api.z.ai/api/paas/v4"

    route = resolve_route("openai/gpt-4o", config, keys)
    assert (route.provider, route.backend, route.base_url) == (
        "openai",
        "sdk",
        "https://api.openai.com/v1",
    )


LITELLM_ONLY = ["anthropic/claude-sonnet-4-5", "litellm/openai/x", "mistral/mistral-large-latest"]


@pytest.mark.litellm
def test_routing_table_through_litellm() -> None:
    config, keys = LLMConfig(), {"anthropic": SecretStr("k")}
    route = resolve_route("anthropic/claude-sonnet-4-5", config, keys)
    assert (route.provider, route.backend) == ("anthropic", "litellm")

    route = resolve_route("litellm/openai/x", config, keys, api_base="http://127.0.0.1:9/v1")
    assert (route.backend, route.wire_model, route.loopback) == ("litellm", "openai/x", True)

    route = resolve_route("mistral/mistral-large-latest", config, keys)
    assert (route.provider, route.backend) == ("litellm", "litellm")


@pytest.mark.parametrize("model", LITELLM_ONLY)
async def test_litellm_only_models_without_the_extra_fail_at_once_naming_it(
    model: str, monkeypatch: pytest.MonkeyPatch, fake_llm_server: FakeLLMServer
) -> None:
    import sys

    from llm_client import MissingExtraError
    from llm_client._budget import InMemoryBudget

    monkeypatch.setitem(sys.modules, "litellm", None)  # what an install without the extra sees
    budget = InMemoryBudget(Decimal(1))
    async with LLMClient(budget, api_keys={"anthropic": "k"}, retry=fast_policy()) as llm:
        with pytest.raises(MissingExtraError) as failed:
            # a fallback chain stops at once: the error is configuration, not a provider's
            await llm.chat_with_fallback("hi", [model, "openai/gpt-4o-mini"])
    assert isinstance(failed.value, ConfigurationError)
    assert isinstance(failed.value, ImportError)
    assert (failed.value.extra, failed.value.name) == ("litellm", "litellm")
    assert "pip install 'llm-client[litellm]'" in str(failed.value)
    assert model in str(failed.value)
    assert fake_llm_server.request_count == 0
    assert budget.reserved == budget.spent == 0
    assert not budget.records
    assert "litellm" not in sys.modules or sys.modules["litellm"] is None


def test_missing_key_names_the_env_var() -> None:
    with pytest.raises(ConfigurationError, match="ZAI_API_KEY"):
        resolve_route("zai/glm-4.6", LLMConfig(), {})


async def test_openrouter_reports_cost_and_is_asked_to(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(
        Reply.text("hi").with_usage(prompt_tokens=12, completion_tokens=3, cost="0.0000123")
    )
    config = LLMConfig(
        aliases={"fast": "openrouter/openai/gpt-4o-mini"},
        providers={"openrouter": ProviderSettings(base_url=fake_llm_server.openrouter_base_url)},
    )
    async with LLMClient(
        config=config, api_keys={"openrouter": "or-key"}, retry=fast_policy()
    ) as llm:
        done = await llm.complete("hi", "fast")
    sent = fake_llm_server.last_request
    assert sent.path == "/api/v1/chat/completions"
    assert sent.model == "openai/gpt-4o-mini"
    assert sent.body["usage"] == {"include": True}
    assert done.cost == Decimal("0.0000123")
    assert done.attempts[0].price_source == "provider"
    assert done.provider == "openrouter"


async def test_env_step_chain_switches_models_without_code(
    fake_llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_MODEL_SUMMARIZE", "openai/gpt-4o-mini")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key")
    monkeypatch.delenv("LLM_CLIENT_CONFIG", raising=False)
    async with LLMClient(retry=fast_policy()) as llm:
        done = await llm.complete("hi", step="summarize")
    assert done.model == "openai/gpt-4o-mini"
    assert fake_llm_server.request_count == 1


@pytest.mark.parametrize(
    "model",
    ["openrouter/openai/gpt-4o-mini", "zai/glm-4.6", needs_litellm("anthropic/claude-sonnet-4-5")],
)
async def test_real_providers_are_blocked_in_this_test_suite(model: str) -> None:
    keys = {"openrouter": "k", "zai": "k", "anthropic": "k"}
    async with LLMClient(config=LLMConfig(), api_keys=keys, retry=fast_policy()) as llm:
        with pytest.raises(RealRequestsBlockedError):
            await llm.chat("hi", model)
