"""Batch analysis on the PostgreSQL job queue: several worker processes, one SIGKILLed.

Real PostgreSQL (a private migrated database), real worker processes wired as in production
(cost-tracker on PostgreSQL, the shared call limiter, the PostgreSQL run store), the loopback
OpenAI-compatible and z.ai search servers with a small simulated latency. The servers count what
they served in full to a client still connected, and their peak concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from analysis_pipeline.testing import offline_handler, task_of
from llm_client.testing import FakeLLMServer, RecordedRequest, Reply
from web_search.testing import FakeZaiSearchServer

pytestmark = pytest.mark.postgres

HERE = Path(__file__).resolve().parent
BILLS = HERE.parents[2] / "../shared/data/bills"  # read in place, never copied
MANIFEST = json.loads((BILLS / "manifest.json").read_text())
LLM_LATENCY, SEARCH_LATENCY = 0.05, 0.02
LIMITS = {"openai": 3, "zai": 4}  # the accounts' caps, across every worker
HOLD = 12.0  # seconds every call waits while the victim is being killed


def real_bills(count: int) -> list[tuple[str, str, str]]:
    """``count`` bills: the twelve real ones in turn, each copy under a distinct id."""
    texts = [(b["id"], b["jurisdiction"], (BILLS / f"{b['id']}.txt").read_text()) for b in MANIFEST]
    return [
        (f"{texts[i % 12][0]}.{i:03d}", texts[i % 12][2], texts[i % 12][1]) for i in range(count)
    ]


class Latency:
    """LLM handler: the offline bill-aware answer after ``seconds`` (changeable mid-test)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, request: RecordedRequest) -> Reply | None:
        reply = offline_handler(request)
        return None if reply is None else Reply.hang(self.seconds, then=reply)


@pytest.fixture
def servers() -> Iterator[tuple[FakeLLMServer, FakeZaiSearchServer, Latency]]:
    latency = Latency(LLM_LATENCY)
    with FakeLLMServer(handler=latency) as llm, FakeZaiSearchServer(latency=SEARCH_LATENCY) as zs:
        yield llm, zs, latency


def _query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]  # type: ignore[arg-type]


