"""Value types: cost records, reservations, alerts and report rows."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)
from pydantic_core import PydanticSerializationError, to_jsonable_python

from cost_tracker._errors import InvalidRecordError

__all__ = [
    "BreakdownRow",
    "BudgetAlert",
    "CostEstimateLike",
    "CostMetrics",
    "CostRecordLike",
    "Reservation",
    "default_project",
]

DEFAULT_PROJECT = "default"


def default_project() -> str:
    """Return the project name from ``PROJECT_NAME``, or ``"default"``."""
    return os.environ.get("PROJECT_NAME") or DEFAULT_PROJECT


class _CallLike(Protocol):
    """What identifies a paid call in both an estimate and a record."""

    @property
    def idempotency_id(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def model(self) -> str | None: ...
    @property
    def step(self) -> str | None: ...


class CostEstimateLike(_CallLike, Protocol):
    """The attributes of a cost estimate that cost-tracker reads (llm-client, web-search)."""

    @property
    def amount(self) -> Decimal | None: ...


class CostRecordLike(_CallLike, Protocol):
    """The attributes of a cost record that cost-tracker reads (llm-client, web-search)."""

    @property
    def cost(self) -> Decimal | None: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def cached_prompt_tokens(self) -> int: ...
    @property
    def reasoning_tokens(self) -> int: ...
    @property
    def success(self) -> bool: ...
    @property
    def error(self) -> str | None: ...
    @property
    def latency_ms(self) -> float: ...
    @property
    def timestamp(self) -> datetime: ...
    @property
    def metadata(self) -> dict[str, Any]: ...


class CostMetrics(BaseModel):
    """One paid (or attempted) call, as stored in ``cost_tracking``.

    Attributes:
        idempotency_id: Unique id; a record is stored at most once per id.
        timestamp: When the call finished; timezone-aware, normalised to UTC (naive is rejected).
        project: Project the spend belongs to (``PROJECT_NAME`` env, else ``"default"``).
        provider: Provider name (``openrouter``, ``zai``, ...).
        model: Model string, or None.
        step: Application step (``generate``, ``research``, ...), or None.
        cost: Exact cost in US dollars; None when unpriced (counted separately, never as 0).
        prompt_tokens: Input tokens billed.
        completion_tokens: Output tokens billed.
        cached_prompt_tokens: Part of the prompt served from the provider cache.
        reasoning_tokens: Part of the completion spent on hidden reasoning.
        success: Whether the call produced a usable answer.
        error: Error class name for failed calls.
        latency_ms: Wall time of the call in milliseconds.
        user_id: End user the call was made for (drives row-level security), or None.
        metadata: JSON-serialisable extra fields.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    idempotency_id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1)
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))
    project: str = Field(default_factory=default_project, min_length=1)
    provider: str = Field(min_length=1)
    model: str | None = None
    step: str | None = None
    cost: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    cached_prompt_tokens: int = Field(default=0, ge=0)
    reasoning_tokens: int = Field(default=0, ge=0)
    success: bool = True
    error: str | None = None
    latency_ms: float = Field(default=0.0, ge=0)
    user_id: uuid.UUID | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timestamp")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("timestamp must be timezone-aware (naive datetimes are ambiguous)")
        return value.astimezone(UTC)

    @field_validator("metadata")
    @classmethod
    def _json_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            # Stored as JSON everywhere: convert once here (sets, datetimes, Decimals...).
            converted: dict[str, Any] = to_jsonable_python(value)
        except PydanticSerializationError as exc:
            raise ValueError(f"metadata must be JSON-serialisable: {exc}") from None
        return converted

    @field_serializer("cost", when_used="json")
    def _fixed_point(self, value: Decimal | None) -> str | None:
        # Plain notation ("0.0000002", not "2E-7") for CSV/JSON readers and PostgreSQL alike.
        return None if value is None else format(value, "f")

    @classmethod
    def from_record(
        cls,
        record: CostRecordLike,
        *,
        project: str | None = None,
        user_id: uuid.UUID | str | None = None,
    ) -> CostMetrics:
        """Build metrics from any object with the cost-record attributes.

        Works with llm-client's ``CostRecord`` and web-search's record without importing
        either package.

        Args:
            record: Object exposing the ``CostRecordLike`` attributes.
            project: Project to file the record under (default: ``PROJECT_NAME`` or "default").
            user_id: End user, if known; also read from ``record.metadata["user_id"]``.

        Returns:
            The validated metrics.

        Raises:
            InvalidRecordError: The record's values are invalid (negative cost, naive time...).
        """
        metadata = dict(getattr(record, "metadata", None) or {})
        if user_id is None:
            user_id = metadata.get("user_id")
        try:
            return cls(
                idempotency_id=record.idempotency_id,
                timestamp=record.timestamp,
                project=project or default_project(),
                provider=record.provider,
                model=record.model,
                step=record.step,
                cost=record.cost,
                prompt_tokens=record.prompt_tokens,
                completion_tokens=record.completion_tokens,
                cached_prompt_tokens=record.cached_prompt_tokens,
                reasoning_tokens=record.reasoning_tokens,
                success=record.success,
                error=record.error,
                latency_ms=record.latency_ms,
                user_id=user_id,
                metadata=metadata,
            )
        except (ValidationError, AttributeError) as exc:
            raise InvalidRecordError(f"cannot store cost record: {exc}") from None

    def to_row(self) -> dict[str, Any]:
        """Return the record as a JSON-safe dict (Decimal and times as strings)."""
        return self.model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class Reservation:
    """Money held against the budgets for one call, between ``reserve`` and ``settle``.

    Attributes:
        id: Reservation id (unique per reserve call).
        project: Project whose budgets hold the money.
        amount: Amount held (0 when nothing had to be held).
        day: Daily period key (local date in the tracker's time zone).
        month: Monthly period key (first day of the month).
        held: Whether the store holds it (False when no budget is active: nothing to release).
        idempotency_id: Id of the estimate (and of the record that settles it).
    """

    id: str
    project: str
    amount: Decimal
    day: date
    month: date
    held: bool
    idempotency_id: str


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    """Spend crossed the alert threshold of a budget; delivered once per period and kind.

    Attributes:
        project: Project whose budget is concerned.
        kind: ``"daily"`` or ``"monthly"``.
        period: Period key (local date, first day for months).
        spent: Settled spend when the threshold was crossed.
        budget: The configured limit.
        threshold: The fraction of the budget that triggers the alert.
    """

    project: str
    kind: str
    period: date
    spent: Decimal
    budget: Decimal
    threshold: Decimal


@dataclass(frozen=True, slots=True)
class BreakdownRow:
    """One group of a cost breakdown.

    Attributes:
        key: Group value (model, step, project or ISO day); None for records without one.
        total_cost: Exact sum of priced costs in the group.
        calls: Number of records in the group.
        unpriced_calls: Records without a price (not included in ``total_cost``).
        failed_calls: Records with ``success = False``.
        prompt_tokens: Sum of prompt tokens.
        completion_tokens: Sum of completion tokens.
        cached_prompt_tokens: Sum of cached prompt tokens.
        reasoning_tokens: Sum of reasoning tokens.
    """

    key: str | None
    total_cost: Decimal
    calls: int
    unpriced_calls: int = 0
    failed_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    reasoning_tokens: int = 0
