"""web-search benchmark: cache tiers against the miss path, the model-comparison replay, and a
bill's full research set. Never part of the test run.

    uv run python bench/web_search.py            # everything (PostgreSQL tier if it answers)
    uv run python bench/web_search.py --quick    # fewer iterations

The loopback z.ai server runs in its own process (so its work does not share our GIL) and the
replay uses two worker processes sharing one persistent tier. Bills are read from
../shared/data/bills relative to the repository root (never copied into the repository).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

# This file is named like the package it measures: keep its own folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from web_search import (  # noqa: E402
    LegislationSearchService,
    LocalSearchCache,
    PersistentCache,
    PostgresSearchCache,
    SearchCache,
    WebSearchClient,
    ZaiSearchProvider,
)
from web_search.services import DEFAULT_CONCURRENCY  # noqa: E402
from web_search.testing import FakeZaiSearchServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BILLS = ROOT.parent / "shared" / "data" / "bills"
KEY = "bench-key"
console = Console()


def bills() -> list[tuple[str, str, str]]:
    """(bill id, jurisdiction, text) of the twelve shared bills."""
    manifest = json.loads((BILLS / "manifest.json").read_text())
    return [(b["id"], b["jurisdiction"], (BILLS / f"{b['id']}.txt").read_text()) for b in manifest]


# -- the fake server in its own process -------------------------------------------------------
def serve(latency: float) -> None:
    with FakeZaiSearchServer(latency=latency, api_key=KEY) as server:
        print(server.port, flush=True)
        sys.stdin.read()  # until the parent closes our stdin


class RemoteFake:
    def __init__(self, latency: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.base_url = f"http://127.0.0.1:{self.port}/api/paas/v4"

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_fake/stats") as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def client_for(base_url: str, store: PersistentCache | None, clock: Any = None) -> WebSearchClient:
    cache = SearchCache(store, clock=clock) if clock else SearchCache(store)
    return WebSearchClient(ZaiSearchProvider(KEY, base_url=base_url), cache)


# -- scratch PostgreSQL ------------------------------------------------------------------------
def scratch_postgres() -> tuple[str, str] | None:
    """(admin URL, scratch URL) of a migrated scratch database, or None if Postgres is down."""
    try:
        import psycopg
        from llm_common_db import migrate_sync
    except ImportError:
        return None
    admin = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"ws_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'create database "{name}"')
    except psycopg.Error:
        return None
    url = admin.rsplit("/", 1)[0] + "/" + name
    migrate_sync(url)
    return admin, url


def drop_postgres(admin: str, url: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{url.rsplit("/", 1)[1]}" with (force)')


# -- 1. tier latencies -------------------------------------------------------------------------
async def per_op(fn: Any, items: list[Any]) -> float:
    """Median seconds per call of ``await fn(item)`` over items."""
    times = []
    for item in items:
        start = time.perf_counter()
        await fn(item)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def tier_latencies(quick: bool, pg_url: str | None) -> list[tuple[str, float]]:
    fake = RemoteFake(0.0)
    rows: list[tuple[str, float]] = []
    n = 100 if quick else 300
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with client_for(fake.base_url, LocalSearchCache(tmp)) as writer:
                await writer.search("warm up the connection")
                rows.append(
                    (
                        "miss (loopback upstream, 0 ms latency, local L2 write)",
                        await per_op(writer.search, [f"miss query {i}" for i in range(n)]),
                    )
                )
                await writer.search("hot query")
                loops = 5_000 if quick else 20_000
                start = time.perf_counter()
                for _ in range(loops):
                    await writer.search("hot query")
                rows.append(("L1 hit (in-process)", (time.perf_counter() - start) / loops))
            async with client_for(fake.base_url, LocalSearchCache(tmp)) as reader:
                rows.append(
                    (
                        "L2 hit (local diskcache)",
                        await per_op(reader.search, [f"miss query {i}" for i in range(n)]),
                    )
                )
        if pg_url:
            async with client_for(fake.base_url, PostgresSearchCache(pg_url)) as writer:
                for i in range(n):
                    await writer.search(f"pg query {i}")
            import psycopg

            async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:

                async def round_trip(_: int) -> None:
                    await conn.execute("select 1")

                rows.append(
                    (
                        "PostgreSQL round trip (select 1), reference",
                        await per_op(round_trip, list(range(n))),
                    )
                )
            async with client_for(fake.base_url, PostgresSearchCache(pg_url)) as reader:
                await reader.search("pg warm up")
                rows.append(
                    (
                        "L2 hit (PostgreSQL)",
                        await per_op(reader.search, [f"pg query {i}" for i in range(n)]),
                    )
                )
    finally:
        fake.close()
    return rows


# -- 2. the model-comparison replay ------------------------------------------------------------
async def worker(base_url: str, store_spec: str, namespace: str) -> None:
    """Replay worker: for each ``run R`` line on stdin, research every bill at simulated hour 4R."""
    base = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    now = [base]
    store: PersistentCache = (
        PostgresSearchCache(store_spec)
        if store_spec.startswith("postgresql")
        else LocalSearchCache(store_spec)
    )
    cache = SearchCache(store, clock=lambda: now[0], stats_namespace=namespace)
    async with WebSearchClient(ZaiSearchProvider(KEY, base_url=base_url), cache) as client:
        service = LegislationSearchService(client)
        for line in sys.stdin:
            run = int(line.split()[1])
            now[0] = base + timedelta(hours=4 * run)
            packages = await asyncio.gather(
                *(service.search_exhaustively(b, text, j) for b, j, text in bills())
            )
            queries = sum(len(p.queries) for p in packages)
            print(
                json.dumps(
                    {"run": run, "queries": queries, "cost": str(sum(p.cost for p in packages))}
                ),
                flush=True,
            )
        stats = await client.get_cache_stats()
        print(
            json.dumps(
                {
                    "final": True,
                    "hit_rate": stats.hit_rate,
                    "upstream_calls": stats.upstream_calls,
                    "saved": str(stats.dollars_saved),
                    "spent": str(stats.dollars_spent),
                    "lookups": stats.lookups,
                    "l1": stats.l1_hits,
                    "l2": stats.l2_hits,
                    "coalesced": stats.coalesced,
                    "misses": stats.misses,
                }
            ),
            flush=True,
        )


def replay(store_spec: str, latency: float) -> dict[str, Any]:
    fake = RemoteFake(latency)
    namespace = f"replay-{uuid.uuid4().hex[:8]}"
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", fake.base_url, store_spec, namespace],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    per_run = []
    start = time.perf_counter()
    try:
        for run in range(
            5
        ):  # five research passes per bill in one simulated day, alternating processes
            proc = workers[run % 2]
            assert proc.stdin is not None
            assert proc.stdout is not None
            proc.stdin.write(f"run {run}\n")
            proc.stdin.flush()
            per_run.append(json.loads(proc.stdout.readline()))
        finals = []
        for proc in workers:
            assert proc.stdin is not None
            assert proc.stdout is not None
            proc.stdin.close()
            finals.append(json.loads(proc.stdout.readline()))
            proc.wait()
        server = fake.stats()
    finally:
        fake.close()
    final = finals[-1]  # persisted totals: both processes share the stats namespace
    return {
        "per_run": per_run,
        "final": final,
        "server": server,
        "seconds": time.perf_counter() - start,
        "searches": sum(r["queries"] for r in per_run),
    }


# -- 3. a bill's full research set -------------------------------------------------------------
async def research_set(latency: float) -> dict[str, Any]:
    fake = RemoteFake(latency)
    bill_id, jurisdiction, text = next(b for b in bills() if b[0] == "CA-AB1482-2019")
    try:
        async with client_for(fake.base_url, None) as warm:
            await warm.search("warm up")
        async with client_for(fake.base_url, None) as solo:
            plan = LegislationSearchService(solo).plan(bill_id, text, jurisdiction)
            singles = []
            for q in plan:  # each search alone (its own domain fan-out runs concurrently)
                start = time.perf_counter()
                await solo.search(q.text, q.count, q.domains)
                singles.append(time.perf_counter() - start)
        timings = {}
        for label, concurrency in (
            ("unbounded", len(plan)),
            (f"default ({DEFAULT_CONCURRENCY})", DEFAULT_CONCURRENCY),
        ):
            async with client_for(fake.base_url, None) as client:
                # Steady state: an app's client already holds open keep-alive connections.
                await asyncio.gather(*(client.search(f"warm up {i}") for i in range(64)))
                start = time.perf_counter()
                await LegislationSearchService(client).search_exhaustively(
                    bill_id, text, jurisdiction, concurrency=concurrency
                )
                timings[label] = time.perf_counter() - start
    finally:
        fake.close()
    return {"queries": len(plan), "slowest": max(singles), "sum": sum(singles), **timings}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--serve", type=float)
    parser.add_argument("--worker", nargs=3)
    args = parser.parse_args()
    if args.serve is not None:
        return serve(args.serve)
    if args.worker:
        return asyncio.run(worker(*args.worker))

    pg = None if args.no_postgres else scratch_postgres()
    try:
        rows = asyncio.run(tier_latencies(args.quick, pg[1] if pg else None))
        miss = rows[0][1]
        table = Table(title="Cache tiers vs the miss path (median per search)")
        for col in ("path", "latency", "ratio to miss", "target"):
            table.add_column(col)
        targets = {"L1": "< 20 µs", "L2 hit (local": "< 1 ms"}
        for name, seconds in rows:
            target = next((t for k, t in targets.items() if name.startswith(k)), "")
            table.add_row(name, f"{seconds * 1e6:,.1f} µs", f"{seconds / miss:.4f}", target)
        console.print(table)

        with tempfile.TemporaryDirectory() as tmp:
            stores = [("local diskcache", str(Path(tmp) / "replay"))]
            if pg:
                stores.append(("PostgreSQL", pg[1]))
            table = Table(
                title="Replay: 12 bills x 5 research passes in one simulated day, 2 processes"
            )
            for col in (
                "L2 tier",
                "searches",
                "hit rate",
                "upstream calls",
                "distinct calls",
                "spent",
                "saved",
                "wall",
            ):
                table.add_column(col)
            for label, spec in stores:
                result = replay(spec, 0.3)
                final, server = result["final"], result["server"]
                table.add_row(
                    label,
                    str(result["searches"]),
                    f"{final['hit_rate']:.1%}",
                    str(server["calls"]),
                    str(server["distinct_calls"]),
                    f"${final['spent']}",
                    f"${final['saved']}",
                    f"{result['seconds']:.1f} s",
                )
            console.print(table)

        runs = [asyncio.run(research_set(0.3)) for _ in range(1 if args.quick else 3)]
        result = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        default = f"default ({DEFAULT_CONCURRENCY})"
        ratios = sorted(round(r[default] / r["slowest"], 2) for r in runs)
        table = Table(
            title=f"Research set of CA-AB1482-2019: {result['queries']} queries, 300 ms each"
        )
        for col in ("measure", "seconds", "x slowest single search"):
            table.add_column(col)
        table.add_row("slowest single search", f"{result['slowest']:.3f}", "1.00")
        table.add_row(
            "sum of single searches",
            f"{result['sum']:.3f}",
            f"{result['sum'] / result['slowest']:.2f}",
        )
        for label in ("unbounded", f"default ({DEFAULT_CONCURRENCY})"):
            table.add_row(
                f"whole set, concurrency {label}",
                f"{result[label]:.3f}",
                f"{result[label] / result['slowest']:.2f}",
            )
        console.print(table)
        console.print(f"median of {len(runs)} runs; {default} ratio per run: {ratios}")
    finally:
        if pg:
            drop_postgres(*pg)


if __name__ == "__main__":
    main()
