"""Token usage in one shape, whatever the provider reported.

Every provider counts tokens a little differently; :class:`Usage` has OpenAI's semantics:
``prompt_tokens`` **includes** cache reads (``cached_prompt_tokens``) and cache writes
(``cache_write_tokens``), ``completion_tokens`` **includes** ``reasoning_tokens``. The parts are
subsets of the totals, and :func:`cost_of` bills each token exactly once, in exact Decimal.

Shapes understood by :func:`normalize_usage`:

* OpenAI ``chat.completion`` usage (dict or SDK ``CompletionUsage``) and z.ai GLM's:
  ``prompt_tokens_details.cached_tokens``, ``completion_tokens_details.reasoning_tokens``;
* OpenRouter: the same plus ``cost`` (dollars, a JSON number), ``is_byok``,
  ``cost_details.upstream_inference_cost``, ``prompt_tokens_details.cache_write_tokens``;
* LiteLLM's ``ModelResponse.usage`` for Anthropic: ``prompt_tokens`` already includes cache
  reads/writes, repeated as ``cache_read_input_tokens`` / ``cache_creation_input_tokens``;
* Anthropic's raw usage: ``input_tokens`` *excludes* cache reads and writes, so they are added;
* OpenAI Responses API: ``input_tokens`` (inclusive), ``output_tokens`` and their details.
"""

from __future__ import annotations

import decimal
import logging
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from llm_client._errors import ConfigurationError, LLMClientError
from llm_client._response import get_field as _get

__all__ = [
    "ModelPrice", "PriceSource", "Usage", "UsageError", "cost_of", "normalize_usage", "sum_costs",
]  # fmt: skip

logger = logging.getLogger(__name__)


class UsageError(LLMClientError, ValueError):
    """Token counts that cannot describe a real call (negative, or parts larger than totals)."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one call (or a sum of calls) consumed, with OpenAI's inclusive semantics.

    Attributes:
        prompt_tokens: Every input token, including cached reads and cache writes.
        completion_tokens: Every output token, including reasoning tokens.
        cached_prompt_tokens: The part of ``prompt_tokens`` read from the provider's cache.
        reasoning_tokens: The part of ``completion_tokens`` spent on hidden reasoning.
        cache_write_tokens: The part of ``prompt_tokens`` written to the provider's cache
            (Anthropic bills these above the normal input price).

    Raises:
        UsageError: If a count is negative or not an int, or a part exceeds its total.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0

    def __post_init__(self) -> None:
        for name in (
            "prompt_tokens",
            "completion_tokens",
            "cached_prompt_tokens",
            "reasoning_tokens",
            "cache_write_tokens",
        ):
            value = getattr(self, name)
            # bool is an int subclass; True tokens is a bug, not a count.
            if not isinstance(value, int) or isinstance(value, bool):
                raise UsageError(f"{name} must be an int, got {type(value).__name__}")
            if value < 0:
                raise UsageError(f"{name} must be >= 0, got {value}")
        if self.cached_prompt_tokens + self.cache_write_tokens > self.prompt_tokens:
            raise UsageError(
                "cached_prompt_tokens + cache_write_tokens "
                f"({self.cached_prompt_tokens} + {self.cache_write_tokens}) "
                f"exceeds prompt_tokens ({self.prompt_tokens})"
            )
        if self.reasoning_tokens > self.completion_tokens:
            raise UsageError(
                f"reasoning_tokens ({self.reasoning_tokens}) exceeds "
                f"completion_tokens ({self.completion_tokens})"
            )

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens (cached and reasoning tokens are already inside)."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def uncached_prompt_tokens(self) -> int:
        """Input tokens billed at the normal input price (neither cache reads nor writes)."""
        return self.prompt_tokens - self.cached_prompt_tokens - self.cache_write_tokens

    @classmethod
    def zero(cls) -> Usage:
        """The identity for ``+``: no tokens at all."""
        return _ZERO

    def __add__(self, other: object) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_prompt_tokens=self.cached_prompt_tokens + other.cached_prompt_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )

    def __radd__(self, other: object) -> Usage:
        # Lets sum(usages) work: sum starts from the int 0.
        if type(other) is int and other == 0:
            return self
        if isinstance(other, Usage):
            return other + self
        return NotImplemented


_ZERO = Usage()

PriceSource = Literal["provider", "registered", "config", "bundled", "genai-prices", "litellm"]
"""Who set a price: the provider's own report, ``register_model``, the configuration's
``[prices]``, llm-client's dated table, the genai-prices library, or LiteLLM's map."""


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Per-token prices of one model in US dollars, exact Decimals.

    Attributes:
        input: Price of one uncached input token.
        output: Price of one output token.
        cached_input: Price of one input token read from the prompt cache; None: ``input``.
        cache_write: Price of one input token written to the prompt cache; None: ``input``.
        reasoning: Price of one reasoning token (a few models bill them apart from visible
            output); None: ``output``.
        source: Who set the price.
        as_of: When the price was checked (llm-client's table, the configuration); None for
            the libraries' maps.
        tiers: Long-context prices as ``(threshold, price)``, ascending: a call whose prompt
            has more than ``threshold`` tokens is billed entirely at that tier's price.
    """

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    source: PriceSource = "registered"
    as_of: date | None = None
    reasoning: Decimal | None = None
    tiers: tuple[tuple[int, ModelPrice], ...] = ()

    def __post_init__(self) -> None:
        for name in ("input", "output", "cached_input", "cache_write", "reasoning"):
            value = getattr(self, name)
            if value is None and name not in ("input", "output"):
                continue
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise ConfigurationError(
                    f"ModelPrice.{name} must be a finite Decimal >= 0, got {value!r}"
                )
        if [t for t, _ in self.tiers] != sorted({t for t, _ in self.tiers}):
            raise ConfigurationError("ModelPrice.tiers must have distinct ascending thresholds")

    def for_prompt(self, prompt_tokens: int) -> ModelPrice:
        """The price that applies to a call with ``prompt_tokens`` input tokens."""
        chosen = self
        for threshold, tier in self.tiers:
            if prompt_tokens > threshold:
                chosen = tier
        return chosen


