"""Property tests: money from usage and prices is exact, never double-counts, and adds up."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st
from llm_client._pricing import cost_for, estimate_cost, price_for, register_model
from llm_client._usage import ModelPrice, Usage, cost_of, normalize_usage, sum_costs

# No per-example deadline: the first example also loads LiteLLM's price map, and CI machines
# are shared; speed is measured in bench/, not here.
relaxed = settings(deadline=None)

# Per-token prices as providers publish them: up to 12 decimal places, at most $0.01 a token.
per_token = st.decimals(min_value=Decimal(0), max_value=Decimal("0.01"), places=12, allow_nan=False)
# Prices as LiteLLM's map writes them, e.g. 1.1428571428571428E-6 (17 significant digits).
map_style = st.builds(
    lambda mantissa, exponent: Decimal(mantissa).scaleb(exponent),
    st.integers(min_value=0, max_value=10**17),
    st.integers(min_value=-24, max_value=-6),
)
any_price = st.one_of(per_token, map_style)


@st.composite
def prices(draw: st.DrawFn) -> ModelPrice:
    return ModelPrice(
        input=draw(any_price),
        output=draw(any_price),
        cached_input=draw(st.none() | any_price),
        cache_write=draw(st.none() | any_price),
        source=draw(st.sampled_from(["genai-prices", "litellm", "bundled", "config"])),
    )


@st.composite
def usages(draw: st.DrawFn, max_tokens: int = 10**9) -> Usage:
    prompt = draw(st.integers(0, max_tokens))
    cached = draw(st.integers(0, prompt))
    write = draw(st.integers(0, prompt - cached))
    completion = draw(st.integers(0, max_tokens))
    reasoning = draw(st.integers(0, completion))
    return Usage(prompt, completion, cached, reasoning, write)


def fraction_cost(usage: Usage, price: ModelPrice) -> Fraction:
    """Reference arithmetic in exact rationals, independent of Decimal contexts."""
    cached = price.input if price.cached_input is None else price.cached_input
    write = price.input if price.cache_write is None else price.cache_write
    return (
        Fraction(usage.prompt_tokens - usage.cached_prompt_tokens - usage.cache_write_tokens)
        * Fraction(price.input)
        + Fraction(usage.cached_prompt_tokens) * Fraction(cached)
        + Fraction(usage.cache_write_tokens) * Fraction(write)
        + Fraction(usage.completion_tokens) * Fraction(price.output)
    )


@relaxed
@given(usages(), prices())
def test_cost_is_exact_decimal_arithmetic(usage: Usage, price: ModelPrice) -> None:
    cost = cost_of(usage, price)
    assert type(cost) is Decimal
    assert Fraction(cost) == fraction_cost(usage, price)


@relaxed
@given(usages(), prices(), st.data())
def test_moving_tokens_into_the_cache_changes_cost_by_the_discount_only(
    usage: Usage, price: ModelPrice, data: st.DataObject
) -> None:
    movable = usage.uncached_prompt_tokens
    moved = data.draw(st.integers(0, movable))
    more_cached = Usage(
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.cached_prompt_tokens + moved,
        usage.reasoning_tokens,
        usage.cache_write_tokens,
    )
    cached_price = price.input if price.cached_input is None else price.cached_input
    difference = Fraction(cost_of(usage, price)) - Fraction(cost_of(more_cached, price))
    assert difference == moved * (Fraction(price.input) - Fraction(cached_price))


@relaxed
@given(usages(), prices(), st.data())
def test_reasoning_tokens_inside_completion_never_change_cost(
    usage: Usage, price: ModelPrice, data: st.DataObject
) -> None:
    reasoning = data.draw(st.integers(0, usage.completion_tokens))
    same_output = Usage(
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.cached_prompt_tokens,
        reasoning,
        usage.cache_write_tokens,
    )
    assert cost_of(same_output, price) == cost_of(usage, price)


@relaxed
@given(usages(), usages(), usages())
def test_usage_addition_is_a_monoid(a: Usage, b: Usage, c: Usage) -> None:
    assert (a + b) + c == a + (b + c)
    assert a + Usage.zero() == a == Usage.zero() + a
    assert sum([a, b, c], Usage.zero()) == a + b + c
    assert sum([a, b]) == a + b  # plain sum() starts from int 0
    assert (a + b).total_tokens == a.total_tokens + b.total_tokens


@relaxed
@given(st.lists(usages(max_tokens=10**7), max_size=8), prices())
def test_total_of_attempts_equals_sum_of_per_attempt_costs(
    attempts: list[Usage], price: ModelPrice
) -> None:
    per_attempt = [cost_of(u, price) for u in attempts]
    total = sum_costs(per_attempt)
    assert cost_of(sum(attempts, Usage.zero()), price) == total
    assert Fraction(total) == sum((fraction_cost(u, price) for u in attempts), Fraction(0))
    assert all(type(c) is Decimal for c in per_attempt)


@relaxed
@given(
    st.lists(
        st.tuples(usages(max_tokens=10**6), st.none() | per_token),
        min_size=1,
        max_size=6,
    )
)
def test_attempt_costs_with_mixed_sources_add_up(
    attempts: list[tuple[Usage, Decimal | None]],
) -> None:
    # Some attempts carry a provider-reported cost (OpenRouter), the others are computed.
    price = price_for("gpt-4o-mini")
    assert price is not None
    costs = []
    for usage, reported in attempts:
        cost, source = cost_for(usage, "gpt-4o-mini", reported)
        assert cost is not None
        assert type(cost) is Decimal
        if reported is not None:
            assert (cost, source) == (reported, "provider")
        else:
            assert (cost, source) == (cost_of(usage, price), "genai-prices")
        costs.append(cost)
    expected = sum(
        (Fraction(r) if r is not None else fraction_cost(u, price) for u, r in attempts),
        Fraction(0),
    )
    assert Fraction(sum_costs(costs)) == expected


@relaxed
@given(usages(max_tokens=10**6), prices())
def test_estimate_is_an_upper_bound_of_the_real_cost(usage: Usage, price: ModelPrice) -> None:
    register_model("property-test-model", price=price)
    estimate = estimate_cost(usage.prompt_tokens, usage.completion_tokens, "property-test-model")
    assert estimate is not None
    assert type(estimate) is Decimal
    assert cost_of(usage, price) <= estimate


@relaxed
@given(usages(), prices(), any_price, st.data())
def test_separate_reasoning_rate_moves_cost_by_exactly_the_rate_difference(
    usage: Usage, price: ModelPrice, reasoning_rate: Decimal, data: st.DataObject
) -> None:
    priced = replace(price, reasoning=reasoning_rate)
    more = data.draw(st.integers(0, usage.completion_tokens - usage.reasoning_tokens))
    shifted = replace(usage, reasoning_tokens=usage.reasoning_tokens + more)
    difference = Fraction(cost_of(shifted, priced)) - Fraction(cost_of(usage, priced))
    assert difference == more * (Fraction(reasoning_rate) - Fraction(price.output))
    assert Fraction(cost_of(usage, priced)) == fraction_cost(usage, price) + Fraction(
        usage.reasoning_tokens
    ) * (Fraction(reasoning_rate) - Fraction(price.output))


@relaxed
@given(usages(), prices(), prices(), st.integers(0, 10**9))
def test_long_context_tier_prices_the_whole_call(
    usage: Usage, base: ModelPrice, long: ModelPrice, threshold: int
) -> None:
    tiered = replace(base, tiers=((threshold, long),))
    expected = long if usage.prompt_tokens > threshold else base
    assert Fraction(cost_of(usage, tiered)) == fraction_cost(usage, expected)


# --- normalize_usage on randomized provider shapes -------------------------------------------

token_counts = st.integers(min_value=0, max_value=10**8)
maybe_missing = st.none() | token_counts


@relaxed
@given(token_counts, st.data())
def test_openai_shaped_usage_normalises_to_the_same_numbers(
    prompt: int, data: st.DataObject
) -> None:
    cached = data.draw(st.integers(0, prompt))
    completion = data.draw(token_counts)
    reasoning = data.draw(st.integers(0, completion))
    raw = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }
    usage, reported = normalize_usage(json.loads(json.dumps(raw)))
    assert usage == Usage(prompt, completion, cached, reasoning)
    assert usage.total_tokens == raw["total_tokens"]
    assert reported is None


@relaxed
@given(
    token_counts,
    token_counts,
    st.floats(min_value=0, max_value=1000, allow_nan=False, allow_infinity=False),
    st.booleans(),
)
def test_openrouter_cost_arrives_as_a_json_number_and_stays_exact(
    prompt: int, completion: int, cost: float, details_missing: bool
) -> None:
    raw: dict[str, object] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cost": cost,
        "is_byok": False,
        "cost_details": {"upstream_inference_cost": cost},
    }
    if not details_missing:
        raw["prompt_tokens_details"] = {"cached_tokens": None}
        raw["completion_tokens_details"] = None
    usage, reported = normalize_usage(json.loads(json.dumps(raw)))
    assert usage == Usage(prompt, completion)
    assert type(reported) is Decimal
    # Exactly the digits on the wire (JSON's shortest repr), never binary float noise.
    assert reported == Decimal(repr(cost))


@relaxed
@given(token_counts, token_counts, maybe_missing, maybe_missing, st.data())
def test_anthropic_raw_usage_adds_cache_tokens_to_the_prompt(
    input_tokens: int,
    output_tokens: int,
    cache_read: int | None,
    cache_write: int | None,
    data: st.DataObject,
) -> None:
    raw: dict[str, int | None] = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    if data.draw(st.booleans()) or cache_read is not None or cache_write is not None:
        raw["cache_read_input_tokens"] = cache_read
        raw["cache_creation_input_tokens"] = cache_write
    usage, reported = normalize_usage(raw)
    read, write = cache_read or 0, cache_write or 0
    assert usage == Usage(input_tokens + read + write, output_tokens, read, 0, write)
    assert usage.uncached_prompt_tokens == input_tokens
    assert reported is None


@relaxed
@given(token_counts, token_counts, token_counts, token_counts)
def test_litellm_anthropic_shape_matches_the_raw_anthropic_shape(
    input_tokens: int, output_tokens: int, read: int, write: int
) -> None:
    # LiteLLM's ModelResponse.usage for Anthropic: prompt_tokens already includes the cache,
    # which it repeats at the top level and in prompt_tokens_details.
    litellm_shape = {
        "prompt_tokens": input_tokens + read + write,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + read + write + output_tokens,
        "prompt_tokens_details": {"cached_tokens": read, "cache_creation_tokens": write},
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write,
    }
    raw_anthropic = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write,
    }
    assert normalize_usage(litellm_shape) == normalize_usage(raw_anthropic)
