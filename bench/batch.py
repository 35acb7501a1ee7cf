"""Batch analysis benchmark: bills per second with 1, 2 and 4 worker processes.

    uv run python bench/batch.py [--bills 48] [--concurrency 8] [--rounds 2]

The total concurrency is fixed (``--concurrency`` bills at once: 1 worker x 8, 2 x 4, 4 x 2),
so what changes is only how many processes (and so CPU cores) share the work. Each round gets a
fresh PostgreSQL database (cloned from a migrated template), starts the workers and waits until
each is ready (imports done), then enqueues the bills and measures the wall time until the last
one is done. The loopback LLM server (every call answers after ``--llm-latency``) and z.ai
search server (``--search-latency``) run in their own subprocesses (``bench/pipeline.py
--serve``), so their CPU is not the workers'. Workers are wired as in production
(``packages/analysis-pipeline/tests/_batch_worker.py``: cost-tracker and run store on PostgreSQL,
the shared call limiter with caps that do not bind here). Configurations are interleaved round
by round; the table shows medians, the ratio to the 1-worker baseline of the same run, and the
workers' own CPU per bill (from each worker's ``time.process_time()``); the load average is
printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

# bench/ holds scripts named like packages (web_search.py): keep it off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "packages/analysis-pipeline/tests/_batch_worker.py"
BILLS = ROOT / "../shared/data/bills"
ADMIN = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _limits(concurrency: int) -> dict[str, int]:
    """Caps far above the load (a bill has at most one LLM call or four searches in flight):
    the limiter runs but never waits."""
    return {"openai": max(64, 2 * concurrency), "zai": max(64, 5 * concurrency)}


def _server(kind: str, latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench/pipeline.py"), "--serve", kind, "--latency",
         str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _bills(n: int) -> list[tuple[str, str, str]]:
    manifest = json.loads((BILLS / "manifest.json").read_text())
    short = [b for b in manifest if b["bytes"] < 40_000]  # no condensing: one path shape
    out = []
    for i in range(n):
        bill = short[i % len(short)]
        text = (BILLS / f"{bill['id']}.txt").read_text()
        out.append((f"{bill['id']}.{uuid.uuid4().hex[:6]}.{i}", text, bill["jurisdiction"]))
    return out


async def _enqueue(url: str, bills: list[tuple[str, str, str]]) -> None:
    from analysis_pipeline import BatchBill, BatchQueue

    async with BatchQueue(url) as queue:
        await queue.enqueue(BatchBill(b, t, j) for b, t, j in bills)


def _done(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select count(*) from pipeline_batch_items where status in ('done', 'failed')"
        ).fetchone()
    return int(row[0]) if row else 0


def one_round(
    template: str, workers: int, per_worker: int, bills: int, llm: str, search: str, tmp: Path
) -> tuple[float, float, int]:
    """(bills/s, worker CPU seconds per bill, failed) of one configuration."""
    from llm_common_testkit import create_database, drop_database, new_database_name

    name = new_database_name("_bench_batch")
    url = create_database(ADMIN, name, template=template)
    procs: list[subprocess.Popen[str]] = []
    try:
        for i in range(workers):
            cfg = {
                "database_url": url, "llm_base_url": llm, "search_base_url": search,
                "concurrency": per_worker, "name": f"bench-{i}", "project": "bench",
                "limits": _limits(workers * per_worker), "state_dir": str(tmp / name / str(i)),
                "heartbeat": 2.0, "stalled_after": 30.0, "lease_timeout": 30.0,
            }  # fmt: skip
            proc = subprocess.Popen(
                [sys.executable, str(WORKER), json.dumps(cfg)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            procs.append(proc)
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # let every worker reach its first fetch (LISTEN) before the jobs arrive
        started = time.perf_counter()
        asyncio.run(_enqueue(url, _bills(bills)))
        while _done(url) < bills:
            time.sleep(0.05)  # polling another process's progress: nothing to await on
        elapsed = time.perf_counter() - started
        cpu = 0.0
        failed = 0
        for proc in procs:
            proc.terminate()
            out, _ = proc.communicate(timeout=60)
            stats = json.loads(out.strip().splitlines()[-1])
            cpu += stats["cpu_seconds"]
            failed += stats["failed"]
        if failed:  # a bench never hides failures
            import psycopg

            with psycopg.connect(url) as conn:
                for (error,) in conn.execute(
                    "select distinct error from pipeline_batch_items where status = 'failed'"
                ):
                    print(f"  failed: {error}", file=sys.stderr)
        return bills / elapsed, cpu / bills, failed
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        drop_database(ADMIN, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bills", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--llm-latency", type=float, default=0.2)
    parser.add_argument("--search-latency", type=float, default=0.3)
    args = parser.parse_args()

    from llm_common_db import migrate_sync
    from llm_common_testkit import create_database, new_database_name

    # Not exported: a template must lose its flag before it can be dropped.
    from llm_common_testkit._databases import drop_template, mark_template

    load_before = os.getloadavg()
    template = new_database_name("_bench_batch_tpl")
    migrate_sync(create_database(ADMIN, template))
    mark_template(ADMIN, template)
    llm_proc, llm = _server("llm", args.llm_latency)
    search_proc, search = _server("search", args.search_latency)
    configs = [w for w in (1, 2, 4) if args.concurrency % w == 0]
    results: dict[int, list[tuple[float, float, int]]] = {w: [] for w in configs}
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-batch-{os.getpid()}"
    try:
        for round_no in range(args.rounds):
            for workers in configs:  # interleaved: each round runs every configuration
                got = one_round(template, workers, args.concurrency // workers, args.bills,
                                llm, search, tmp)  # fmt: skip
                results[workers].append(got)
                print(f"round {round_no + 1}: {workers} worker(s) x {args.concurrency // workers}: "
                      f"{got[0]:.2f} bills/s, {got[1] * 1000:.0f} ms CPU/bill, {got[2]} failed",
                      flush=True)  # fmt: skip
    finally:
        for proc in (llm_proc, search_proc):
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(10)
        drop_template(ADMIN, template)
    base = statistics.median(r[0] for r in results[1])
    print()
    print(f"{args.bills} bills, total concurrency {args.concurrency}, "
          f"LLM {args.llm_latency:g} s, search {args.search_latency:g} s, "
          f"{args.rounds} interleaved rounds (medians)")  # fmt: skip
    print(f"{'workers':>8} {'bills/s':>9} {'vs 1':>6} {'CPU/bill':>10} {'failed':>7}")
    for workers in configs:
        rate = statistics.median(r[0] for r in results[workers])
        cpu = statistics.median(r[1] for r in results[workers])
        failed = sum(r[2] for r in results[workers])
        print(f"{workers:>8} {rate:>9.2f} {rate / base:>5.2f}x {cpu * 1000:>8.0f} ms {failed:>7}")
    load_after = os.getloadavg()
    print(f"load average before {load_before[0]:.1f} / after {load_after[0]:.1f} "
          f"on {os.cpu_count()} CPUs")  # fmt: skip


if __name__ == "__main__":
    main()
