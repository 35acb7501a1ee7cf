"""Errors raised by cost-tracker.

The tree::

    CostTrackerError                      base of every error this package raises
    ├── BudgetExceededError               a reservation would cross a daily or monthly budget
    │   └── UnpricedCostError             an unpriced estimate while a budget is active
    ├── InvalidRecordError (ValueError)   a record or argument that cannot be stored as given
    │   └── ConfigurationError            a tracker or store set up with unusable settings
    ├── MissingExtraError (ImportError)   a backend whose optional extra is not installed
    └── StoreError                        the database answered with an error
        ├── StoreUnavailableError         the database cannot be reached right now
        └── StoreCorruptError             a local file that is not a valid SQLite database
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

__all__ = [
    "BudgetExceededError",
    "ConfigurationError",
    "CostTrackerError",
    "InvalidRecordError",
    "MissingExtraError",
    "StoreCorruptError",
    "StoreError",
    "StoreUnavailableError",
    "UnpricedCostError",
]


class CostTrackerError(Exception):
    """Base class of every error raised by cost-tracker."""


class BudgetExceededError(CostTrackerError):
    """A reservation was refused because it would cross a budget.

    ``is_budget_refusal = True`` marks it for the producers of the cost-sink protocol:
    llm-client and web-search recognise a refusal by this class attribute (over the cause
    chain, never by class name) and re-raise it as their own ``BudgetExceededError``
    (``from`` this one, same message), so an app catching ``LLMClientError`` sees it.

    Attributes:
        project: Project whose budget refused the reservation.
        kind: ``"daily"`` or ``"monthly"``.
        period: First day of the period (local date in the tracker's time zone).
        budget: The configured limit for the period.
        spent: Settled spend in the period when the reservation was refused.
        reserved: Spend held by other open reservations in the period.
        requested: The amount that was asked for (None when unpriced).
    """

    is_budget_refusal = True

    def __init__(
        self,
        *,
        project: str,
        kind: str,
        period: date,
        budget: Decimal,
        spent: Decimal,
        reserved: Decimal,
        requested: Decimal | None,
    ) -> None:
        self.project = project
        self.kind = kind
        self.period = period
        self.budget = budget
        self.spent = spent
        self.reserved = reserved
        self.requested = requested
        super().__init__(self._message())

    def _message(self) -> str:
        return (
            f"{self.kind} budget of ${self.budget:f} for project {self.project!r} "
            f"(period {self.period.isoformat()}) would be exceeded: spent ${self.spent:f}, "
            f"reserved ${self.reserved:f}, requested {_dollars(self.requested)}"
        )


class UnpricedCostError(BudgetExceededError):
    """An estimate without a price was refused because a budget is active.

    A budget cannot be enforced for a call whose cost is unknown, so such calls are refused
    rather than silently counted as free.
    """

    def _message(self) -> str:
        return (
            f"refusing an unpriced call: project {self.project!r} has an active "
            f"{self.kind} budget of ${self.budget:f} and the call has no known price"
        )


class InvalidRecordError(CostTrackerError, ValueError):
    """A record or argument cannot be stored or used as given."""


class ConfigurationError(InvalidRecordError):
    """A tracker or store was set up with settings it cannot use (budget, zone, timeouts...)."""


class MissingExtraError(CostTrackerError, ImportError):
    """A backend needs an optional extra that is not installed.

    Attributes:
        package: The distribution to install the extra of (``cost-tracker``).
        extra: The extra's name (``postgres``, ``supabase``).
    """

    def __init__(self, what: str, extra: str, package: str = "cost-tracker") -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{what} needs the {extra!r} extra: pip install '{package}[{extra}]'", name=what
        )


class StoreError(CostTrackerError):
    """The storage backend answered with an error that retrying will not fix."""


class StoreUnavailableError(StoreError):
    """The storage backend cannot be reached (connection refused, dropped, timed out)."""


class StoreCorruptError(StoreError):
    """A local SQLite file (store or outbox) is not a valid database.

    Attributes:
        path: The file.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(message)


def _dollars(amount: Decimal | None) -> str:
    return "an unpriced amount" if amount is None else f"${amount:f}"
