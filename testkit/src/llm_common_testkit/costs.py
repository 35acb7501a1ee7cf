"""Cost records shaped like the producers' (llm-client, web-search), without importing them.

The cost-sink protocol is structural: a consumer such as cost-tracker must accept anything with
the right attributes, and its tests must not import a producer to build one. These frozen
dataclasses are exactly that shape.

Example:
    >>> from decimal import Decimal
    >>> from llm_common_testkit.costs import Record, estimate
    >>> held = estimate(Decimal("0.02"))            # a fresh idempotency id
    >>> Record(held.idempotency_id, cost=Decimal("0.018"))  # doctest: +ELLIPSIS
    Record(idempotency_id=...)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

__all__ = ["Estimate", "Record", "estimate"]


@dataclass(frozen=True)
class Estimate:
    """Structurally what llm-client's ``CostEstimate`` is (reserved before a paid call)."""

    idempotency_id: str
    provider: str = "openrouter"
    model: str | None = "test/model"
    step: str | None = "generate"
    amount: Decimal | None = Decimal("0.01")


@dataclass(frozen=True)
class Record:
    """Structurally what llm-client's ``CostRecord`` is (settled after the call)."""

    idempotency_id: str
    provider: str = "openrouter"
    model: str | None = "test/model"
    step: str | None = "generate"
    cost: Decimal | None = Decimal("0.01")
    prompt_tokens: int = 10
    completion_tokens: int = 5
    cached_prompt_tokens: int = 2
    reasoning_tokens: int = 1
    success: bool = True
    error: str | None = None
    latency_ms: float = 12.5
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    metadata: dict[str, Any] = field(default_factory=dict)


def estimate(amount: Decimal | None = Decimal("0.01"), **kwargs: Any) -> Estimate:
    """A fresh :class:`Estimate` with a unique idempotency id."""
    return Estimate(idempotency_id=str(uuid.uuid4()), amount=amount, **kwargs)
