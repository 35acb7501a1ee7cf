"""``InMemoryBudget``: a simple in-process cost sink with a hard dollar limit.

For scripts, tests and single-process apps. cost-tracker ships the durable, multi-replica one
(PostgreSQL reservations); both satisfy :class:`~llm_client.CostSink`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal

from llm_client._cost_sink import CostEstimate, CostRecord
from llm_client._errors import BudgetExceededError, UnpricedModelError

__all__ = ["InMemoryBudget", "Reservation"]


@dataclass(frozen=True, slots=True)
class Reservation:
    """Money held for one attempt until it is settled or released.

    Attributes:
        idempotency_id: The attempt's id.
        amount: Dollars held.
    """

    idempotency_id: str
    amount: Decimal


class InMemoryBudget:
    """Refuses calls that could push spending past ``limit``; records what was spent.

    A call is admitted when ``spent + reserved + estimate <= limit``. A model without a known
    price is refused (:class:`UnpricedModelError`): a budget cannot bound what it cannot price.

    Attributes:
        limit: The most this budget ever spends, in US dollars.
        records: Every settled :class:`CostRecord`, in order.
        released: Ids of reservations given back unspent.
    """

    def __init__(self, limit: Decimal) -> None:
        """Create a budget.

        Args:
            limit: Dollar limit (a Decimal >= 0).

        Raises:
            ValueError: If ``limit`` is not a non-negative Decimal.
        """
        if not isinstance(limit, Decimal) or not limit.is_finite() or limit < 0:
            raise ValueError("limit must be a finite Decimal >= 0")
        self.limit = limit
        self.records: list[CostRecord] = []
        self.released: list[str] = []
        self._spent = Decimal(0)
        self._held: dict[str, Decimal] = {}
        # A lock, not asyncio: the sink may be shared by clients on different event loops.
        self._lock = threading.Lock()

    @property
    def spent(self) -> Decimal:
        """Dollars settled so far (unpriced records count as nothing known)."""
        with self._lock:
            return self._spent

    @property
    def reserved(self) -> Decimal:
        """Dollars currently held for attempts in flight."""
        with self._lock:
            return sum(self._held.values(), Decimal(0))

    @property
    def remaining(self) -> Decimal:
        """Dollars still available."""
        with self._lock:
            return self.limit - self._spent - sum(self._held.values(), Decimal(0))

    async def reserve(self, estimate: CostEstimate) -> Reservation:
        """Hold the estimate, or refuse.

        Raises:
            UnpricedModelError: If ``estimate.amount`` is None.
            BudgetExceededError: If the estimate does not fit in what remains.
        """
        if estimate.amount is None:
            raise UnpricedModelError(
                f"model {estimate.model!r} has no known price; a budget cannot admit it"
            )
        with self._lock:
            held = sum(self._held.values(), Decimal(0))
            if self._spent + held + estimate.amount > self.limit:
                raise BudgetExceededError(
                    f"budget of ${self.limit} would be exceeded: spent ${self._spent}, "
                    f"reserved ${held}, this call up to ${estimate.amount}"
                )
            self._held[estimate.idempotency_id] = estimate.amount
        return Reservation(estimate.idempotency_id, estimate.amount)

    async def settle(self, reservation: Reservation, record: CostRecord) -> None:
        """Replace the hold with the actual cost (once per id)."""
        with self._lock:
            if self._held.pop(reservation.idempotency_id, None) is None:
                return  # already settled or released: store each record at most once
            if record.cost is not None:
                self._spent += record.cost
            self.records.append(record)

    async def release(self, reservation: Reservation) -> None:
        """Give the hold back: the attempt was not billed."""
        with self._lock:
            if self._held.pop(reservation.idempotency_id, None) is not None:
                self.released.append(reservation.idempotency_id)
