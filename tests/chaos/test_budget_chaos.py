"""A budget that binds, under provider faults and three processes' worth of trackers.

200 calls race for a daily budget that pays for about half of them, through three
``CostTracker``s (as three app replicas would) on one PostgreSQL database, while the fake
provider answers with 5xx, hangs, 429s and malformed bodies. Afterwards: the spend never
crossed the budget, the ledger equals what the provider served, no reservation is left, and
every refusal reached the caller as ``llm_client.BudgetExceededError`` (an ``LLMClientError``),
whatever the sink raised.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.postgres

CALLS = 200
REPLICAS = 3
BUDGET = Decimal("0.05")


async def test_budget_binds_under_faults(
    chaos: Any, postgres_db: str, fresh_llm_server: Any, tmp_path: Path
) -> None:
    from cost_tracker import CostTracker, PostgresCostStore
    from llm_client import (
        BudgetExceededError,
        LLMClient,
        LLMClientError,
        LLMConfig,
        ProviderSettings,
    )

    faults = chaos.LLMChaos(schedule={}, burst_len=0)
    fresh_llm_server.handler = faults
    config = LLMConfig(
        providers={"openai": ProviderSettings(base_url=fresh_llm_server.base_url, api_key="k")},
        default_timeout=1.0,
    )
    trackers = [
        CostTracker(
            PostgresCostStore(postgres_db, max_size=4),
            daily_budget=BUDGET,
            project="budget-chaos",
            outbox_path=tmp_path / f"outbox-{i}.sqlite",
            retry_interval=0.2,
        )
        for i in range(REPLICAS)
    ]
    clients = [LLMClient(cost_sink=t, config=config, retry=chaos.llm_retry()) for t in trackers]
    outcomes: Counter[str] = Counter()
    wrong: list[str] = []

    async def call(i: int) -> None:
        llm = clients[i % REPLICAS]
        try:
            await llm.chat(f"call {i}", model="openai/gpt-4o", max_tokens=60)
        except BudgetExceededError:
            outcomes["refused"] += 1
        except LLMClientError as exc:
            outcomes[type(exc).__name__] += 1
        except Exception as exc:
            wrong.append(f"call {i}: {type(exc).__module__}.{type(exc).__name__}: {exc}")
        else:
            outcomes["answered"] += 1

    try:
        await asyncio.gather(*(call(i) for i in range(CALLS)))
        for tracker in trackers:
            await asyncio.wait_for(tracker.wait_for_delivery(), 30)
    finally:
        for llm in clients:
            await llm.aclose()
        for tracker in trackers:
            await tracker.aclose()

    with psycopg.connect(postgres_db, autocommit=True) as conn:
        ledger = conn.execute(
            "select coalesce(sum(cost), 0), count(*) from cost_tracking where project = %s",
            ("budget-chaos",),
        ).fetchone()
        counters = conn.execute(
            "select kind, reserved, spent from cost_budget_periods where project = %s",
            ("budget-chaos",),
        ).fetchall()
        open_reservations = conn.execute("select count(*) from cost_reservations").fetchone()
    assert ledger is not None
    assert open_reservations is not None
    spent, rows = Decimal(ledger[0]), int(ledger[1])
    print(f"\nbudget chaos: {dict(outcomes)}, faults {dict(faults.faults)}, spent ${spent}")

    problems = []
    if wrong:
        problems.append(f"refusals or failures not typed as LLMClientError: {wrong[:3]}")
    if outcomes["refused"] == 0 or outcomes["answered"] == 0:
        problems.append(f"the budget should bind part-way: {dict(outcomes)}")
    if spent > BUDGET:
        problems.append(f"overshoot: spent {spent} of {BUDGET}")
    if spent != faults.served_cost() or rows != len(faults.served):
        problems.append(
            f"ledger {rows} rows ${spent} != served {len(faults.served)} ${faults.served_cost()}"
        )
    for kind, reserved, counted in counters:
        if Decimal(reserved) != 0:
            problems.append(f"{kind} counter still reserves {reserved}")
        if Decimal(counted) != spent:
            problems.append(f"{kind} counter spent {counted} != ledger {spent}")
    if open_reservations[0]:
        problems.append(f"{open_reservations[0]} reservations left open")
    assert not problems, "\n".join(problems)
