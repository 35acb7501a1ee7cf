"""The cost-sink protocol: how a paid search call reports money to whoever keeps the books.

Structurally identical to llm-client's (same method and attribute names) so cost-tracker's
``CostTracker`` satisfies both without importing either package. Each upstream call::

    reservation = await sink.reserve(estimate)   # may raise to refuse the call (budget)
    try:
        ... the provider call ...
    except BaseException:
        await sink.release(reservation)          # failure or cancellation: nothing was billed
        raise
    await sink.settle(reservation, record)       # the actual cost replaces the estimate

Cache hits make no upstream call and so report nothing; they are counted as dollars saved in
``CacheStats`` instead.
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
    """What a search call may cost at most, announced before it is made.

    Attributes:
        idempotency_id: Unique id of this attempt; the settled record carries the same id.
        provider: Provider name (``zai``, ``tavily``).
        model: Search engine (``search-prime``) or None.
        step: Application step (``research`` by default).
        amount: Price of one call in US dollars.
    """

    idempotency_id: str
    provider: str
    model: str | None
    step: str | None
    amount: Decimal | None


@dataclass(frozen=True, slots=True)
class CostRecord:
    """What a search call actually cost.

    Attributes:
        idempotency_id: Same id as the estimate; sinks store each record at most once.
        provider: Provider name.
        model: Search engine, or None.
        step: Application step, or None.
        cost: Cost in US dollars.
        prompt_tokens: Always 0 for searches (kept for the shared record shape).
        completion_tokens: Always 0 for searches.
        cached_prompt_tokens: Always 0 for searches.
        reasoning_tokens: Always 0 for searches.
        success: Whether the call produced a usable answer.
        error: Error class name for failed calls.
        latency_ms: Wall time of the call.
        timestamp: When the call finished (timezone-aware UTC).
        metadata: Extra fields: ``kind="web_search"``, ``request_id``, ``domain``, ``attempt``.
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
    """Anything that can reserve, settle and release money for paid calls."""

    async def reserve(self, estimate: CostEstimate) -> ReservationT:
        """Hold ``estimate.amount`` against any budget; raise to refuse the call."""
        ...

    async def settle(self, reservation: ReservationT, record: CostRecord) -> None:
        """Replace the reservation with the actual cost in ``record`` (store it once)."""
        ...

    async def release(self, reservation: ReservationT) -> None:
        """Give the reservation back: the call failed unbilled or was cancelled."""
        ...