def _wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> None:
    """Poll ``check`` (state in other processes and the database: nothing to await on)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def _start_worker(tmp_path: Path, **cfg: Any) -> subprocess.Popen[str]:
    cfg.setdefault("limits", LIMITS)
    cfg["state_dir"] = str(tmp_path / cfg["name"])
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_batch_worker.py"), json.dumps(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
    return proc


def _stop_worker(proc: subprocess.Popen[str]) -> dict[str, Any]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    return dict(json.loads(out.strip().splitlines()[-1]))


async def _enqueue(url: str, bills: list[tuple[str, str, str]]) -> Any:
    from analysis_pipeline import BatchBill, BatchQueue

    async with BatchQueue(url) as queue:
        return await queue.enqueue(BatchBill(b, t, j) for b, t, j in bills)


async def _status(url: str) -> Any:
    from analysis_pipeline import BatchQueue

    async with BatchQueue(url) as queue:
        return await queue.status()


def _ledger(url: str) -> tuple[int, int, int, int]:
    """(LLM rows, prompt tokens, completion tokens, search rows) of the cost ledger."""
    rows = _query(
        url,
        "select count(*) filter (where provider <> 'zai'),"
        " coalesce(sum(prompt_tokens) filter (where provider <> 'zai'), 0),"
        " coalesce(sum(completion_tokens) filter (where provider <> 'zai'), 0),"
        " count(*) filter (where provider = 'zai') from cost_tracking",
    )
    a, b, c, d = rows[0]
    return int(a), int(b), int(c), int(d)


def _outboxes(tmp_path: Path) -> int:
    """Cost records the workers could not hand to PostgreSQL (kept in their local outboxes)."""
    import sqlite3

    held = 0
    for path in tmp_path.glob("*/outbox.sqlite3"):
        with contextlib.closing(sqlite3.connect(path)) as db:
            for (table,) in db.execute("select name from sqlite_master where type = 'table'"):
                held += db.execute(f'select count(*) from "{table}"').fetchone()[0]
    return held


def _served(llm: FakeLLMServer, search: FakeZaiSearchServer) -> tuple[int, int, int, int]:
    usage = list(llm.served_usage)
    return (
        len(usage),
        sum(int(u["prompt_tokens"]) for u in usage),
        sum(int(u["completion_tokens"]) for u in usage),
        search.served,
    )


async def test_enqueue_is_idempotent_per_bill_and_input(postgres_db: str) -> None:
    bills = real_bills(3)
    first = await _enqueue(postgres_db, bills)
    again = await _enqueue(postgres_db, [*bills, bills[0]])
    assert (first.added, first.already) == (3, 0)
    assert (again.added, again.already) == (0, 3)
    changed = await _enqueue(postgres_db, [(bills[0][0], bills[0][1] + "\nSEC. 99.", bills[0][2])])
    assert (changed.added, changed.already) == (1, 0)  # new text: a new analysis
    jobs = _query(postgres_db, "select status::text, count(*) from procrastinate_jobs group by 1")
    assert jobs == [("todo", 4)]
    status = await _status(postgres_db)
    assert (status.queued, status.running, status.done, status.failed) == (4, 0, 0, 0)
    assert status.spend == Decimal(0)
    assert status.eta is None


async def test_limiter_caps_across_connections(postgres_db: str) -> None:
    from analysis_pipeline import CallLimiter

    async with CallLimiter(postgres_db, {"zai": 2}) as a, CallLimiter(postgres_db, {"zai": 2}) as b:
        held = [await a.acquire("zai"), await b.acquire("zai")]
        assert {s.number for s in held if s is not None} == {0, 1}
        third = asyncio.create_task(b.acquire("zai"))
        await asyncio.sleep(0.2)  # it must still be waiting: both slots are held elsewhere
        assert not third.done()
        await a.release(held[0])
        slot = await asyncio.wait_for(third, 5)
        assert slot is not None
        assert slot.number == 0
        assert await a.acquire("openai") is None  # an account with no cap
        await b.release(slot)
        await b.release(held[1])


# A limiter in a process of its own: takes the account's only slot, says which, then waits to be
# killed.
_HOLDER = """
import asyncio, sys
from analysis_pipeline import CallLimiter

