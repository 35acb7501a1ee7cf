"""Budgets under contention: exact grants across processes and connections, and no leaks."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from cost_tracker import BudgetExceededError, CostTracker, LocalCostStore
from llm_common_testkit.costs import Record, estimate

from .conftest import MakeTracker

WORKER = r"""
import asyncio, sys, uuid
from dataclasses import dataclass
from decimal import Decimal
from cost_tracker import BudgetExceededError, CostTracker, LocalCostStore

@dataclass
class Estimate:
    idempotency_id: str
    provider: str = "p"
    model: str = "m"
    step: str = "s"
    amount: Decimal = Decimal("0.01")

async def main(path: str, count: int) -> None:
    tracker = CostTracker(LocalCostStore(path), daily_budget="1.23", project="race",
                          outbox_path=path + "/outbox.sqlite", retry_interval=None)
    async with tracker:
        await tracker.budget_status()  # open the database before the start signal
        print("ready", flush=True)
        sys.stdin.readline()
        results = await asyncio.gather(
            *(tracker.reserve(Estimate(str(uuid.uuid4()))) for _ in range(count)),
            return_exceptions=True,
        )
    granted = sum(not isinstance(r, BaseException) for r in results)
    refused = sum(isinstance(r, BudgetExceededError) for r in results)
    print(granted, refused, flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def test_local_reservations_are_exact_across_processes(tmp_path: Path) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path), "50"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for process in processes:  # every worker is connected and waiting
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
        for process in processes:  # start them together
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [process.communicate(timeout=120)[0].split() for process in processes]
    finally:
        for process in processes:
            process.kill() if process.poll() is None else None
    assert all(process.returncode == 0 for process in processes)
    granted = sum(int(out[0]) for out in outputs)
    refused = sum(int(out[1]) for out in outputs)
    assert (granted, refused) == (123, 77)

    async def status() -> tuple[Decimal, int]:
        tracker = CostTracker(LocalCostStore(tmp_path), project="race", retry_interval=None)
        async with tracker:
            current = await tracker.budget_status()
        return current.reserved, current.open_reservations

    assert asyncio.run(status()) == (Decimal("1.23"), 123)


@pytest.mark.postgres
@pytest.mark.parametrize(("daily", "monthly", "fits"), [("1.37", None, 137), ("1.37", "1.00", 100)])
async def test_postgres_reservations_are_exact_with_20_connections(
    postgres_db: str, tmp_path: Path, daily: str, monthly: str | None, fits: int
) -> None:
    from cost_tracker import PostgresCostStore

    store = PostgresCostStore(postgres_db, min_size=20, max_size=20)
    tracker = CostTracker(
        store,
        daily_budget=daily,
        monthly_budget=monthly,
        project="race",
        outbox_path=tmp_path / "outbox.sqlite",
        retry_interval=None,
    )
    async with tracker:
        results = await asyncio.gather(
            *(tracker.reserve(estimate(Decimal("0.01"))) for _ in range(200)),
            return_exceptions=True,
        )
        granted = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, BudgetExceededError)]
        assert (len(granted), len(refused)) == (fits, 200 - fits)
        daily_status = await tracker.budget_status("daily")
        monthly_status = await tracker.budget_status("monthly")
        held = Decimal("0.01") * fits
        assert (daily_status.reserved, daily_status.open_reservations) == (held, fits)
        assert monthly_status.reserved == held
        await asyncio.gather(*(tracker.release(reservation) for reservation in granted))
        assert (await tracker.budget_status("daily")).reserved == 0
        assert (await tracker.budget_status("monthly")).reserved == 0


async def test_cancellations_and_failures_leak_no_reservation(make_tracker: MakeTracker) -> None:
    tracker = await make_tracker(daily_budget="100")
    gate = asyncio.Event()
    entered = [asyncio.Event() for _ in range(120)]

    async def paid_call(i: int) -> str:
        # The shape of llm-client's attempt: reserve, call, release on any failure, settle.
        entered[i].set()
        reservation = await tracker.reserve(estimate(Decimal("0.05")))
        try:
            await gate.wait()
            if i % 4 == 1:
                raise RuntimeError("provider failed")
        except BaseException:
            await tracker.release(reservation)
            raise
        await tracker.settle(reservation, Record(str(uuid.uuid4()), cost=Decimal("0.01")))
        return "settled"

    tasks = [asyncio.ensure_future(paid_call(i)) for i in range(120)]
    for task in tasks[::10]:
        task.cancel()  # cancelled before it starts
    await asyncio.gather(*(entered[i].wait() for i in range(120) if i % 10))
    for task in tasks[3::10]:
        task.cancel()  # cancelled inside reserve, or while the call is in flight
    gate.set()
    for task in tasks[7::10]:
        task.cancel()  # cancelled after the call: release, or settle already under way
    results = await asyncio.gather(*tasks, return_exceptions=True)
    await tracker.aclose()  # waits for shielded writes and give-backs still running
    checker = await make_tracker(daily_budget="100")
    status = await checker.budget_status()
    settled = results.count("settled")
    assert settled > 0
    assert (status.reserved, status.open_reservations) == (0, 0)
    # A task cancelled while its (shielded) settle runs still pays: at most 12 such tasks.
    assert Decimal("0.01") * settled <= status.spent <= Decimal("0.01") * (settled + 12)
    assert await checker.get_daily_cost() == status.spent