def _exact() -> AbstractContextManager[decimal.Context]:
    """A Decimal context wide enough that no real bill rounds; if one would, it raises.

    FloatOperation is trapped too: a float mixed into money arithmetic is a bug.
    """
    traps = [decimal.Inexact, InvalidOperation, decimal.DivisionByZero, decimal.Overflow]
    return decimal.localcontext(decimal.Context(prec=80, traps=[*traps, decimal.FloatOperation]))


def sum_costs(costs: Iterable[Decimal]) -> Decimal:
    """Exact total of several costs (e.g. every attempt of a call).

    Decimal's default context keeps 28 significant digits, which can round a sum of costs
    with many decimal places (LiteLLM prices such as ``1.1428571428571428E-6``); this never does.

    Args:
        costs: Costs in US dollars.

    Returns:
        Their exact sum (``Decimal(0)`` for none).
    """
    with _exact():
        return sum(costs, Decimal(0))


def cost_of(usage: Usage, price: ModelPrice) -> Decimal:
    """Exact cost of one call's ``usage`` at ``price``; every token is billed exactly once.

    Cached reads and cache writes are parts of ``prompt_tokens`` and reasoning tokens are part
    of ``completion_tokens``, so each part is priced instead of (not on top of) the base rate.
    No rounding happens here: quantize only for display. Without long-context tiers the cost
    is linear in usage; with tiers, price each attempt separately and add the costs.

    Args:
        usage: Normalised token counts of one call.
        price: Per-token prices.

    Returns:
        The cost in US dollars as an exact Decimal.
    """
    price = price.for_prompt(usage.prompt_tokens)
    cached_price = price.input if price.cached_input is None else price.cached_input
    write_price = price.input if price.cache_write is None else price.cache_write
    reasoning_price = price.output if price.reasoning is None else price.reasoning
    with _exact():
        return (
            usage.uncached_prompt_tokens * price.input
            + usage.cached_prompt_tokens * cached_price
            + usage.cache_write_tokens * write_price
            + (usage.completion_tokens - usage.reasoning_tokens) * price.output
            + usage.reasoning_tokens * reasoning_price
        )


def _count(value: object, field: str) -> int:
    """Coerce a reported token count to int: None and junk become 0, negatives raise."""
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, int):
        number = value
    elif isinstance(value, float | Decimal | str):
        try:
            as_decimal = Decimal(str(value))
        except InvalidOperation:
            logger.warning("ignoring non-numeric token count %s=%r", field, value)
            return 0
        if not as_decimal.is_finite() or as_decimal != as_decimal.to_integral_value():
            logger.warning("ignoring non-integral token count %s=%r", field, value)
            return 0
        number = int(as_decimal)
    else:
        return 0
    if number < 0:
        raise UsageError(f"provider reported a negative token count: {field}={number}")
    return number