async def main():
    limiter = CallLimiter(sys.argv[1], {"zai": 1}, abandoned_after=float(sys.argv[2]))
    slot = await limiter.acquire("zai")
    print(slot.number, slot.conn.info.backend_pid, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def _lease_until(url: str, slot: int) -> Any:
    return _query(url, "select lease_until from pipeline_call_slots where slot = %s", (slot,))[0][0]


def _taken_at(url: str, slot: int, abandoned_after: float) -> Any:
    """When the slot was last taken, by the database's clock (its lease minus its length)."""
    sql = "select lease_until - make_interval(secs => %s) from pipeline_call_slots where slot = %s"
    return _query(url, sql, (abandoned_after, slot))[0][0]


def _session_gone(url: str, pid: int) -> bool:
    return not _query(url, "select 1 from pg_stat_activity where pid = %s", (pid,))


async def test_limiter_slot_of_a_killed_holder_stays_taken_until_its_lease_passes(
    postgres_db: str,
) -> None:
    from analysis_pipeline import CallLimiter

    url, after = postgres_db, 2.0
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url, str(after)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline().split()
        assert line, holder.stderr.read() if holder.stderr else ""
        number, pid = map(int, line)
        lease_until = _lease_until(url, number)
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.communicate(timeout=10)
    # Its session has ended, and its advisory lock with it: only the lease keeps the slot now.
    _wait_until(lambda: _session_gone(url, pid), 30, "the killed holder's session to end")

    async with CallLimiter(url, {"zai": 1}, abandoned_after=after) as other:
        slot = await asyncio.wait_for(other.acquire("zai"), 30)  # free once the lease passes
        assert slot is not None
        assert slot.number == number
        # Handed out no earlier than the dead holder's lease ended (one clock: the database's).
        assert _taken_at(url, number, after) >= lease_until
        await other.release(slot)


async def test_limiter_slot_whose_release_failed_stays_taken_until_its_lease_passes(
    postgres_db: str,
) -> None:
    from analysis_pipeline import CallLimiter

    url, after = postgres_db, 2.0
    async with (
        CallLimiter(url, {"zai": 1}, abandoned_after=after) as a,
        CallLimiter(url, {"zai": 1}, abandoned_after=after) as b,
    ):
        held = await a.acquire("zai")
        assert held is not None
        lease_until = _lease_until(url, held.number)
        pid = held.conn.info.backend_pid
        _query(url, "select pg_terminate_backend(%s)", (pid,))
        _wait_until(lambda: _session_gone(url, pid), 30, "the holder's session to end")
        await a.release(held)  # the connection is gone: logged, not raised
        assert a.in_use["zai"] == 0

        slot = await asyncio.wait_for(b.acquire("zai"), 30)
        assert slot is not None
        assert _taken_at(url, slot.number, after) >= lease_until
        await b.release(slot)
        again = await asyncio.wait_for(a.acquire("zai"), 30)  # a's pool recovered
        assert again is not None
        await a.release(again)


async def test_limiter_live_holder_keeps_its_slot_past_abandoned_after(postgres_db: str) -> None:
    from analysis_pipeline import CallLimiter

    url = postgres_db
    async with (
        CallLimiter(url, {"zai": 1}, abandoned_after=0.5) as a,
        CallLimiter(url, {"zai": 1}, abandoned_after=0.5) as b,
    ):
        held = await a.acquire("zai")
        assert held is not None
        lease_passed = "select lease_until < now() from pipeline_call_slots where slot = %s"
        _wait_until(lambda: _query(url, lease_passed, (held.number,))[0][0], 30, "the lease")

        waiting = asyncio.create_task(b.acquire("zai"))
        while b.waits == 0 and not waiting.done():  # until its first try found it taken
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # several more tries: the holder is alive, its lock holds
        assert not waiting.done()
        await a.release(held)
        slot = await asyncio.wait_for(waiting, 10)
        assert slot is not None
        assert slot.number == held.number
        await b.release(slot)


async def test_limiter_released_slot_is_free_at_once(postgres_db: str) -> None:
    from analysis_pipeline import CallLimiter

    url = postgres_db
    async with (
        CallLimiter(url, {"zai": 2}, abandoned_after=3600) as a,
        CallLimiter(url, {"zai": 2}, abandoned_after=3600) as b,
    ):
        first = await a.acquire("zai")
        assert first is not None
        rows = _query(url, "select slot from pipeline_call_slots order by slot")
        assert rows == [(0,), (1,)]  # the account's rows, made on first use
        await a.release(first)
        assert _query(url, "select bool_and(lease_until <= now()) from pipeline_call_slots")[0][0]
        held = [await b.acquire("zai"), await b.acquire("zai")]
        assert b.waits == 0  # both free on the first try, an hour's lease notwithstanding
        assert {s.number for s in held if s is not None} == {0, 1}
        for slot in held:
            await b.release(slot)


async def test_limiter_rejects_a_bad_abandoned_after_and_hides_the_password() -> None:
    from analysis_pipeline import CallLimiter, ConfigurationError

    url = "postgresql://app:s3cret-pw@127.0.0.1:1/nowhere"
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigurationError, match="abandoned_after"):
            CallLimiter(url, {"zai": 1}, abandoned_after=bad)
    async with CallLimiter(url, {"zai": 1}, abandoned_after=90) as limiter:
        assert "s3cret-pw" not in repr(limiter)
        assert "abandoned_after=90" in repr(limiter)


async def test_limiter_without_its_table_names_the_migration(postgres_db: str) -> None:
    from analysis_pipeline import BatchError, CallLimiter

    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute("drop table pipeline_call_slots")
    async with CallLimiter(postgres_db, {"zai": 1}) as limiter:
        with pytest.raises(BatchError) as info:
            await limiter.acquire("zai")
    assert "llm-common-db migrate --package analysis-pipeline-batch" in str(info.value)
    assert limiter.in_use["zai"] == 0


