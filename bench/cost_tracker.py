# ruff: noqa: E402  (imports follow the sys.path fix below)
"""Throughput of cost-tracker: log_cost and reserve+settle, local SQLite and PostgreSQL.

Each number is compared with a plain INSERT of the same row into the same kind of store, in
the same run. Creates (and drops) its own PostgreSQL database, migrated with llm_common_db.

    uv run python bench/cost_tracker.py [--n 4000] [--connections 20]

Environment: TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the package it measures: keep its own folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import asyncio
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg
from cost_tracker import CostMetrics, CostTracker, LocalCostStore, PostgresCostStore
from llm_common_db import migrate
from psycopg_pool import AsyncConnectionPool

ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass(frozen=True)
class Estimate:
    idempotency_id: str
    provider: str = "openrouter"
    model: str | None = "openai/gpt-4o-mini"
    step: str | None = "generate"
    amount: Decimal | None = Decimal("0.0005")


def row() -> CostMetrics:
    return CostMetrics(
        provider="openrouter",
        model="openai/gpt-4o-mini",
        step="generate",
        project="bench",
        cost=Decimal("0.000123456789"),
        prompt_tokens=812,
        completion_tokens=190,
        latency_ms=840.0,
    )


async def rate(n: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> float:
    """Operations per second running ``one`` n times with ``concurrency`` workers."""
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await one(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - start)


async def bench_local(n: int, directory: Path) -> dict[str, float]:
    results: dict[str, float] = {}
    raw = sqlite3.connect(directory / "plain.sqlite", isolation_level=None, check_same_thread=False)
    raw.execute("pragma journal_mode=wal")
    raw.execute("pragma synchronous=NORMAL")
    raw.execute(
        "create table t (id text primary key, project text, provider text, model text, cost text)"
    )

    def plain_insert() -> None:
        raw.execute(
            "insert into t values (?, 'bench', 'openrouter', 'm', '0.000123456789')",
            (str(uuid.uuid4()),),
        )

    async def plain(_: int) -> None:
        await asyncio.to_thread(plain_insert)

    results["local plain INSERT (to_thread)"] = await rate(n, 1, plain)
    tracker = CostTracker(
        LocalCostStore(directory / "costs"),
        daily_budget="1000000",
        project="bench",
        outbox_path=directory / "outbox.sqlite",
        retry_interval=None,
    )
    async with tracker:
        await tracker.budget_status()
        results["local log_cost"] = await rate(n, 32, lambda _: tracker.log_cost(row()))

        async def reserve_settle(_: int) -> None:
            reservation = await tracker.reserve(Estimate(str(uuid.uuid4())))
            await tracker.settle(reservation, row())

        results["local reserve+settle"] = await rate(n, 32, reserve_settle)
    raw.close()
    return results


async def bench_postgres(n: int, connections: int, url: str, directory: Path) -> dict[str, float]:
    results: dict[str, float] = {}
    async with AsyncConnectionPool(
        url, min_size=connections, max_size=connections, kwargs={"autocommit": True}
    ) as pool:

        async def plain(_: int) -> None:
            async with pool.connection() as conn:
                await conn.execute(
                    "insert into cost_tracking (idempotency_id, project, provider, model, step, "
                    "cost, prompt_tokens, completion_tokens, latency_ms) "
                    "values (%s, 'bench', 'openrouter', 'openai/gpt-4o-mini', 'generate', "
                    "0.000123456789, 812, 190, 840)",
                    (str(uuid.uuid4()),),
                )

        results["postgres plain INSERT"] = await rate(n, connections, plain)
    store = PostgresCostStore(url, min_size=connections, max_size=connections)
    tracker = CostTracker(
        store,
        daily_budget="1000000",
        project="bench",
        outbox_path=directory / "outbox-pg.sqlite",
        retry_interval=None,
    )
    async with tracker:
        await tracker.budget_status()
        results["postgres log_cost"] = await rate(n, connections, lambda _: tracker.log_cost(row()))

        async def reserve_settle(_: int) -> None:
            reservation = await tracker.reserve(Estimate(str(uuid.uuid4())))
            await tracker.settle(reservation, row())

        results["postgres reserve+settle"] = await rate(n, connections, reserve_settle)
        status = await tracker.budget_status()
        assert status.reserved == 0, status
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="operations per measurement")
    parser.add_argument("--connections", type=int, default=20)
    args = parser.parse_args()
    name = f"bench_cost_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    url = psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=name)
    try:
        await migrate(url)
        with tempfile.TemporaryDirectory() as tmp:
            local = await bench_local(args.n, Path(tmp))
            postgres = await bench_postgres(args.n, args.connections, url, Path(tmp))
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')
    print(f"cost-tracker throughput, n={args.n}, PostgreSQL connections={args.connections}")
    for label, value in {**local, **postgres}.items():
        print(f"  {label:32s} {value:10,.0f} ops/s")
    print("ratios against a plain INSERT of the same row, same run:")
    base_local = local["local plain INSERT (to_thread)"]
    base_pg = postgres["postgres plain INSERT"]
    for label in ("local log_cost", "local reserve+settle"):
        print(f"  {label:32s} {local[label] / base_local:10.2f}x")
    for label in ("postgres log_cost", "postgres reserve+settle"):
        print(f"  {label:32s} {postgres[label] / base_pg:10.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
