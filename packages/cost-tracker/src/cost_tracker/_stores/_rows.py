"""Decoding of the SQL functions' jsonb answers, shared by the PostgreSQL and Supabase stores.

The functions return money as strings: JSON numbers would pass through floats in API clients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from cost_tracker._models import BreakdownRow, BudgetAlert, CostMetrics
from cost_tracker._stores._protocol import BudgetStatus, ReserveOutcome

__all__ = [
    "alerts_from_json",
    "breakdown_from_json",
    "budget_status_from_json",
    "record_from_json",
    "reserve_outcome_from_json",
]


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def reserve_outcome_from_json(data: Mapping[str, Any]) -> ReserveOutcome:
    """Decode ``cost_reserve``'s answer."""
    if data["granted"]:
        return ReserveOutcome(granted=True)
    return ReserveOutcome(
        granted=False,
        kind=data["kind"],
        period=date.fromisoformat(data["period"]),
        budget=_money(data["budget"]),
        spent=_money(data["spent"]) or Decimal(0),
        reserved=_money(data["reserved"]) or Decimal(0),
    )


def alerts_from_json(project: str, items: Sequence[Mapping[str, Any]]) -> tuple[BudgetAlert, ...]:
    """Decode the ``alerts`` list of ``cost_settle``/``cost_log``."""
    return tuple(
        BudgetAlert(
            project=project,
            kind=item["kind"],
            period=date.fromisoformat(item["period"]),
            spent=Decimal(item["spent"]),
            budget=Decimal(item["budget"]),
            threshold=Decimal(item["threshold"]),
        )
        for item in items
    )


def breakdown_from_json(items: Sequence[Mapping[str, Any]]) -> list[BreakdownRow]:
    """Decode ``cost_breakdown_json``."""
    return [
        BreakdownRow(
            key=item["key"],
            total_cost=Decimal(item["total_cost"]),
            calls=int(item["calls"]),
            unpriced_calls=int(item["unpriced_calls"]),
            failed_calls=int(item["failed_calls"]),
            prompt_tokens=int(item["prompt_tokens"]),
            completion_tokens=int(item["completion_tokens"]),
            cached_prompt_tokens=int(item["cached_prompt_tokens"]),
            reasoning_tokens=int(item["reasoning_tokens"]),
        )
        for item in items
    ]


def budget_status_from_json(data: Mapping[str, Any]) -> BudgetStatus:
    """Decode ``cost_budget_status``."""
    return BudgetStatus(
        spent=Decimal(data["spent"]),
        reserved=Decimal(data["reserved"]),
        budget=_money(data["budget"]),
        unpriced_calls=int(data["unpriced_calls"]),
        open_reservations=int(data["open_reservations"]),
    )


def record_from_json(item: Mapping[str, Any]) -> CostMetrics:
    """Decode one element of ``cost_records_json``."""
    fields = {key: value for key, value in item.items() if key != "row_id"}
    return CostMetrics.model_validate(fields)