def test_two_hundred_bills_across_workers_one_sigkilled(
    postgres_db: str,
    servers: tuple[FakeLLMServer, FakeZaiSearchServer, Latency],
    tmp_path: Path,
) -> None:
    llm, search, latency = servers
    url = postgres_db
    bills = real_bills(200)
    result = asyncio.run(_enqueue(url, bills))
    assert result.added == 200
    base = {"database_url": url, "llm_base_url": llm.base_url,
            "search_base_url": search.base_url, "concurrency": 4,
            "abandoned_after": HOLD + 3}  # fmt: skip
    victim = _start_worker(tmp_path, name="victim", project="victim", **base)
    others = [_start_worker(tmp_path, name=f"w{i}", project="batch", **base) for i in (1, 2)]
    try:
        done_by_victim = (
            "select count(*) from pipeline_batch_items where worker = 'victim' and status = 'done'"
        )
        _wait_until(lambda: _query(url, done_by_victim)[0][0] >= 3, 90, "the victim's bills")

        # Hold every new call for a few seconds, let the calls already answered be settled (each
        # as it is answered, search sets included), then kill the victim mid-run: what it had in
        # flight is never served (its sockets close), so the ledger and the servers stay
        # comparable to the call.
        latency.seconds = search.latency = HOLD
        hold_started = time.monotonic()
        try:
            _wait_until(lambda: _ledger(url) == _served(llm, search), HOLD - 4, "settled calls")
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}: ledger {_ledger(url)}, served {_served(llm, search)}, "
                f"outboxes {_outboxes(tmp_path)}"
            ) from None
        running = _query(
            url,
            "select id, run_id from pipeline_batch_items"
            " where worker = 'victim' and status = 'running' and run_id is not null",
        )
        in_progress = _query(
            url,
            "select count(*) from pipeline_batch_items where worker = 'victim'"
            " and status = 'running'",
        )[0][0]
        steps_before = {
            run_id: _query(
                url,
                "select step, round, started_at from pipeline_steps"
                " where run_id = %s and status = 'completed'",
                (run_id,),
            )
            for _, run_id in running
        }
        assert time.monotonic() - hold_started < HOLD - 1  # no held call has been answered yet
        # Up to the kill, the caps held exactly across the three processes.
        assert 1 <= llm.max_in_flight <= LIMITS["openai"]
        assert 1 <= search.max_in_flight <= LIMITS["zai"]
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=10)
        # Counted again once the victim is dead (before any other worker can notice it has
        # stalled): between the snapshot above and the kill it may have taken one more bill.
        in_progress = _query(
            url,
            "select count(*) from pipeline_batch_items where worker = 'victim'"
            " and status = 'running'",
        )[0][0]
        # The dead worker's slots stay leased for `abandoned_after` (longer than a held call):
        # the provider may still be running its abandoned calls, so no replacement overlaps.
        latency.seconds, search.latency = LLM_LATENCY, SEARCH_LATENCY
        assert running, "the victim was killed with bills in progress"

        all_done = "select count(*) from pipeline_batch_items where status = 'done'"
        _wait_until(lambda: _query(url, all_done)[0][0] == 200, 150, "all 200 bills", every=0.5)
        status = asyncio.run(_status(url))
    finally:
        latency.seconds, search.latency = LLM_LATENCY, SEARCH_LATENCY
        if victim.poll() is None:
            victim.kill()
            victim.communicate(timeout=10)
        try:
            stats = [_stop_worker(p) for p in others]
        finally:
            for proc in others:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate(timeout=10)

    # Every bill completed exactly once: one completed run per bill, the one its row names.
    assert (status.done, status.queued, status.running, status.failed) == (200, 0, 0, 0)
    per_bill = _query(
        url,
        "select i.bill_id, count(r.id) filter (where r.status = 'completed'),"
        " bool_and(r.id = i.run_id or r.status <> 'completed') from pipeline_batch_items i"
        " left join pipeline_runs r on r.bill_id = i.bill_id group by i.bill_id",
    )
    assert len(per_bill) == 200
    assert all(n == 1 and same for _, n, same in per_bill), per_bill

    # The victim's bills were resumed by the others: same run, completed steps re-used as stored.
    for item_id, run_id in running:
        (row,) = _query(url, "select run_id, worker from pipeline_batch_items where id = %s",
                        (item_id,))  # fmt: skip
        assert row[0] == run_id
        assert row[1] != "victim"
        kept = _query(
            url,
            "select step, round, started_at from pipeline_steps"
            " where run_id = %s and status = 'completed'",
            (run_id,),
        )
        assert set(steps_before[run_id]) <= set(kept)
    # A bill the victim had just started may record its run between the snapshot and the kill.
    assert len(running) <= sum(s["resumed"] for s in stats) <= in_progress
    assert sum(s["requeued_stalled"] for s in stats) >= len(running)

    # The cost ledger is exactly what the loopback servers served (calls and tokens).
    assert _ledger(url) == _served(llm, search)
    ledger_cost = _query(url, "select sum(cost) from cost_tracking")[0][0]
    assert status.spend <= ledger_cost

    # The caps held for the whole batch, the victim's abandoned calls included.
    assert 1 <= llm.max_in_flight <= LIMITS["openai"]
    assert 1 <= search.max_in_flight <= LIMITS["zai"]
    assert sum(s["waits"] for s in stats) > 0  # the caps were actually reached


