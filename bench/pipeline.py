"""analysis-pipeline benchmark: critical-path efficiency, concurrency speed-up, framework CPU.

    uv run python bench/pipeline.py [--bills 50] [--concurrency 10]
    uv run python bench/pipeline.py --costs [--database-url URL | --no-postgres]

The loopback OpenAI-compatible server (every LLM call answers after 200 ms) and the loopback
z.ai search server (every search answers after 300 ms) run in their own subprocesses, so their
CPU is not the framework's. The pipeline runs exactly as in production: LLMClient and
WebSearchClient reporting to a CostTracker (local store), LegislationSearchService, the local
run store. The search cache keeps nothing (TTL 0), so no run is served by another's cached
answers. Measured in the same run:

(a) one bill's wall time divided by its critical path: query generation + the slowest search
    batch + generate + review (+ refine and review again when the review fails). Target <= 1.2.
(b) the same bills run 10 at a time versus one after another. Target >= 8x.
(c) framework CPU per run (this process only; the servers are other processes).

``--costs``: search calls, SQL statements and dollars per bill over the twelve real bills
(../shared/data/bills), each a new bill (nothing cached), with the run store, the search cache
and the cost ledger on one throwaway PostgreSQL database (every statement counted at psycopg's
cursor) and an LLM server reporting realistic usage: prompt tokens counted with the model's real
tokenizer over what the pipeline sent, answers sized as ``analysis-pipeline estimate`` assumes.
Baselines in the same run: the unplanned query set's calls, and the offline estimate's dollars.

``--runtime serving`` (the default) calls ``llm_client.prepare_for_serving()`` after the warm-up
run, as the example apps do at start-up; ``--runtime default`` leaves CPython's garbage
collector as it is (its full collections re-walk ~145,000 start-up objects).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

# bench/ holds scripts named like packages (web_search.py): keep it off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

ROOT = Path(__file__).resolve().parent.parent
BILLS = ROOT / "../shared/data/bills"
ANALYST, REVIEWER = "openai/gpt-4o-mini", "openai/gpt-4.1-mini"


def _realistic(handler: Any) -> Any:
    """Wrap a handler so its replies report the usage a real model would bill."""
    from analysis_pipeline import PipelineConfig
    from analysis_pipeline._estimate import default_completion_tokens
    from llm_client import count_tokens

    answers = default_completion_tokens(PipelineConfig())
    tasks = {"propose-queries": "research", "condense-section": "condense",
             "generate-analysis": "generate", "review-analysis": "review",
             "refine-analysis": "refine"}  # fmt: skip

    def reply(request: Any) -> Any:
        answer = handler(request)
        if answer is None:
            return None
        system = str(request.messages[0].get("content", "")) if request.messages else ""
        task = next((step for tag, step in tasks.items() if f"Task: {tag}." in system), None)
        extra = {k: v for k, v in request.body.items() if k in ("tools", "response_format")}
        prompt = count_tokens(request.messages, "gpt-4o-mini")
        prompt += count_tokens(json.dumps(extra), "gpt-4o-mini") if extra else 0
        return answer.with_usage(prompt_tokens=prompt, completion_tokens=answers.get(task, 500))

    return reply


def serve(kind: str, latency: float) -> None:
    """Subprocess entry: run one loopback server until stdin closes."""
    if kind == "llm-realistic":
        from analysis_pipeline.testing import offline_handler
        from llm_client.testing import FakeLLMServer

        server: Any = FakeLLMServer(handler=_realistic(offline_handler))
        server.start()
        print(server.base_url, flush=True)
    elif kind == "llm":
        from analysis_pipeline.testing import offline_handler
        from llm_client.testing import FakeLLMServer, Reply

        def slow(request: Any) -> Any:
            # The simulated call takes `latency` in all: the handler's own work counts toward it.
            started = time.perf_counter()
            reply = offline_handler(request)
            left = max(latency - (time.perf_counter() - started), 0.0)
            return None if reply is None else Reply.hang(left, then=reply)

        server = FakeLLMServer(handler=slow)
        server.start()
        print(server.base_url, flush=True)
    else:
        from web_search.testing import FakeZaiSearchServer

        server = FakeZaiSearchServer(latency=latency)
        server.start()
        print(server.base_url, flush=True)
    sys.stdin.read()
    (getattr(server, "stop", None) or server.close)()


def _spawn(kind: str, latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--latency", str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


class Harness:
    """One LLM client, search client, cost tracker and run store, shared by every run.

    The search cache keeps nothing (TTL 0), so no run is served by another's cached answers.
    """

    def __init__(self, llm_url: str, search_url: str, workdir: Path) -> None:
        self.llm_url, self.search_url, self.workdir = llm_url, search_url, workdir

    async def __aenter__(self) -> Harness:
        from analysis_pipeline import LocalRunStore, PipelineConfig
        from cost_tracker import CostTracker, LocalCostStore
        from llm_client import LLMClient, LLMConfig, ProviderSettings

        self.tracker = CostTracker(
            LocalCostStore(self.workdir / "costs"), outbox_path=self.workdir / "outbox.sqlite3"
        )
        self.llm = LLMClient(
            cost_sink=self.tracker,
            config=LLMConfig(providers={"openai": ProviderSettings(base_url=self.llm_url)}),
            default_timeout=10,  # a dropped loopback connection retries instead of idling 60 s
        )
        self.failures = 0
        from web_search import CachePolicy, SearchCache, WebSearchClient
        from web_search.services import LegislationSearchService

        self.search = WebSearchClient(
            "zai",
            cache=SearchCache(None, policy=CachePolicy(memory_ttl=timedelta(0))),
            cost_sink=self.tracker,
            api_key="bench",
            base_url=self.search_url,
            timeout=10,
        )
        self.service = LegislationSearchService(self.search)
        self.store = LocalRunStore(self.workdir)
        self.config = PipelineConfig(
            models={"research": [ANALYST], "generate": [ANALYST], "review": [REVIEWER]}
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.search.aclose()
        await self.llm.aclose()
        await self.tracker.aclose()
        await self.store.aclose()

    async def run(self, bill_id: str, text: str, jurisdiction: str) -> Any:
        from analysis_pipeline import AnalysisPipeline

        pipeline = AnalysisPipeline(self.llm, self.service, store=self.store, config=self.config)
        try:
            return await pipeline.run(bill_id, text, jurisdiction)
        except Exception as exc:  # counted and reported: a bench never hides failures
            self.failures += 1
            print(f"run {bill_id} failed: {exc}", file=sys.stderr)
            return None


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a child process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _bills(n: int) -> list[tuple[str, str, str]]:
    import json

    manifest = json.loads((BILLS / "manifest.json").read_text())
    short = [b for b in manifest if b["bytes"] < 40_000]  # no condensing: one path shape
    out = []
    for i in range(n):
        bill = short[i % len(short)]
        text = (BILLS / f"{bill['id']}.txt").read_text()
        out.append((f"{bill['id']}#{i}", text, bill["jurisdiction"]))
    return out


def _critical_path(result: Any, llm: float, search: float, concurrency: int, queries: int) -> float:
    llm_calls = 1 + sum(1 for s in result.steps if s.step in {"generate", "review", "refine"})
    return llm_calls * llm + math.ceil(queries / concurrency) * search


class _GcPauses:
    """Garbage-collector pauses (the event loop stands still) while the block runs."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._started)

    def __enter__(self) -> _GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._callback)