def _money(value: object) -> Decimal | None:
    """Parse a provider-reported dollar amount exactly (floats via their shortest repr)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int | float | str):
        try:
            # str() of a float is its shortest round-tripping repr: 0.00042 stays 0.00042.
            amount = Decimal(str(value))
        except InvalidOperation:
            logger.warning("ignoring non-numeric provider cost %r", value)
            return None
    else:
        return None
    if not amount.is_finite() or amount < 0:
        logger.warning("ignoring invalid provider cost %r", value)
        return None
    return amount


def _first(*values: object) -> object:
    """The first value that is not None."""
    for value in values:
        if value is not None:
            return value
    return None


def _reported_cost(raw: object) -> Decimal | None:
    """Dollars the provider says it charged (OpenRouter), including BYOK upstream charges."""
    cost = _money(_get(raw, "cost"))
    if cost is None:
        return None
    # With "bring your own key", OpenRouter's `cost` is only its own fee; the upstream provider
    # bills the user's key separately. Without BYOK the upstream figure repeats `cost`.
    if _get(raw, "is_byok") is True:
        upstream = _money(_get(_get(raw, "cost_details"), "upstream_inference_cost"))
        if upstream is not None:
            return sum_costs((cost, upstream))
    return cost


def normalize_usage(raw: Mapping[str, Any] | object) -> tuple[Usage, Decimal | None]:
    """Turn any provider's usage report into a :class:`Usage` and the provider-reported cost.

    Args:
        raw: The ``usage`` object of a response: a dict (parsed JSON) or an object such as the
            openai SDK's ``CompletionUsage`` or LiteLLM's ``Usage``. None means "no usage".

    Returns:
        ``(usage, reported_cost)``: ``reported_cost`` is the exact Decimal the provider said it
        charged (OpenRouter's ``usage.cost``), or None when the provider did not say.

    Raises:
        UsageError: If the provider reported a negative token count.
    """
    if raw is None:
        return _ZERO, None

    prompt_details = _first(_get(raw, "prompt_tokens_details"), _get(raw, "input_tokens_details"))
    completion_details = _first(
        _get(raw, "completion_tokens_details"), _get(raw, "output_tokens_details")
    )
    cache_read_top = _get(raw, "cache_read_input_tokens")
    cache_write_top = _get(raw, "cache_creation_input_tokens")

    prompt_value = _get(raw, "prompt_tokens")
    if prompt_value is not None:
        # OpenAI / OpenRouter / z.ai / LiteLLM shape: prompt_tokens is inclusive.
        prompt = _count(prompt_value, "prompt_tokens")
        cached = _count(
            _first(
                _get(prompt_details, "cached_tokens"),
                cache_read_top,
                _get(raw, "prompt_cache_hit_tokens"),  # DeepSeek
            ),
            "cached_tokens",
        )
        write = _count(
            _first(
                _get(prompt_details, "cache_write_tokens"),  # OpenRouter
                _get(prompt_details, "cache_creation_tokens"),  # LiteLLM
                cache_write_top,
            ),
            "cache_write_tokens",
        )
    else:
        input_value = _get(raw, "input_tokens")
        prompt = _count(input_value, "input_tokens")
        if prompt_details is None and (cache_read_top is not None or cache_write_top is not None):
            # Anthropic's raw usage: input_tokens excludes cache reads and cache writes.
            cached = _count(cache_read_top, "cache_read_input_tokens")
            write = _count(cache_write_top, "cache_creation_input_tokens")
            prompt += cached + write
        else:
            # OpenAI Responses API: input_tokens is inclusive, details say what was cached.
            cached = _count(_get(prompt_details, "cached_tokens"), "cached_tokens")
            write = 0

    completion = _count(
        _first(_get(raw, "completion_tokens"), _get(raw, "output_tokens")), "completion_tokens"
    )
    reasoning = _count(_get(completion_details, "reasoning_tokens"), "reasoning_tokens")

    if cached + write > prompt:
        # The provider counted cache tokens outside the prompt total (Anthropic's convention
        # under an OpenAI field name). Adding them back bills each token once, never zero times.
        logger.warning(
            "usage reports %d cached + %d cache-write tokens above %d prompt tokens; "
            "treating prompt_tokens as excluding the cache",
            cached,
            write,
            prompt,
        )
        prompt += cached + write
    if reasoning > completion:
        logger.warning(
            "usage reports %d reasoning tokens above %d completion tokens; "
            "treating completion_tokens as excluding reasoning",
            reasoning,
            completion,
        )
        completion += reasoning

    usage = Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_prompt_tokens=cached,
        reasoning_tokens=reasoning,
        cache_write_tokens=write,
    )
    return usage, _reported_cost(raw)
