"""Usage: invariants, and normalisation of every provider's usage report."""

from __future__ import annotations

import logging
import os
from decimal import Decimal
from typing import Any

import pytest
from llm_client._errors import LLMClientError
from llm_client._pricing import cost_for
from llm_client._usage import ModelPrice, Usage, UsageError, cost_of, normalize_usage, sum_costs
from llm_client.testing import FakeLLMServer, Reply
from openai import AsyncOpenAI
from openai.types.completion_usage import CompletionUsage


def test_total_tokens_counts_cached_and_reasoning_tokens_once() -> None:
    usage = Usage(
        prompt_tokens=100, completion_tokens=40, cached_prompt_tokens=30, reasoning_tokens=25
    )
    assert usage.total_tokens == 140
    assert usage.uncached_prompt_tokens == 70


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt_tokens": -1}, "prompt_tokens must be >= 0"),
        ({"completion_tokens": -5}, "completion_tokens must be >= 0"),
        ({"prompt_tokens": 10, "cached_prompt_tokens": 11}, "exceeds prompt_tokens"),
        (
            {"prompt_tokens": 10, "cached_prompt_tokens": 6, "cache_write_tokens": 5},
            "exceeds prompt_tokens",
        ),
        ({"completion_tokens": 3, "reasoning_tokens": 4}, "exceeds completion_tokens"),
        ({"prompt_tokens": 1.5}, "must be an int"),
        ({"prompt_tokens": True}, "must be an int"),
    ],
)
def test_impossible_usage_raises_a_typed_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        Usage(**kwargs)
    assert isinstance(caught.value, LLMClientError)
    assert isinstance(caught.value, ValueError)


def test_zero_is_empty_and_usage_is_immutable() -> None:
    zero = Usage.zero()
    assert zero == Usage(0, 0, 0, 0, 0)
    assert zero.total_tokens == 0
    with pytest.raises(AttributeError):
        zero.prompt_tokens = 5  # type: ignore[misc]


def test_adding_something_that_is_not_usage_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Usage(1, 1) + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        Decimal(0) + Usage(1, 1)  # type: ignore[operator]


def test_openai_chat_completion_usage_dict() -> None:
    raw = {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 256,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    assert normalize_usage(raw) == (Usage(1200, 300, 1024, 256), None)


def test_openai_sdk_completion_usage_object() -> None:
    sdk = CompletionUsage.model_validate(
        {
            "prompt_tokens": 500,
            "completion_tokens": 80,
            "total_tokens": 580,
            "prompt_tokens_details": {"cached_tokens": 128},
            "completion_tokens_details": {"reasoning_tokens": 64},
        }
    )
    assert normalize_usage(sdk) == (Usage(500, 80, 128, 64), None)


def test_openai_sdk_object_keeps_openrouter_extra_cost_field() -> None:
    # The SDK keeps unknown JSON fields as extras, so OpenRouter's cost survives parsing.
    sdk = CompletionUsage.model_validate(
        {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12, "cost": 0.0000123}
    )
    usage, reported = normalize_usage(sdk)
    assert usage == Usage(10, 2)
    assert reported == Decimal("0.0000123")


def test_openrouter_usage_with_cost_cache_write_and_reasoning() -> None:
    raw = {
        "prompt_tokens": 194,
        "completion_tokens": 2,
        "total_tokens": 196,
        "cost": 0.95,
        "is_byok": False,
        "cost_details": {"upstream_inference_cost": 0.95},
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 50},
        "completion_tokens_details": {"reasoning_tokens": 1},
    }
    usage, reported = normalize_usage(raw)
    assert usage == Usage(194, 2, 100, 1, 50)
    assert reported == Decimal("0.95")


def test_openrouter_byok_adds_the_upstream_charge_to_openrouters_fee() -> None:
    raw = {
        "prompt_tokens": 10,
        "completion_tokens": 10,
        "cost": 0.0005,
        "is_byok": True,
        "cost_details": {"upstream_inference_cost": 0.01},
    }
    assert normalize_usage(raw)[1] == Decimal("0.0105")


@pytest.mark.parametrize("bad_cost", [None, "n/a", -1, float("nan"), True, [1]])
def test_unusable_reported_cost_is_ignored_not_trusted(bad_cost: object) -> None:
    raw = {"prompt_tokens": 3, "completion_tokens": 1, "cost": bad_cost}
    assert normalize_usage(raw) == (Usage(3, 1), None)


def test_zai_glm_usage() -> None:
    raw = {
        "prompt_tokens": 2048,
        "completion_tokens": 512,
        "total_tokens": 2560,
        "prompt_tokens_details": {"cached_tokens": 1536},
    }
    assert normalize_usage(raw) == (Usage(2048, 512, 1536, 0), None)


def test_anthropic_raw_usage_excludes_cache_from_input_tokens() -> None:
    raw = {
        "input_tokens": 10,
        "output_tokens": 20,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 50,
    }
    usage, _ = normalize_usage(raw)
    assert usage == Usage(160, 20, 100, 0, 50)
    assert usage.uncached_prompt_tokens == 10


