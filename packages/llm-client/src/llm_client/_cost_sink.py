"""The cost-sink protocol: how a paid call reports money to whoever keeps the books.

Every paid attempt goes through three steps::

    reservation = await sink.reserve(estimate)   # may raise to refuse the call (budget)
    try:
        ... the provider call ...
    except BaseException:
        await sink.release(reservation)          # failure or cancellation: nothing was spent
        raise                                    # (settle instead when the reply was billed)
    await sink.settle(reservation, record)       # the actual cost replaces the estimate

The protocol is structural: cost-tracker's ``CostTracker`` satisfies it without importing this
package, and web-search declares the same method names for search calls.

Budget refusals: a sink refuses a call by raising from ``reserve`` an exception whose class has
the class attribute ``is_budget_refusal = True`` (cost-tracker's ``BudgetExceededError`` sets
it; so does llm-client's own). llm-client re-raises such a refusal as
:class:`llm_client.BudgetExceededError` ``from`` the original, with its message, so an app
catching ``LLMClientError`` sees every refusal; the original stays on ``__cause__``. The check
looks at the attribute along the cause chain, never at class names, so no package imports
another. Any other exception from ``reserve`` propagates unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["CostEstimate", "CostRecord", "CostSink"]

ReservationT = TypeVar("ReservationT")


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """What a call may cost at most, announced before it is made.

    Attributes:
        idempotency_id: Unique id of this attempt; the settled record carries the same id.
        provider: Provider name (``openrouter``, ``zai``, ``openai``, ``anthropic``, ...).
        model: Model string as sent to the provider, or None for calls without a model.
        step: Application step the call belongs to (``generate``, ``research``, ...).
        amount: Upper-bound estimate in US dollars; None when the model has no known price.
    """

    idempotency_id: str
    provider: str
    model: str | None
    step: str | None
    amount: Decimal | None


@dataclass(frozen=True, slots=True)
class CostRecord:
    """What a call actually cost, reported after it returned (or failed after being billed).

    Attributes:
        idempotency_id: Same id as the estimate; sinks use it to store each record at most once.
        provider: Provider name.
        model: Model string, or None.
        step: Application step, or None.
        cost: Exact cost in US dollars; None when unpriced (never silently zero).
        prompt_tokens: Input tokens billed, including cached ones.
        completion_tokens: Output tokens billed, including reasoning ones.
        cached_prompt_tokens: The part of ``prompt_tokens`` served from the provider's cache.
        reasoning_tokens: The part of ``completion_tokens`` spent on hidden reasoning.
        success: Whether the attempt produced a usable answer.
        error: Error class name for failed attempts.
        latency_ms: Wall time of the attempt.
        timestamp: When the attempt finished (timezone-aware UTC).
        metadata: Free-form extra fields (attempt number, price source, request id, ...).
    """

    idempotency_id: str
    provider: str
    model: str | None
    step: str | None
    cost: Decimal | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    reasoning_tokens: int = 0
    success: bool = True
    error: str | None = None
    latency_ms: float = 0.0
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    metadata: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class CostSink(Protocol[ReservationT]):
    """Anything that can reserve, settle and release money for paid calls.

    To refuse a call, ``reserve`` raises an exception whose class sets
    ``is_budget_refusal = True``; the caller of ``LLMClient`` then gets
    :class:`llm_client.BudgetExceededError` (raised ``from`` it).
    """

    async def reserve(self, estimate: CostEstimate) -> ReservationT:
        """Hold ``estimate.amount`` against any budget.

        Raises:
            Exception: To refuse the call: an exception whose class sets
                ``is_budget_refusal = True``.
        """
        ...

    async def settle(self, reservation: ReservationT, record: CostRecord) -> None:
        """Replace the reservation with the actual cost in ``record`` (store it once)."""
        ...

    async def release(self, reservation: ReservationT) -> None:
        """Give the reservation back: the call failed unbilled or was cancelled."""
        ...
