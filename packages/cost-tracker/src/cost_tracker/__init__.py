"""Exact Decimal LLM and search cost tracking with race-free daily/monthly budgets.

Example:
    >>> from cost_tracker import CostMetrics, CostTracker
    >>> async with CostTracker(daily_budget=Decimal("5")) as tracker:  # doctest: +SKIP
    ...     await tracker.log_cost(CostMetrics(provider="zai", cost=Decimal("0.01")))
"""

from importlib.metadata import version as _version
from typing import TYPE_CHECKING

from cost_tracker._errors import (
    BudgetExceededError,
    ConfigurationError,
    CostTrackerError,
    InvalidRecordError,
    MissingExtraError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
    UnpricedCostError,
)
from cost_tracker._models import (
    BreakdownRow,
    BudgetAlert,
    CostEstimateLike,
    CostMetrics,
    CostRecordLike,
    Reservation,
)
from cost_tracker._stores._protocol import BudgetStatus, CostStore
from cost_tracker._stores.local import LocalCostStore
from cost_tracker._tracker import AlertCallback, CostTracker

if TYPE_CHECKING:  # type checkers see the lazily imported backends' real classes
    from cost_tracker._stores.postgres import PostgresCostStore
    from cost_tracker._stores.supabase import SupabaseCostStore

__version__ = _version("cost-tracker")


def __getattr__(name: str) -> object:
    # The PostgreSQL and Supabase backends import their drivers lazily (optional extras).
    if name == "PostgresCostStore":
        from cost_tracker._stores.postgres import PostgresCostStore

        return PostgresCostStore
    if name == "SupabaseCostStore":
        from cost_tracker._stores.supabase import SupabaseCostStore

        return SupabaseCostStore
    raise AttributeError(f"module 'cost_tracker' has no attribute {name!r}")


__all__ = [
    "AlertCallback",
    "BreakdownRow",
    "BudgetAlert",
    "BudgetExceededError",
    "BudgetStatus",
    "ConfigurationError",
    "CostEstimateLike",
    "CostMetrics",
    "CostRecordLike",
    "CostStore",
    "CostTracker",
    "CostTrackerError",
    "InvalidRecordError",
    "LocalCostStore",
    "MissingExtraError",
    "PostgresCostStore",
    "Reservation",
    "StoreCorruptError",
    "StoreError",
    "StoreUnavailableError",
    "SupabaseCostStore",
    "UnpricedCostError",
    "__version__",
]