def test_budget_refusal_stops_the_worker_and_leaves_the_rest_queued(
    postgres_db: str,
    servers: tuple[FakeLLMServer, FakeZaiSearchServer, Latency],
    tmp_path: Path,
) -> None:
    llm, search, _ = servers
    url = postgres_db
    asyncio.run(_enqueue(url, real_bills(8)))
    worker = _start_worker(
        tmp_path, name="thrifty", project="batch", database_url=url, concurrency=2,
        llm_base_url=llm.base_url, search_base_url=search.base_url, daily_budget="0.15",
    )  # fmt: skip
    out, err = worker.communicate(timeout=120)  # it stops by itself: no signal sent
    assert worker.returncode == 0, err[-3000:]
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["budget_stopped"] is True
    assert stats["failed"] == 0

    status = asyncio.run(_status(url))
    assert status.failed == 0
    assert status.running == 0
    assert status.done == stats["done"] < 8
    assert status.queued == 8 - status.done
    jobs = _query(
        url,
        "select j.status::text, count(*) from pipeline_batch_items i"
        " join procrastinate_jobs j on j.id = i.job_id where i.status = 'queued' group by 1",
    )
    assert jobs == [("todo", status.queued)]  # still in the queue, for when money is back
    refused = _query(url, "select error from pipeline_batch_items where error is not null")
    assert refused
    assert all("budget" in e.lower() for (e,) in refused)
    spent = _query(url, "select coalesce(sum(cost), 0) from cost_tracking")[0][0]
    assert spent <= Decimal("0.15")
    assert _ledger(url) == _served(llm, search)


def test_a_worker_killed_at_its_first_paid_call_leaves_a_run_the_next_one_resumes(
    postgres_db: str,
    servers: tuple[FakeLLMServer, FakeZaiSearchServer, Latency],
    tmp_path: Path,
) -> None:
    llm, search, latency = servers
    url = postgres_db
    asyncio.run(_enqueue(url, real_bills(1)))
    base = {"database_url": url, "llm_base_url": llm.base_url,
            "search_base_url": search.base_url, "concurrency": 1, "project": "batch",
            "stalled_after": 3.0, "lease_timeout": 3.0}  # fmt: skip
    latency.seconds = HOLD  # the first paid call is not answered while the victim lives
    victim = _start_worker(tmp_path, name="victim", **base)
    survivor = None
    try:
        _wait_until(lambda: llm.request_count >= 1, 60, "the victim's first paid call")
        # The row names the run before the first call is paid for, and that run exists.
        rows = _query(
            url,
            "select i.run_id, r.id, r.status from pipeline_batch_items i"
            " left join pipeline_runs r on r.id = i.run_id",
        )
        assert len(rows) == 1
        named, stored, state = rows[0]
        assert named is not None
        assert (stored, state) == (named, "running")
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=10)
        latency.seconds = LLM_LATENCY
        survivor = _start_worker(tmp_path, name="survivor", **base)
        done = "select count(*) from pipeline_batch_items where status = 'done'"
        _wait_until(lambda: _query(url, done)[0][0] == 1, 90, "the bill")
        stats = _stop_worker(survivor)
    finally:
        latency.seconds = LLM_LATENCY
        for proc in (victim, survivor):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
    # One run, the one the row named before the crash, resumed and completed: no orphan left
    # `running`, no second run of the bill.
    assert stats["resumed"] == 1
    runs = _query(url, "select id, status from pipeline_runs")
    assert runs == [(named, "completed")]
    assert _query(url, "select run_id from pipeline_batch_items") == [(named,)]
    assert _ledger(url) == _served(llm, search)


