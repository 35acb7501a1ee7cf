"""A crashed holder's reservations come back within seconds (heartbeat), not after the TTL."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from cost_tracker import BudgetExceededError, CostStore, CostTracker, LocalCostStore
from llm_common_testkit.costs import estimate

HOLDER = r"""
import asyncio, sys, uuid
from dataclasses import dataclass
from decimal import Decimal
from cost_tracker import CostTracker, LocalCostStore

@dataclass
class Estimate:
    idempotency_id: str
    provider: str = "p"
    model: str = "m"
    step: str = "s"
    amount: Decimal = Decimal("0.9")

async def main(backend: str, where: str, outbox: str, key: str = "") -> None:
    if backend == "local":
        store = LocalCostStore(where)
    elif backend == "postgres":
        from cost_tracker import PostgresCostStore
        store = PostgresCostStore(where, max_size=2)
    else:
        from cost_tracker import SupabaseCostStore
        store = await SupabaseCostStore.connect(where, key)
    tracker = CostTracker(store, daily_budget="1", project="crash", heartbeat_interval=0.2,
                          holder_timeout=1.0, outbox_path=outbox, retry_interval=None)
    async with tracker:
        await tracker.reserve(Estimate(str(uuid.uuid4())))
        print("held", flush=True)
        await asyncio.Event().wait()  # holds until SIGKILLed

asyncio.run(main(*sys.argv[1:]))
"""

HOLDER_TIMEOUT = 1.0


@pytest.mark.parametrize(
    "backend",
    [
        "local",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("supabase", marks=pytest.mark.postgres),
    ],
)
async def test_a_killed_holders_reservation_comes_back_within_seconds(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    key = ""
    if backend == "local":
        where = str(tmp_path / "costs")
    elif backend == "postgres":
        where = request.getfixturevalue("postgres_db")
    else:
        server = request.getfixturevalue("supabase_server")
        where, key = server.url, server.service_key
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, backend, where, str(tmp_path / "child-outbox.sqlite"), key],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.to_thread(child.stdout.readline)
        assert line.strip() == "held"
        store: CostStore
        if backend == "local":
            store = LocalCostStore(where)
        elif backend == "postgres":
            from cost_tracker import PostgresCostStore

            store = PostgresCostStore(where, max_size=2)
        else:
            from cost_tracker import SupabaseCostStore

            store = await SupabaseCostStore.connect(where, key)
        tracker = CostTracker(
            store,
            daily_budget="1",
            project="crash",
            reservation_ttl=3600,
            outbox_path=tmp_path / "outbox.sqlite",
            retry_interval=None,
        )
        async with tracker:
            loop = asyncio.get_running_loop()
            # While the holder lives its heartbeat keeps the hold, well past holder_timeout.
            alive_until = loop.time() + 2.5 * HOLDER_TIMEOUT
            while loop.time() < alive_until:
                with pytest.raises(BudgetExceededError):
                    await tracker.reserve(estimate(Decimal("0.5")))
                await asyncio.sleep(0.2)
            assert child.poll() is None
            child.send_signal(signal.SIGKILL)
            await asyncio.to_thread(child.wait, 30)
            killed = loop.time()
            while True:  # poll with a deadline: the room must come back within seconds
                try:
                    reservation = await tracker.reserve(estimate(Decimal("0.5")))
                    break
                except BudgetExceededError:
                    assert loop.time() - killed < HOLDER_TIMEOUT + 3.0, "hold not reclaimed"
                    await asyncio.sleep(0.05)
            status = await tracker.budget_status()
            assert (status.reserved, status.open_reservations) == (Decimal("0.5"), 1)
            await tracker.release(reservation)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_holder_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="holder_timeout"):
        CostTracker(LocalCostStore(tmp_path), heartbeat_interval=5, holder_timeout=5)
