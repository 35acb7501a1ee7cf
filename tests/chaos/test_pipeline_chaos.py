"""The pipeline under chaos: twelve real bills, faults everywhere, a database cut, a killed worker.

One seeded scenario (``CHAOS_SEED``; ``CHAOS_SCALE=N`` runs every bill N times, see README.md):

1. A worker *process* starts two bills; its reviewer's requests are held by the fake provider,
   so it is mid-run (research and generate paid and stored, review in flight) when it is
   SIGKILLed.
2. This process runs the other ten bills at concurrency 10 while the loopback LLM and z.ai
   search servers inject 5xx, hangs past the timeout, malformed bodies, 429 with Retry-After
   and a z.ai 1113 burst, PostgreSQL is cut and restored through the testkit's TcpProxy, and
   the killed worker's runs are resumed here.
3. Afterwards, read straight from PostgreSQL: every run completed or failed with a reason,
   none stuck ``running``; the cost ledger equals what the servers served, to the Decimal; the
   budget counters agree with the ledger and are not overshot; no reservation is left; no
   socket, task or thread beyond a fixed bound.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import json
import os
import re
import signal
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
SCALE = max(1, int(os.environ.get("CHAOS_SCALE", "1") or "1"))

CONCURRENCY = 10
# A failure reason naming a built-in exception ("...: IndexError: ...") means some layer let
# an untyped error through (the pipeline wraps whatever it gets, so look inside the reason).
_RAW_ERROR = re.compile(
    r"\b("
    + "|".join(
        name
        for name, value in vars(builtins).items()
        if isinstance(value, type)
        and issubclass(value, Exception)
        and name not in ("TimeoutError", "ConnectionError")
    )
    + r"):"
)
DOOMED = 2  # bills the killed worker had started
WORKER = Path(__file__).with_name("_worker.py")


def _rows(db_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return conn.execute(sql, params or None).fetchall()


async def _generate_done(db_url: str, prefix: str) -> int:
    rows = await asyncio.to_thread(
        _rows,
        db_url,
        "select count(distinct s.run_id) from pipeline_steps s join pipeline_runs r"
        " on r.id = s.run_id where r.bill_id like %s and s.step = 'generate'"
        " and s.status = 'completed'",
        prefix + "%",
    )
    return int(rows[0][0])


def _doomed_ready(db_url: str) -> Any:
    async def ready() -> bool:
        return await _generate_done(db_url, "DOOMED-") >= DOOMED

    return ready


@dataclasses.dataclass
class Outcome:
    bill_id: str
    status: str  # completed | failed | escaped
    detail: str = ""


@pytest.mark.timeout(240 * SCALE)
async def test_pipeline_survives_chaos(
    chaos: Any,
    postgres_db: str,
    tcp_proxy: Any,
    fresh_llm_server: Any,
    fresh_search_server: Any,
    tmp_path: Path,
) -> None:
    from analysis_pipeline import AnalysisPipelineError, ResumeError, RunStoreError

    started = time.monotonic()
    llm_chaos = chaos.LLMChaos(held={chaos.WORKER_REVIEW})
    fresh_llm_server.handler = llm_chaos
    search_chaos = chaos.SearchChaos(length=6000 * chaos.SCALE)
    search_chaos.install(fresh_search_server)
    db = tcp_proxy.url_for(postgres_db)  # every store goes through the proxy we cut
    # A roomy budget: this scenario is about faults (test_budget_chaos.py makes one bind).
    cfg = chaos.StackConfig(
        db_url=db,
        llm_url=fresh_llm_server.url,
        search_url=fresh_search_server.base_url,
        outbox=str(tmp_path / "outbox-main.sqlite"),
    )
    all_bills = chaos.bills()
    assert len(all_bills) == 12
    doomed, rest = all_bills[:DOOMED], all_bills[DOOMED:]
    runs = [
        (bill if n == 0 else f"{bill}#{n}", bill, where)
        for n in range(chaos.SCALE)
        for bill, where in rest
    ]

    # 1. The worker process that dies mid-run.
    # Its held review must outlast the kill, so its timeout is long; provider faults wait for
    # the main phase (a hang would cost the worker's long timeout).
    worker_cfg = dataclasses.replace(
        cfg, outbox=str(tmp_path / "outbox-worker.sqlite"), llm_timeout=60.0
    )
    llm_chaos.enabled = False
    worker_runs = [(f"DOOMED-{bill}", bill, where) for bill, where in doomed]
    log = (tmp_path / "worker.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        json.dumps({"stack": dataclasses.asdict(worker_cfg), "runs": worker_runs}),
        stdout=log,
        stderr=log,
    )
    try:
        await chaos.poll(_doomed_ready(postgres_db), 120, "the worker's generate steps")
        await chaos.poll(lambda: llm_chaos.held_now >= 1, 30, "the worker's review request")
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        log.close()
        pytest.fail("worker never got mid-run:\n" + (tmp_path / "worker.log").read_text()[-3000:])
    proc.send_signal(signal.SIGKILL)
    assert await proc.wait() == -signal.SIGKILL
    log.close()
    llm_chaos.held.clear()
    llm_chaos.enabled = True
    doomed_ids = [
        str(r[0])
        for r in await asyncio.to_thread(
            _rows, postgres_db, "select id from pipeline_runs where bill_id like 'DOOMED-%'"
        )
    ]
    assert len(doomed_ids) == DOOMED

    # 2. This process: the other bills at concurrency 10, the outage, the resumes.
    await asyncio.sleep(0)
    base_fds, base_sockets = chaos.open_fds()
    base_tasks = len(asyncio.all_tasks())
    base_threads = chaos.worker_threads()
    peaks = chaos.Peaks()
    stop = asyncio.Event()
    sampler = asyncio.create_task(chaos.sample_peaks(peaks, stop))
    outcomes: list[Outcome] = []
    outage = {"cut": 0.0, "restored": 0.0}
    gate = asyncio.Semaphore(CONCURRENCY)

    async with chaos.open_stack(cfg) as stack:

        async def run_one(run_id: str, bill: str, where: str) -> None:
            async with gate:
                try:
                    result = await stack.pipeline.run(run_id, chaos.bill_text(bill), where)
                except AnalysisPipelineError as exc:
                    outcomes.append(Outcome(run_id, "failed", f"{type(exc).__name__}: {exc}"))
                except Exception as exc:  # the assertion below names it
                    outcomes.append(Outcome(run_id, "escaped", f"{type(exc).__name__}: {exc}"))
                else:
                    outcomes.append(Outcome(run_id, "completed", str(result.run_id)))

        async def resume_one(run_id: str, into: list[Outcome] = outcomes) -> None:
            # A run whose holder died is taken over (at once, or once its lease has lapsed).
            end = time.monotonic() + 90
            while True:
                try:
                    await stack.pipeline.resume(run_id)
                except (ResumeError, RunStoreError):  # live holder, or the store is down
                    if time.monotonic() > end:
                        into.append(Outcome(run_id, "escaped", "resume refused for 90 s"))
                        return
                    await asyncio.sleep(0.5)
                    continue
                except AnalysisPipelineError as exc:
                    into.append(Outcome(run_id, "failed", f"{type(exc).__name__}: {exc}"))
                except Exception as exc:
                    into.append(Outcome(run_id, "escaped", f"{type(exc).__name__}: {exc}"))
                else:
                    into.append(Outcome(run_id, "completed", run_id))
                return

        async def cut_postgres() -> None:
            start = llm_chaos.requests
            await chaos.poll(lambda: llm_chaos.requests >= start + 8, 120, "load before the cut")
            outage["cut"] = time.monotonic() - started
            tcp_proxy.stop()
            with contextlib.suppress(TimeoutError):
                at = llm_chaos.requests + 12
                await chaos.poll(lambda: llm_chaos.requests >= at, 1.5, "load during the cut")
            tcp_proxy.start()
            outage["restored"] = time.monotonic() - started

        work = [run_one(*r) for r in runs] + [resume_one(r) for r in doomed_ids]
        # One store call first, as an app's start-up would: the race of a fresh store's first
        # concurrent calls has its own test (test_first_use.py) and would otherwise end most
        # runs here before any fault is met.
        await stack.pipeline.resolve_models()
        cutter = asyncio.create_task(cut_postgres())
        await asyncio.gather(*work)
        if not cutter.done():  # every run ended before the load the cut waits for
            cutter.cancel()
            tcp_proxy.start()
            outage["restored"] = time.monotonic() - started
        with contextlib.suppress(asyncio.CancelledError):
            await cutter
        await asyncio.wait_for(stack.tracker.wait_for_delivery(), 60)
        after_chaos = await asyncio.to_thread(
            _rows,
            postgres_db,
            "select id::text, bill_id, status,"
            " round(extract(epoch from now() - heartbeat_at)) from pipeline_runs",
        )
        # 3. An operator (or a job queue) resumes, once, every run that did not complete.
        operator: list[Outcome] = []
        for run_id, _, status, _ in after_chaos:
            if status != "completed":
                await resume_one(run_id, operator)
        await asyncio.wait_for(stack.tracker.wait_for_delivery(), 60)

    stop.set()
    await sampler
    fresh_search_server.release_hangs()
    fresh_llm_server.release_hangs()

    # 3. What holds afterwards (every violation collected, so one run reports them all).
    problems: list[str] = []

    def check(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    escaped = [o for o in outcomes if o.status == "escaped"]
    check(not escaped, f"exceptions other than the pipeline's typed errors: {escaped}")
    raw = [o for o in outcomes if _RAW_ERROR.search(o.detail)]
    check(not raw, f"runs failed on a raw (untyped) exception inside: {raw}")
    check(len(outcomes) == len(runs) + DOOMED, f"{len(outcomes)} outcomes")

    run_rows = await asyncio.to_thread(
        _rows,
        postgres_db,
        "select id::text, bill_id, status, error,"
        " round(extract(epoch from now() - heartbeat_at)) from pipeline_runs",
    )
    # A run refused at creation (the store down) is not stored: fine if it paid nothing.
    stored_bills = {r[1] for r in run_rows} | {r[0] for r in run_rows}  # resumes carry the id
    unstored = [o for o in outcomes if o.status == "failed" and o.bill_id not in stored_bills]
    check(
        len(run_rows) + len(unstored) == len(runs) + DOOMED,
        f"{len(run_rows)} runs stored, {len(unstored)} refused at creation",
    )
    for o in unstored:
        check("RunStoreError" in o.detail, f"{o.bill_id} not stored yet failed: {o.detail}")
        paid = [s for s in llm_chaos.served if s.bill == o.bill_id]
        check(not paid, f"{o.bill_id} was never stored but paid {len(paid)} answers")
    said = {o.detail if o.status == "completed" else o.bill_id: o.status for o in outcomes}
    stuck = [r for r in after_chaos if r[2] not in ("completed", "failed")]
    check(not stuck, f"runs left running (id, bill, status, heartbeat age s): {stuck}")
    still = [r[:3] for r in run_rows if r[2] not in ("completed", "failed")]
    check(not still, f"runs still running after the operator's resume: {still}")
    escaped = [o for o in operator if o.status == "escaped"]
    check(not escaped, f"operator resumes that escaped or were refused: {escaped}")
    reasonless = [r[:3] for r in run_rows if r[2] == "failed" and not (r[3] or "").strip()]
    check(not reasonless, f"runs failed without a reason: {reasonless}")
    contradicted = [r[:3] for r in run_rows if said.get(r[0]) == "completed" != r[2]]
    check(not contradicted, f"run() returned a result but the store says: {contradicted}")

    ledger = await asyncio.to_thread(
        _rows,
        postgres_db,
        "select project, model, cost, prompt_tokens, completion_tokens from cost_tracking",
    )
    projects = {r[0] for r in ledger}
    check(projects <= {chaos.PROJECT}, f"records filed under other projects: {projects}")
    llm_rows = [r for r in ledger if r[1] != chaos.SEARCH_MODEL]
    search_rows = [r for r in ledger if r[1] == chaos.SEARCH_MODEL]
    served = list(llm_chaos.served)
    served_cost = llm_chaos.served_cost()
    ledger_cost = sum((Decimal(r[2]) for r in llm_rows if r[2] is not None), Decimal(0))
    served_tokens = Counter((s.prompt_tokens, s.completion_tokens) for s in served)
    ledger_tokens = Counter((int(r[3]), int(r[4])) for r in llm_rows)
    search_calls = fresh_search_server.calls
    billed_searches = search_chaos.billed(search_calls)
    search_cost = sum((Decimal(r[2]) for r in search_rows), Decimal(0))

    # Holds of holders that are gone (the killed worker; a reserve whose answer the cut lost)
    # are given back by the project's next reserve once the holder is silent: make one.
    await chaos.poll(_next_reserve_reclaims(chaos, postgres_db, tmp_path), 30, "reclaim")
    reservations = await asyncio.to_thread(
        _rows, postgres_db, "select count(*), coalesce(sum(amount), 0) from cost_reservations"
    )
    held = await asyncio.to_thread(
        _rows, postgres_db, "select model, step from cost_reservations order by model, step"
    )
    counters = await asyncio.to_thread(
        _rows,
        postgres_db,
        "select kind, limit_amount, reserved, spent from cost_budget_periods where project = %s",
        chaos.PROJECT,
    )
    await asyncio.sleep(0)
    end_fds, end_sockets = chaos.open_fds()

    faults = llm_chaos.faults + search_chaos.faults(search_calls)
    figures = {
        "runs": len(outcomes),
        "outcomes": dict(Counter(o.status for o in outcomes)),
        "budget refusals": sum("budget refused" in o.detail for o in outcomes),
        "operator resumes": dict(Counter(o.status for o in operator)),
        "daily budget": cfg.daily_budget,
        "faults injected": dict(faults),
        "faults total": sum(faults.values()),
        "llm requests": fresh_llm_server.request_count,
        "llm answers served with usage": len(served),
        "retries (llm requests re-sent identically)": _retries(fresh_llm_server.requests),
        "fallback model requests": _fallback_requests(fresh_llm_server.requests),
        "search calls / billed": f"{search_calls} / {billed_searches}",
        "dollars ledgered (llm)": str(ledger_cost),
        "dollars served (llm)": str(served_cost),
        "dollars ledgered (search)": str(search_cost),
        "dollars served (search)": str(Decimal("0.01") * billed_searches),
        "postgres outage (s into the test)": f"{outage['cut']:.1f} -> {outage['restored']:.1f}",
        "peak sockets / tasks / threads": f"{peaks.sockets} / {peaks.tasks} / {peaks.threads}",
        "sockets before / after": f"{base_sockets} / {end_sockets}",
        "wall seconds": round(time.monotonic() - started, 1),
    }
    print("\nchaos figures:", json.dumps(figures, indent=2))
    print("outcomes:", *outcomes, sep="\n  ")

    # The ledger is what the providers served: nothing lost, nothing paid twice.
    check(
        ledger_tokens == served_tokens,
        f"ledger vs served (prompt, completion) rows: missing {served_tokens - ledger_tokens},"
        f" extra {ledger_tokens - served_tokens}",
    )
    check(ledger_cost == served_cost, f"llm ledger ${ledger_cost} != served ${served_cost}")
    # The killed worker's research and generate were paid once (its phase had no faults);
    # resuming its runs elsewhere must not pay for them again.
    for bill, _ in doomed:
        for task in ("propose-queries", "generate-analysis"):
            paid = [s for s in served if s.bill == f"DOOMED-{bill}" and s.task == task]
            check(len(paid) == 1, f"DOOMED-{bill} {task} paid {len(paid)} times")
    check(
        len(search_rows) == billed_searches,
        f"{len(search_rows)} search rows for {billed_searches} billed searches",
    )
    check(search_cost == Decimal("0.01") * billed_searches, f"search ledger ${search_cost}")
    # Budgets: the counters agree with the ledger, nothing overshot, no reservation left.
    total = ledger_cost + search_cost
    for kind, limit, reserved, spent in counters:
        check(Decimal(spent) == total, f"{kind} counter spent {spent}, ledger {total}")
        check(limit is None or Decimal(spent) <= Decimal(limit), f"{kind} overshot: {spent}")
        check(Decimal(reserved) == 0, f"{kind} counter still reserves {reserved}")
    check(
        reservations[0][0] == 0,
        f"reservations left open (count, amount): {reservations[0]}, (model, step): {held}",
    )
    # Faults really happened, of every kind.
    for kind in ("llm_5xx", "llm_hang", "llm_429", "llm_malformed", "llm_zai_1113"):
        check(faults[kind] > 0, f"no {kind} injected")
    check(outage["restored"] > outage["cut"] > 0, f"no PostgreSQL outage happened: {outage}")
    # Nothing leaked: sockets, tasks and threads back within a fixed bound.
    check(end_sockets <= base_sockets + 2, f"sockets {base_sockets} -> {end_sockets}")
    check(end_fds <= base_fds + 2, f"descriptors {base_fds} -> {end_fds}")
    tasks = len(asyncio.all_tasks())
    check(tasks <= base_tasks, f"tasks {base_tasks} -> {tasks}")
    threads = chaos.worker_threads()
    check(threads <= base_threads + 1, f"threads {base_threads} -> {threads}")
    assert not problems, "chaos run broke:\n- " + "\n- ".join(problems)


def _next_reserve_reclaims(chaos: Any, db_url: str, tmp_path: Path) -> Any:
    """A poll predicate: one reserve + release by a new tracker; true once nothing is held."""
    from cost_tracker import CostTracker, PostgresCostStore
    from llm_client import CostEstimate

    async def attempt() -> bool:
        async with CostTracker(
            PostgresCostStore(db_url),
            daily_budget="50",
            project=chaos.PROJECT,
            outbox_path=tmp_path / "outbox-reclaim.sqlite",
            retry_interval=None,
            heartbeat_interval=0.5,
            holder_timeout=3.0,
        ) as tracker:
            estimate = CostEstimate(f"reclaim-{time.monotonic()}", "openai", "m", "t", Decimal(0))
            await tracker.release(await tracker.reserve(estimate))
        rows = await asyncio.to_thread(_rows, db_url, "select count(*) from cost_reservations")
        return rows[0][0] == 0

    return attempt


def _retries(requests: list[Any]) -> int:
    seen: Counter[str] = Counter()
    for r in requests:
        seen[json.dumps([r.path, r.model, r.messages], sort_keys=True)] += 1
    return sum(n - 1 for n in seen.values())


def _fallback_requests(requests: list[Any]) -> int:
    # Steps whose chain starts on z.ai and that still ran on the OpenAI route.
    from analysis_pipeline.testing import task_of

    firsts = {"generate-analysis", "propose-queries"}
    return sum(
        1 for r in requests if "/api/paas/v4" not in r.path and task_of(r.messages) in firsts
    )