def test_a_worker_whose_run_store_goes_away_after_a_paid_step_finishes_the_bill_itself(
    postgres_db: str, tcp_proxy: Any, tmp_path: Path
) -> None:
    # Worker A reaches its run store through a proxy that is cut while generate is answered:
    # the paid step is journaled on A's disk only. Worker B, healthy, could take the bill and
    # pay for generate again; A keeps the bill and hands its journal over once the store is back.
    url = postgres_db
    asyncio.run(_enqueue(url, real_bills(1)))
    cut: list[float] = []

    def cut_at_generate(request: RecordedRequest) -> Reply | None:
        if task_of(request.messages) == "generate-analysis" and not cut:
            cut.append(time.monotonic())
            tcp_proxy.stop()
        reply = offline_handler(request)
        return None if reply is None else Reply.hang(LLM_LATENCY, then=reply)

    with FakeLLMServer(handler=cut_at_generate) as llm, FakeZaiSearchServer() as search:
        base = {"database_url": url, "llm_base_url": llm.base_url,
                "search_base_url": search.base_url, "concurrency": 1, "project": "batch",
                "stalled_after": 3.0, "lease_timeout": 3.0}  # fmt: skip
        a = _start_worker(tmp_path, name="A", run_store_url=tcp_proxy.url_for(url), **base)
        b = None
        try:
            taken = "select count(*) from pipeline_batch_items where worker = 'A'"
            _wait_until(lambda: _query(url, taken)[0][0] == 1, 60, "A to take the bill")
            b = _start_worker(tmp_path, name="B", **base)
            _wait_until(lambda: bool(cut), 60, "generate to be paid for")
            time.sleep(6.0)  # an outage longer than the run's lease and B's retry delays
            tcp_proxy.start()
            done = "select count(*) from pipeline_batch_items where status = 'done'"
            _wait_until(lambda: _query(url, done)[0][0] == 1, 90, "the bill")
            stats = {"A": _stop_worker(a), "B": _stop_worker(b)}
        finally:
            for proc in (a, b):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.communicate(timeout=10)
        generated = sum(task_of(r.messages) == "generate-analysis" for r in llm.requests)
        assert generated == 1  # paid once, never again by B
        assert (stats["A"]["done"], stats["B"]["done"]) == (1, 0)
        assert _query(url, "select worker, status from pipeline_batch_items") == [("A", "done")]
        runs = _query(url, "select status from pipeline_runs")
        assert runs == [("completed",)]
        assert not list((tmp_path / "A" / "journal").rglob("*.json"))  # handed over
        assert _ledger(url) == _served(llm, search)


async def test_stopping_twice_cancels_the_worker_once() -> None:
    # Each budget refusal calls stop(); procrastinate turns the first cancellation into a
    # graceful shutdown that waits for the running jobs, which a second one would cut short.
    from analysis_pipeline import BatchWorker

    cancels: list[int] = []
    drained = asyncio.Event()

    async def graceful_worker() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancels.append(1)
            try:
                await asyncio.sleep(0.2)  # the running jobs finish meanwhile
            except asyncio.CancelledError:
                cancels.append(2)
                raise
            drained.set()
            raise

    worker = BatchWorker("postgresql://nobody@127.0.0.1:9/none", pipeline=None)  # type: ignore[arg-type]
    worker._run_task = asyncio.create_task(graceful_worker())
    await asyncio.sleep(0)
    worker.stop()
    await asyncio.sleep(0.05)
    worker.stop()  # a second refusal while the first shutdown drains
    with pytest.raises(asyncio.CancelledError):
        await worker._run_task
    assert cancels == [1]
    assert drained.is_set()
