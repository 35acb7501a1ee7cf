"""Zero lost records: the database vanishes mid-run, costs keep coming, all arrive exactly once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from cost_tracker import CostMetrics, CostTracker, Reservation, StoreUnavailableError
from llm_common_testkit import TcpProxy
from llm_common_testkit.costs import Record, estimate

pytestmark = pytest.mark.postgres


async def reserve_when_back(tracker: CostTracker) -> Reservation:
    """Poll (with a deadline) until the store answers again."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        try:
            return await tracker.reserve(estimate(Decimal("0.01")))
        except StoreUnavailableError:
            assert loop.time() < deadline, "the database never came back"
            await asyncio.sleep(0.05)


async def test_every_record_arrives_exactly_once_after_an_outage(
    postgres_db: str, tmp_path: Path
) -> None:
    from cost_tracker import PostgresCostStore

    sent: list[CostMetrics] = []

    def record(cost: str) -> CostMetrics:
        sent.append(CostMetrics(provider="zai", model="glm", cost=Decimal(cost), project="outage"))
        return sent[-1]

    with TcpProxy.for_url(postgres_db) as proxy:
        store = PostgresCostStore(
            proxy.url_for(postgres_db), max_size=4, connect_timeout=2.0, breaker_interval=0.2
        )
        tracker = CostTracker(
            store,
            daily_budget="100",
            project="outage",
            outbox_path=tmp_path / "outbox.sqlite",
            retry_interval=None,
        )
        async with tracker:
            held = await tracker.reserve(estimate(Decimal("0.5")))
            for _ in range(10):
                await tracker.log_cost(record("0.001"))
            proxy.stop()  # the database vanishes, live connections included
            for _ in range(30):
                await tracker.log_cost(record("0.0000002"))
            settled_id = str(uuid.uuid4())
            await tracker.settle(held, Record(settled_id, cost=Decimal("0.3")))
            with pytest.raises(StoreUnavailableError):
                await tracker.reserve(estimate(Decimal("0.01")))  # budgets fail closed
            assert await tracker.outbox_size() == 31
            # A write whose answer was lost gets replayed too: it must not count twice.
            await tracker.outbox.add(
                "settle", None, sent[0], tracker._context(sent[0].timestamp, "outage")
            )
            proxy.start()
            # Budgets work again as soon as the database answers (once the circuit breaker's
            # short interval has passed), before any flush.
            await tracker.release(await reserve_when_back(tracker))
            assert await tracker.flush_outbox() == 32
            assert await tracker.outbox_size() == 0
            assert await tracker.flush_outbox() == 0
            await tracker.log_cost(record("0.002"))  # and the live path works again
            status = await tracker.budget_status()

    expected = sum((r.cost or Decimal(0) for r in sent), Decimal("0.3"))
    assert (status.spent, status.reserved, status.open_reservations) == (expected, 0, 0)
    async with await psycopg.AsyncConnection.connect(postgres_db) as conn:
        cursor = await conn.execute(
            "select idempotency_id, count(*) from cost_tracking group by 1 having count(*) > 0"
        )
        counts = dict(await cursor.fetchall())
    assert counts == {**{r.idempotency_id: 1 for r in sent}, settled_id: 1}


async def test_an_outage_is_one_warning_not_one_per_write(
    postgres_db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from cost_tracker import PostgresCostStore

    caplog.set_level(logging.WARNING)
    with TcpProxy.for_url(postgres_db) as proxy:
        store = PostgresCostStore(proxy.url_for(postgres_db), connect_timeout=1.0)
        tracker = CostTracker(
            store, project="quiet", outbox_path=tmp_path / "outbox.sqlite", retry_interval=None
        )
        async with tracker:
            proxy.stop()
            for _ in range(20):
                await tracker.log_cost(CostMetrics(provider="p", cost=Decimal("1")))
            assert await tracker.outbox_size() == 20
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) <= 2, [r.getMessage() for r in warnings]  # the pool's and the outbox's


async def test_background_delivery_resumes_by_itself(postgres_db: str, tmp_path: Path) -> None:
    from cost_tracker import PostgresCostStore

    with TcpProxy.for_url(postgres_db) as proxy:
        store = PostgresCostStore(
            proxy.url_for(postgres_db), max_size=2, connect_timeout=2.0, breaker_interval=0.2
        )
        tracker = CostTracker(
            store, project="auto", outbox_path=tmp_path / "outbox.sqlite", retry_interval=0.05
        )
        async with tracker:
            await tracker.log_cost(CostMetrics(provider="p", cost=Decimal("1"), project="auto"))
            proxy.stop()
            for _ in range(5):
                await tracker.log_cost(CostMetrics(provider="p", cost=Decimal("1"), project="auto"))
            assert await tracker.outbox_size() == 5
            proxy.start()
            await asyncio.wait_for(tracker.wait_for_delivery(), timeout=60)
            assert await tracker.outbox_size() == 0
            assert await tracker.get_daily_cost() == 6