def _makespan(durations: list[float], workers: int) -> float:
    """Wall time of running ``durations`` in order on ``workers`` slots (the semaphore's bound)."""
    free = [0.0] * workers
    for d in durations:
        i = min(range(workers), key=free.__getitem__)
        free[i] += d
    return max(free)


async def bench(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    llm_proc, llm_url = _spawn("llm", args.llm_latency)
    search_proc, search_url = _spawn("search", args.search_latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with Harness(llm_url, search_url, Path(tmp)) as h:
                bills = _bills(args.bills)
                await h.run("warm-up", bills[0][1], bills[0][2])  # imports, connections
                if args.runtime == "serving":
                    from llm_client import prepare_for_serving

                    prepare_for_serving()  # as the example apps' lifespans do
                # (a) one bill, alone.
                started = time.perf_counter()
                one = await h.run(*bills[1])
                wall = time.perf_counter() - started
                steps = await h.store.list_steps(one.run_id)
                queries = next(s for s in steps if s.key == "research").output or {}
                n_queries = len(queries.get("queries", []))
                path = _critical_path(one, args.llm_latency, args.search_latency,
                                      h.config.search_concurrency, n_queries)  # fmt: skip
                # (b) sequential, with (c) this process's CPU per run.
                cpu0, t0 = time.process_time(), time.perf_counter()
                durations = []
                for bill in bills:
                    started = time.perf_counter()
                    await h.run(*bill)
                    durations.append(time.perf_counter() - started)
                print("sequential done", file=sys.stderr, flush=True)
                sequential = time.perf_counter() - t0
                cpu = (time.process_time() - cpu0) / len(bills)
                gate = asyncio.Semaphore(args.concurrency)

                async def limited(bill: tuple[str, str, str]) -> None:
                    async with gate:
                        await h.run(*bill)

                servers0 = _cpu_of(llm_proc.pid) + _cpu_of(search_proc.pid)
                pauses = _GcPauses()
                t0, cpu0 = time.perf_counter(), time.process_time()
                with pauses:
                    await asyncio.gather(*(limited(b) for b in bills))
                concurrent = time.perf_counter() - t0
                cpu_concurrent = time.process_time() - cpu0
                servers = _cpu_of(llm_proc.pid) + _cpu_of(search_proc.pid) - servers0
                failures = h.failures
    finally:
        for proc in (llm_proc, search_proc):
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=10)
    table = Table(
        title="analysis-pipeline (LLM 200 ms/call, search 300 ms/call, loopback; "
        f"runtime: {args.runtime})"
    )
    for column in ("measure", "value", "target"):
        table.add_column(column)
    table.add_row(
        "(a) one bill: wall / critical path",
        f"{wall:.3f} s / {path:.3f} s = {wall / path:.2f}",
        "<= 1.2",
    )
    table.add_row("    searches in that run", f"{n_queries} queries", "")
    table.add_row(
        f"(b) {len(bills)} bills: sequential / concurrency {args.concurrency}",
        f"{sequential:.1f} s / {concurrent:.1f} s = {sequential / concurrent:.1f}x",
        ">= 8x",
    )
    ideal = _makespan(durations, args.concurrency)
    table.add_row(
        "    same runs scheduled with no CPU contention",
        f"{sequential:.1f} s / {ideal:.1f} s = {sequential / ideal:.1f}x",
        "",
    )
    table.add_row("(c) framework CPU per run", f"{cpu * 1000:.0f} ms", "report")
    table.add_row("    failed runs", str(failures), "0")
    table.add_row(
        "    during (b) concurrent: framework / servers CPU",
        f"{cpu_concurrent:.1f} s / {servers:.1f} s",
        "",
    )
    table.add_row(
        "    during (b) concurrent: GC pauses",
        f"{len(pauses.pauses)}, {sum(pauses.pauses) * 1000:.0f} ms in all, longest "
        f"{max(pauses.pauses, default=0) * 1000:.0f} ms",
        "",
    )
    table.add_row("    machine load average (1 min)", f"{os.getloadavg()[0]:.1f} on "
                  f"{os.cpu_count()} CPUs", "")  # fmt: skip
    console.print(table)


class _Statements:
    """Every SQL statement this process sends, counted at psycopg's async cursor."""

    def __init__(self) -> None:
        import psycopg

        self.count = 0
        execute = psycopg.AsyncCursor.execute

        async def counted(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await execute(cursor, query, *args, **kwargs)

        psycopg.AsyncCursor.execute = counted  # type: ignore[method-assign]


def _throwaway_database(admin_url: str) -> tuple[str, Any]:
    import secrets

    import psycopg
    from llm_common_db import migrate_sync
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"llmc_bench_research_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = make_conninfo(**{**conninfo_to_dict(admin_url), "dbname": name})
    migrate_sync(url)

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')

    return url, drop


def _real_bills() -> list[tuple[str, str, str]]:
    manifest = json.loads((BILLS / "manifest.json").read_text())
    return [(b["id"], (BILLS / f"{b['id']}.txt").read_text(), b["jurisdiction"]) for b in manifest]


async def costs(args: argparse.Namespace) -> None:
    """Search calls, SQL statements and dollars per new bill over the twelve real bills."""
    from analysis_pipeline import AnalysisPipeline, LocalRunStore, PipelineConfig, PostgresRunStore
    from analysis_pipeline._estimate import project_costs
    from cost_tracker import CostTracker, LocalCostStore, PostgresCostStore
    from llm_client import LLMClient, LLMConfig, ProviderSettings
    from rich.console import Console
    from rich.table import Table
    from web_search import PostgresSearchCache, SearchCache, WebSearchClient
    from web_search.services import LegislationSearchService

    console = Console()
    bills = _real_bills()
    statements = _Statements()
    llm_proc, llm_url = _spawn("llm-realistic", 0.0)
    search_proc, search_url = _spawn("search", 0.0)
    url, drop = (None, None) if args.no_postgres else _throwaway_database(args.database_url)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            store: Any = PostgresRunStore(url) if url else LocalRunStore(work)
            cost_store: Any = PostgresCostStore.from_url(url) if url else LocalCostStore(work)
            persistent = PostgresSearchCache(url) if url else None
            async with (
                CostTracker(cost_store, monthly_budget="300", outbox_path=work / "o") as tracker,
                LLMClient(
                    cost_sink=tracker,
                    config=LLMConfig(providers={"openai": ProviderSettings(base_url=llm_url)}),
                ) as llm,
                WebSearchClient(
                    "zai", cache=SearchCache(persistent), cost_sink=tracker, api_key="bench",
                    base_url=search_url,
                ) as search,
            ):  # fmt: skip
                config = PipelineConfig(models={"generate": [ANALYST], "review": [REVIEWER]})
                service = LegislationSearchService(search)
                pipeline = AnalysisPipeline(llm, service, store=store, config=config)
                warm = (ROOT / "examples/bills/EX-AB0042-2026.txt").read_text()
                await pipeline.run("EX-AB0042-2026", warm, "Exampleland")  # pools, holder
                for bill_id, text, jurisdiction in bills:
                    before, sql0 = _search_calls(search_url), statements.count
                    result = await pipeline.run(bill_id, text, jurisdiction)
                    sql = statements.count - sql0
                    calls = _search_calls(search_url) - before
                    plan = service.research_plan(bill_id, text, jurisdiction)
                    rows.append((bill_id, calls, plan.unplanned_calls, sql, result.total_cost,
                                 result.total_tokens))  # fmt: skip
            await store.aclose()
    finally:
        for proc in (llm_proc, search_proc):
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=10)
        if drop is not None:
            drop()
    models = {"generate": [ANALYST.split("/", 1)[1]], "review": [REVIEWER.split("/", 1)[1]]}
    projected = project_costs(bills, models, bills_per_day=args.bills_per_day)
    table = Table(title=f"A new bill's research and analysis (models {ANALYST}, {REVIEWER})")
    for column in ("bill", "search calls (unplanned)", "SQL statements", "tokens", "dollars",
                   "estimate"):  # fmt: skip
        table.add_column(column, justify="left" if column == "bill" else "right")
    for (bill_id, calls, unplanned, sql, cost, tokens), est in zip(
        rows, projected.bills, strict=True
    ):
        table.add_row(bill_id, f"{calls} ({unplanned})", str(sql) if url else "-",
                      f"{tokens:,}", f"${cost:.4f}", f"${est.total:.4f}")  # fmt: skip
    dollars = [r[4] for r in rows]
    per_bill = sum(dollars) / len(dollars)
    table.add_section()
    table.add_row(
        "median / max",
        f"{statistics.median(r[1] for r in rows):g} / {max(r[1] for r in rows)} "
        f"({statistics.median(r[2] for r in rows):g})",
        f"{statistics.median(r[3] for r in rows):g} / {max(r[3] for r in rows)}" if url else "-",
        "",
        f"${statistics.median(dollars):.4f} / ${max(dollars):.4f}",
        f"${projected.per_bill:.4f} (mean)",
    )
    console.print(table)
    console.print(
        f"mean ${per_bill:.4f} a bill -> ${per_bill * args.bills_per_day * 30:,.2f} a month at "
        f"{args.bills_per_day} new bills a day (estimate: ${projected.per_month:,.2f}); "
        f"targets <= 12 search calls, <= $0.20 a bill; SQL: issue 14's <= 20, plus one settle"
        f" and one cache write per extra wave of search answers since issue 16"
    )
    console.print(f"load average (1 min) {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


def _search_calls(base_url: str) -> int:
    import urllib.request

    root = base_url.split("/api/", 1)[0]
    with urllib.request.urlopen(f"{root}/_fake/stats", timeout=5) as answer:
        return int(json.loads(answer.read())["calls"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bills", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument(
        "--runtime",
        choices=["serving", "default"],
        default="serving",
        help="serving: after warm-up, llm_client.prepare_for_serving() (as the apps run); "
        "default: CPython's garbage-collector settings untouched",
    )
    parser.add_argument("--llm-latency", type=float, default=0.2)
    parser.add_argument("--search-latency", type=float, default=0.3)
    parser.add_argument("--costs", action="store_true", help="search calls, SQL and $ per bill")
    parser.add_argument("--bills-per-day", type=int, default=50)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--serve", choices=["llm", "llm-realistic", "search"], help=argparse.SUPPRESS
    )
    parser.add_argument("--latency", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.latency)
        return
    asyncio.run(costs(args) if args.costs else bench(args))


if __name__ == "__main__":
    main()