def test_openai_responses_api_usage() -> None:
    raw = {
        "input_tokens": 300,
        "input_tokens_details": {"cached_tokens": 200},
        "output_tokens": 90,
        "output_tokens_details": {"reasoning_tokens": 60},
        "total_tokens": 390,
    }
    assert normalize_usage(raw) == (Usage(300, 90, 200, 60), None)


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {},
        {"prompt_tokens": None, "completion_tokens": None},
        {"prompt_tokens": 5, "prompt_tokens_details": None, "completion_tokens_details": None},
        {"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": None}},
        object(),
    ],
)
def test_missing_fields_become_zero_and_never_crash(raw: object) -> None:
    usage, reported = normalize_usage(raw)
    assert usage.completion_tokens == 0
    assert usage.cached_prompt_tokens == 0
    assert reported is None


def test_integral_floats_and_numeric_strings_are_accepted() -> None:
    raw = {"prompt_tokens": 12.0, "completion_tokens": "7"}
    assert normalize_usage(raw)[0] == Usage(12, 7)


def test_negative_reported_tokens_raise_a_typed_error() -> None:
    with pytest.raises(UsageError, match="negative"):
        normalize_usage({"prompt_tokens": -3, "completion_tokens": 1})


def test_parts_larger_than_totals_are_read_as_exclusive_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A provider that counts cache and reasoning outside the totals: bill each token once.
    raw = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 40},
        "completion_tokens_details": {"reasoning_tokens": 8},
    }
    with caplog.at_level(logging.WARNING, logger="llm_client._usage"):
        usage, _ = normalize_usage(raw)
    assert usage == Usage(50, 13, 40, 8)
    assert "excluding the cache" in caplog.text
    assert "excluding reasoning" in caplog.text


@pytest.fixture(scope="module")
def litellm_anthropic_config() -> Any:
    # LiteLLM would fetch its price map from the internet at import without this.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from litellm.llms.anthropic.chat.transformation import AnthropicConfig

    return AnthropicConfig()


@pytest.mark.litellm
def test_litellm_model_response_usage_for_anthropic(litellm_anthropic_config: Any) -> None:
    raw_anthropic = {
        "input_tokens": 12,
        "output_tokens": 340,
        "cache_read_input_tokens": 2000,
        "cache_creation_input_tokens": 300,
    }
    # The real transformation LiteLLM applies to an Anthropic response.
    litellm_usage = litellm_anthropic_config.calculate_usage(
        usage_object=raw_anthropic, reasoning_content=None
    )
    usage, reported = normalize_usage(litellm_usage)
    assert usage == Usage(2312, 340, 2000, 0, 300)
    assert (usage, reported) == normalize_usage(raw_anthropic)
    price = ModelPrice(
        input=Decimal("0.000003"),
        output=Decimal("0.000015"),
        cached_input=Decimal("3E-7"),
        cache_write=Decimal("0.00000375"),
    )
    # 12 plain + 2000 read + 300 written input tokens, 340 output tokens: each billed once.
    assert cost_of(usage, price) == Decimal("0.006861")


def test_sum_costs_is_exact_where_the_default_context_rounds() -> None:
    costs = [Decimal(10_000), Decimal("1E-24"), Decimal("0.0000011428571428571428")]
    exact = Decimal("10000.000001142857142857142801")
    assert sum_costs(costs) == exact
    assert sum(costs, Decimal(0)) != exact  # Decimal's 28-digit default would have rounded
    assert sum_costs([]) == Decimal(0)
    assert type(sum_costs([])) is Decimal


def test_money_arithmetic_refuses_floats() -> None:
    with pytest.raises(TypeError):
        sum_costs([Decimal("0.1"), 0.2])  # type: ignore[list-item]


async def test_openrouter_cost_survives_real_http_and_the_openai_sdk(
    fake_llm_server: FakeLLMServer,
) -> None:
    # The cost travels as a JSON number through a real loopback HTTP exchange and the SDK's
    # parsing, and still comes out as the exact Decimal that was sent.
    fake_llm_server.script(
        Reply.text("hi").with_usage(
            prompt_tokens=1234,
            completion_tokens=56,
            cached_tokens=1000,
            reasoning_tokens=50,
            cost="0.000123456789",
        )
    )
    async with AsyncOpenAI(
        base_url=fake_llm_server.openrouter_base_url, api_key="sk-test", max_retries=0
    ) as client:
        response = await client.chat.completions.create(
            model="anthropic/claude-sonnet-4.5", messages=[{"role": "user", "content": "hi"}]
        )
    usage, reported = normalize_usage(response.usage)
    assert usage == Usage(1234, 56, 1000, 50)
    assert reported == Decimal("0.000123456789")
    assert type(reported) is Decimal
    model = "openrouter/anthropic/claude-sonnet-4.5"
    assert cost_for(usage, model, reported) == (Decimal("0.000123456789"), "provider")
    # Without the provider's figure the same usage is priced from Anthropic's rates.
    computed, source = cost_for(usage, model)
    assert source == "genai-prices"
    assert computed == 234 * Decimal("0.000003") + 1000 * Decimal("3E-7") + 56 * Decimal("0.000015")
