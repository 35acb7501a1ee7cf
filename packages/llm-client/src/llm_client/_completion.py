"""What a call returns: the output plus every attempt it took and what they cost."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, TypeVar

from llm_client._usage import Usage, sum_costs

__all__ = ["AttemptRecord", "Completion", "total_cost"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One HTTP attempt of a call.

    Attributes:
        model: Model string (aliases resolved).
        provider: Provider that answered (or failed).
        attempt: 1-based number of this request for this model within the call (re-asks and
            retries both count).
        usage: Tokens billed (zero for attempts that got no reply).
        cost: Dollars billed: ``Decimal(0)`` for unbilled failures, None when the reply was
            billed but the model has no known price.
        error: Error class name when the attempt failed (``ValidationError`` for a reply that
            did not validate), else None.
        latency_ms: Wall time of the HTTP attempt.
        price_source: ``provider``, a price source (``genai-prices``, ``litellm``, ``bundled``,
            ``config``, ``registered``), ``unpriced`` or ``unbilled``.
    """

    model: str
    provider: str
    attempt: int
    usage: Usage
    cost: Decimal | None
    error: str | None
    latency_ms: float
    price_source: str = "unbilled"


def total_cost(attempts: Iterable[AttemptRecord]) -> Decimal | None:
    """Sum of the attempts' costs; None if any billed attempt is unpriced (never a silent 0)."""
    costs: list[Decimal] = []
    for attempt in attempts:
        if attempt.cost is None:
            return None
        costs.append(attempt.cost)
    return sum_costs(costs)


@dataclass(frozen=True, slots=True)
class Completion(Generic[T]):
    """A finished call.

    Attributes:
        output: The text, or the validated ``response_model`` instance.
        model: The model that produced ``output``.
        provider: Its provider.
        usage: Tokens of ALL attempts (retries, re-asks and failed fallbacks included).
        cost: Dollars of ALL attempts; None when any billed attempt was unpriced.
        attempts: Every HTTP attempt, in order.
        latency_ms: Wall time of the whole call.
    """

    output: T
    model: str
    provider: str
    usage: Usage
    cost: Decimal | None
    attempts: tuple[AttemptRecord, ...]
    latency_ms: float

    @classmethod
    def from_attempts(
        cls,
        output: T,
        *,
        model: str,
        provider: str,
        attempts: Iterable[AttemptRecord],
        latency_ms: float,
    ) -> Completion[T]:
        """Build a completion whose usage and cost are the sums over ``attempts``."""
        records = tuple(attempts)
        return cls(
            output=output,
            model=model,
            provider=provider,
            usage=sum((a.usage for a in records), Usage()),
            cost=total_cost(records),
            attempts=records,
            latency_ms=latency_ms,
        )
