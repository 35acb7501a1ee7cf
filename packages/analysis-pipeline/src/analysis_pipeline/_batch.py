"""Batch analysis on a PostgreSQL job queue: enqueue bills once, any number of workers, status.

The queue is procrastinate's (tables from ``llm-common-db migrate --package
analysis-pipeline-batch``); this module adds one row per bill in ``pipeline_batch_items``,
unique per (bill id, input hash), so enqueueing a bill twice analyses it once. Enqueue inserts
the rows and defers their jobs in one transaction on the caller's connection.

A worker (:class:`BatchWorker`) takes jobs with procrastinate, runs each bill through the
:class:`~analysis_pipeline.AnalysisPipeline` it is given, and records the run id on the row
before any step is paid for. Worker processes heartbeat through procrastinate; every worker also
looks for jobs whose worker stopped heartbeating (SIGKILL, machine loss) and puts them back in
the queue, and the next worker resumes the row's run through the run log (completed steps are
re-used, never paid again). When a budget refuses a call the row goes back to ``queued``, its job
is rescheduled, and the worker stops taking jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import socket
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ._errors import (
    AnalysisPipelineError,
    BatchError,
    BudgetRefusedError,
    InvalidInputError,
    MissingExtraError,
    RunInProgressError,
    RunNotFoundError,
    StoreUnavailableError,
)

try:
    import procrastinate
    from llm_common_db import PostgresPool, redact_conninfo
    from procrastinate.types import JSONValue
    from psycopg import sql
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("batch analysis", "batch") from exc
from ._inputs import check_run_inputs

if TYPE_CHECKING:
    from ._pipeline import AnalysisPipeline
    from ._records import PipelineResult

__all__ = [
    "BATCH_QUEUE",
    "BatchBill",
    "BatchError",
    "BatchQueue",
    "BatchStatus",
    "BatchWorker",
    "EnqueueResult",
    "WorkerStats",
    "input_hash",
]

logger = logging.getLogger(__name__)

BATCH_QUEUE = "analysis-pipeline"
"""The procrastinate queue batch jobs go to."""
_TASK = "analysis_pipeline.analyse_bill"
_PACKAGE = "analysis-pipeline-batch"


def input_hash(bill_text: str, jurisdiction: str) -> str:
    """SHA-256 of what a bill's analysis depends on: its text and jurisdiction."""
    return hashlib.sha256(f"{jurisdiction}\x00{bill_text}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class BatchBill:
    """One bill to analyse.

    Attributes:
        bill_id: Bill identifier.
        text: Full text.
        jurisdiction: Jurisdiction.
    """

    bill_id: str
    text: str
    jurisdiction: str


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    """What :meth:`BatchQueue.enqueue` did.

    Attributes:
        added: Bills queued now.
        already: Bills (same id and input hash) that were already enqueued earlier.
    """

    added: int
    already: int


@dataclass(frozen=True, slots=True)
class BatchStatus:
    """The batch at one moment.

    Attributes:
        queued: Bills waiting for a worker.
        running: Bills a worker has taken.
        done: Bills analysed.
        failed: Bills that failed every attempt.
        spend: What the batch's runs have paid so far (USD; their stored steps).
        rate: Bills finished per second over the last ``window`` (None before the first).
        eta: Time left at that rate (None when unknown or nothing is left).
        workers: Workers heartbeating now.
    """

    queued: int
    running: int
    done: int
    failed: int
    spend: Decimal
    rate: float | None
    eta: timedelta | None
    workers: int

    @property
    def total(self) -> int:
        """All bills of the batch."""
        return self.queued + self.running + self.done + self.failed


def _app(url: str | None, connect_timeout: float = 5.0) -> procrastinate.App:
    """A procrastinate App on ``url`` (its pool opens only in ``open_async``)."""
    connector = procrastinate.PsycopgConnector(
        conninfo=url or "",
        # No server-side prepares: safe behind Supabase's transaction pooler.
        kwargs={"prepare_threshold": None, "connect_timeout": max(2, math.ceil(connect_timeout))},
        timeout=connect_timeout,
    )
    return procrastinate.App(connector=connector)


def _pool(url: str, connect_timeout: float, max_size: int = 4) -> PostgresPool:
    return PostgresPool.from_url(
        url, max_size=max_size, package=_PACKAGE, connect_timeout=connect_timeout
    )


_INSERT = """
insert into public.pipeline_batch_items (bill_id, jurisdiction, input_hash, bill_text)
select * from unnest(%s::text[], %s::text[], %s::text[], %s::text[])
on conflict (bill_id, input_hash) do nothing
returning id
"""


class BatchQueue:
    """Enqueue bills for batch analysis and read the batch's status.

    Args:
        database_url: PostgreSQL URL (a password in it is never shown).
        max_bill_chars: Bills longer than this are refused (as ``AnalysisPipeline`` would).
        connect_timeout: Longest wait for a connection, in seconds.

    Example:
        >>> async with BatchQueue(url) as queue:
        ...     await queue.enqueue([BatchBill("CA-AB1482-2019", text, "California")])
        ...     print((await queue.status()).queued)
    """

    def __init__(
        self, database_url: str, *, max_bill_chars: int = 2_000_000, connect_timeout: float = 5.0
    ) -> None:
        self._pg = _pool(database_url, connect_timeout)
        self._url = database_url
        self.max_bill_chars = max_bill_chars

    def __repr__(self) -> str:
        return f"BatchQueue({self._pg.display!r})"

    async def __aenter__(self) -> BatchQueue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._pg.aclose()

    async def enqueue(self, bills: Iterable[BatchBill]) -> EnqueueResult:
        """Queue each bill once per (bill id, input hash), rows and jobs in one transaction.

        Raises:
            InvalidInputError: A bill with an empty id, text or jurisdiction, or over the size
                cap; nothing is enqueued.
            BatchError: The database refused.
        """
        unique: dict[tuple[str, str], BatchBill] = {}
        for bill in bills:
            check_run_inputs(bill.bill_id, bill.text, bill.jurisdiction, self.max_bill_chars)
            unique.setdefault((bill.bill_id, input_hash(bill.text, bill.jurisdiction)), bill)
        if not unique:
            return EnqueueResult(0, 0)
        keys = list(unique)
        columns = (
            [b for b, _ in keys],
            [unique[k].jurisdiction for k in keys],
            [h for _, h in keys],
            [unique[k].text for k in keys],
        )
        app = _app(None)
        try:
            async with self._pg.connection() as conn, conn.transaction():
                rows = await (await conn.execute(_INSERT, columns)).fetchall()
                ids = [int(r[0]) for r in rows]
                if ids:
                    deferrer = app.configure_task(_TASK, queue=BATCH_QUEUE, connection=conn)
                    kwargs: list[dict[str, JSONValue]] = [{"item_id": i} for i in ids]
                    job_ids = await deferrer.batch_defer_async(*kwargs)
                    await conn.execute(
                        "update public.pipeline_batch_items i set job_id = j.job_id"
                        " from unnest(%s::bigint[], %s::bigint[]) as j(id, job_id)"
                        " where i.id = j.id",
                        (ids, job_ids),
                    )
        except AnalysisPipelineError:
            raise
        except Exception as exc:
            raise BatchError(f"cannot enqueue: {_describe(exc)}") from exc
        return EnqueueResult(len(ids), len(keys) - len(ids))

    async def enqueue_from_table(
        self,
        table: str,
        *,
        id_column: str = "bill_id",
        text_column: str = "bill_text",
        jurisdiction_column: str = "jurisdiction",
    ) -> EnqueueResult:
        """Enqueue every row of ``table`` (``schema.table`` allowed) of the same database.

        Raises:
            BatchError: No such table or column.
            InvalidInputError: A row with an empty id, text or jurisdiction.
        """
        parts = table.split(".")
        if not 1 <= len(parts) <= 2 or not all(parts):
            raise BatchError(f"--from-table takes TABLE or SCHEMA.TABLE, got {table!r}")
        query = sql.SQL("select {}::text, {}::text, {}::text from {}").format(
            sql.Identifier(id_column),
            sql.Identifier(text_column),
            sql.Identifier(jurisdiction_column),
            sql.Identifier(*parts),
        )
        try:
            async with self._pg.connection() as conn:
                name = sql.Identifier(*parts).as_string(conn)
                found = await (await conn.execute("select to_regclass(%s)", (name,))).fetchone()
                if found is None or found[0] is None:
                    raise BatchError(f"--from-table: no table {table!r} in this database")
                rows = await (await conn.execute(query)).fetchall()
        except AnalysisPipelineError:
            raise
        except Exception as exc:
            raise BatchError(f"cannot read {table}: {_describe(exc)}") from exc
        return await self.enqueue(BatchBill(r[0] or "", r[1] or "", r[2] or "") for r in rows)

    async def status(self, *, window: timedelta = timedelta(minutes=5)) -> BatchStatus:
        """Counts per state, spend so far, the recent rate and the ETA."""
        now = datetime.now(UTC)
        try:
            async with self._pg.connection() as conn:
                counts = dict(
                    await (
                        await conn.execute(
                            "select status, count(*) from public.pipeline_batch_items"
                            " group by status"
                        )
                    ).fetchall()
                )
                row = await (
                    await conn.execute(
                        "select coalesce(sum(s.cost), 0) from public.pipeline_steps s"
                        " where s.run_id in (select run_id from public.pipeline_batch_items"
                        " where run_id is not null)"
                    )
                ).fetchone()
                recent = await (
                    await conn.execute(
                        "select count(*), min(started_at) from public.pipeline_batch_items"
                        " where status = 'done' and finished_at > %s",
                        (now - window,),
                    )
                ).fetchone()
                workers = await (
                    await conn.execute(
                        "select count(*) from public.procrastinate_workers"
                        " where last_heartbeat > now() - interval '60 seconds'"
                    )
                ).fetchone()
        except AnalysisPipelineError:
            raise
        except Exception as exc:
            raise BatchError(f"cannot read the batch status: {_describe(exc)}") from exc
        done_recent, first = (recent or (0, None))[0], (recent or (0, None))[1]
        rate: float | None = None
        if done_recent and first is not None:
            span = max((now - max(first, now - window)).total_seconds(), 1.0)
            rate = done_recent / span
        left = int(counts.get("queued", 0)) + int(counts.get("running", 0))
        eta = timedelta(seconds=left / rate) if rate and left else None
        return BatchStatus(
            queued=int(counts.get("queued", 0)),
            running=int(counts.get("running", 0)),
            done=int(counts.get("done", 0)),
            failed=int(counts.get("failed", 0)),
            spend=Decimal(row[0]) if row is not None else Decimal(0),
            rate=rate,
            eta=eta,
            workers=int(workers[0]) if workers is not None else 0,
        )


def _outage(exc: BaseException) -> bool:
    """Whether the run store being unreachable caused ``exc`` (anywhere in its causes)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        err = todo.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, StoreUnavailableError):
            return True
        todo.extend(e for e in (err.__cause__, err.__context__) if e is not None)
    return False


def _describe(exc: BaseException) -> str:
    """One line for a database error, with no connection string in it."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return redact_conninfo(text) if "://" in text or "password" in text else text


@dataclass
class WorkerStats:
    """What one :meth:`BatchWorker.run` did.

    Attributes:
        done: Bills analysed.
        resumed: Of those, bills whose run was resumed (taken over from a dead worker).
        failed: Bills marked failed (out of attempts).
        retried: Jobs put back for a later attempt.
        budget_stopped: Whether a budget refusal stopped the worker.
        requeued_stalled: Jobs of dead workers this worker put back in the queue.
        run_ids: The runs this worker completed, in order.
    """

    done: int = 0
    resumed: int = 0
    failed: int = 0
    retried: int = 0
    budget_stopped: bool = False
    requeued_stalled: int = 0
    run_ids: list[str] = field(default_factory=list)


class BatchWorker:
    """Takes batch jobs and analyses their bills, ``concurrency`` at a time.

    Run as many as needed, on any number of machines, against one database. A job whose worker
    died is re-queued by any live worker after ``stalled_after`` seconds without a heartbeat
    and resumed through the run log. A budget refusal re-queues the bill and stops this worker
    (``stats.budget_stopped``); the remaining jobs stay queued.

    Args:
        database_url: PostgreSQL URL of the queue (a password in it is never shown).
        pipeline: The pipeline to run bills through (its store should be the shared
            ``PostgresRunStore`` so another worker can resume its runs).
        concurrency: Bills analysed at once by this worker.
        models: Step to model chain, as for :meth:`AnalysisPipeline.run`.
        max_rounds: Review rounds at most.
        name: Worker name (``host:pid`` by default).
        wait: Keep waiting for jobs (True) or return once the queue is empty.
        heartbeat_interval: Seconds between this worker's heartbeats.
        stalled_after: Seconds without a heartbeat after which a worker counts as dead.
        max_attempts: Attempts per bill before it is marked failed.
        retry_delay: Seconds before a failed attempt is retried (doubling each time).
        budget_retry_delay: Seconds before a budget-refused bill is offered again.
        outage_retry_delay: Seconds before a bill whose run store was unreachable is offered
            again (such attempts never make a bill ``failed``: nothing is lost in an outage).
        connect_timeout: Longest wait for a connection of the worker's own pool, in seconds.
        journal_hold: Longest time, in seconds, a worker keeps a bill whose run store went away
            after it paid for a step (the step's result is journaled on this machine only, so
            it resumes the run itself once the store answers instead of letting another worker
            pay for the step again).
        journal_retry_interval: Seconds between its attempts meanwhile.
    """

    def __init__(
        self,
        database_url: str,
        pipeline: AnalysisPipeline,
        *,
        concurrency: int = 4,
        models: Mapping[str, Any] | None = None,
        max_rounds: int = 2,
        name: str | None = None,
        wait: bool = True,
        heartbeat_interval: float = 10.0,
        stalled_after: float = 30.0,
        max_attempts: int = 3,
        retry_delay: float = 5.0,
        budget_retry_delay: float = 300.0,
        outage_retry_delay: float = 30.0,
        connect_timeout: float = 5.0,
        journal_hold: float = 600.0,
        journal_retry_interval: float = 1.0,
    ) -> None:
        if concurrency < 1:
            raise InvalidInputError(f"concurrency must be at least 1, got {concurrency}")
        if stalled_after <= heartbeat_interval:
            raise InvalidInputError("stalled_after must be longer than heartbeat_interval")
        if journal_retry_interval <= 0 or journal_hold < 0:
            raise InvalidInputError("journal_retry_interval must be > 0 and journal_hold >= 0")
        self.pipeline = pipeline
        self.concurrency = concurrency
        self.models = dict(models) if models else None
        self.max_rounds = max_rounds
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.wait = wait
        self.heartbeat_interval = heartbeat_interval
        self.stalled_after = stalled_after
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.budget_retry_delay = budget_retry_delay
        self.outage_retry_delay = outage_retry_delay
        self.journal_hold = journal_hold
        self.journal_retry_interval = journal_retry_interval
        self.stats = WorkerStats()
        self._url = database_url
        self._connect_timeout = connect_timeout
        self._pg = _pool(database_url, connect_timeout, max_size=concurrency + 2)
        self._run_task: asyncio.Task[None] | None = None
        self._stopping = False

    def __repr__(self) -> str:
        return f"BatchWorker({self.name!r}, {self._pg.display!r}, concurrency={self.concurrency})"

    def stop(self) -> None:
        """Stop taking jobs; running bills finish first. Idempotent."""
        # Cancelled once only: procrastinate turns the first cancellation into a graceful
        # shutdown that waits for the running jobs, and a second one would cut that wait
        # short, leaving their jobs `doing` with no worker (each budget refusal calls stop).
        if self._run_task is not None and not self._stopping:
            self._stopping = True
            self._run_task.cancel()

    async def run(self) -> WorkerStats:
        """Work until stopped (SIGINT/SIGTERM, :meth:`stop`, a budget refusal) or, with
        ``wait=False``, until the queue is empty.

        Returns:
            What this worker did.
        """
        app = _app(self._url, self._connect_timeout)
        app.task(
            name=_TASK,
            queue=BATCH_QUEUE,
            pass_context=True,
            retry=_Retry(self),
        )(self._job)
        reaper: asyncio.Task[None] | None = None
        try:
            async with app.open_async():
                reaper = asyncio.create_task(self._reap(app), name="batch:stalled-jobs")
                self._stopping = False
                self._run_task = asyncio.create_task(
                    app.run_worker_async(
                        queues=[BATCH_QUEUE],
                        name=self.name,
                        concurrency=self.concurrency,
                        wait=self.wait,
                        update_heartbeat_interval=self.heartbeat_interval,
                        stalled_worker_timeout=self.stalled_after,
                        fetch_job_polling_interval=min(5.0, self.heartbeat_interval),
                        install_signal_handlers=True,
                    )
                )
                with contextlib.suppress(asyncio.CancelledError):
                    await self._run_task
        finally:
            if reaper is not None:
                reaper.cancel()
                await asyncio.gather(reaper, return_exceptions=True)
            await self._pg.aclose()
        return self.stats

    async def _reap(self, app: Any) -> None:
        """Put the jobs of workers that stopped heartbeating back in the queue."""
        manager = app.job_manager
        while True:
            try:
                stalled = await manager.get_stalled_jobs(
                    queue=BATCH_QUEUE, seconds_since_heartbeat=self.stalled_after
                )
                for job in stalled:
                    try:
                        await manager.retry_job(job)
                    except Exception as exc:  # another worker re-queued it first
                        logger.debug("stalled job %s not re-queued: %s", job.id, exc)
                        continue
                    self.stats.requeued_stalled += 1
                    logger.warning("job %s of a dead worker is back in the queue", job.id)
            except Exception as exc:  # the next round tries again
                logger.warning("looking for stalled jobs failed: %s", _describe(exc))
            await asyncio.sleep(self.heartbeat_interval)  # a period, not a wait for an event

    async def _set(self, item_id: int, **values: Any) -> None:
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in values
        )
        # A finished bill stays finished, whatever a late duplicate of its job reports.
        query = sql.SQL(
            "update public.pipeline_batch_items set {} where id = {} and status <> 'done'"
        ).format(assignments, sql.Placeholder("item_id"))
        async with self._pg.connection() as conn:
            await conn.execute(query, {**values, "item_id": item_id})

    async def _job(self, context: Any, item_id: int) -> None:
        async with self._pg.connection() as conn:
            row = await (
                await conn.execute(
                    "update public.pipeline_batch_items"
                    " set status = 'running', attempts = attempts + 1, worker = %s,"
                    " started_at = coalesce(started_at, now()), error = null"
                    " where id = %s and status <> 'done'"
                    " returning bill_id, jurisdiction, bill_text, run_id",
                    (self.name, item_id),
                )
            ).fetchone()
        if row is None:
            return  # done already (or deleted): nothing to pay for
        bill_id, jurisdiction, text, run_id = row
        try:
            run_id = await self._analyse(item_id, bill_id, jurisdiction, text, run_id)
        except BudgetRefusedError as exc:
            await self._set(item_id, status="queued", error=exc.reason)
            self.stats.budget_stopped = True
            logger.warning("budget refused a call; %s stops taking jobs", self.name)
            asyncio.get_running_loop().call_soon(self.stop)
            raise
        except Exception as exc:
            if isinstance(exc, RunInProgressError) or _outage(exc):
                await self._set(item_id, status="queued", error=f"{type(exc).__name__}: {exc}")
                raise
            await self._failed_attempt(context, item_id, exc)
            raise
        await self._set(item_id, status="done", finished_at=datetime.now(UTC))
        self.stats.done += 1
        self.stats.run_ids.append(run_id)

    async def _failed_attempt(self, context: Any, item_id: int, exc: BaseException) -> None:
        last = context.job.attempts + 1 >= self.max_attempts
        await self._set(
            item_id,
            status="failed" if last else "queued",
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=datetime.now(UTC) if last else None,
        )
        if last:
            self.stats.failed += 1

    async def _analyse(
        self, item_id: int, bill_id: str, jurisdiction: str, text: str, run_id: Any
    ) -> str:
        pipeline = self.pipeline
        if run_id is not None:
            try:
                result = await self._resume(str(run_id))
            except RunNotFoundError:
                run_id = None
            else:
                self.stats.resumed += 1
                return result.run_id
        # The id is on the row before the run exists, so nothing is paid for a run that no row
        # names: a worker that dies at any point leaves either no run (the next one starts
        # afresh under a new id) or this run, which the next one resumes.
        run_id = str(uuid.uuid4())
        await self._set(item_id, run_id=run_id)
        try:
            result = await pipeline.run(
                bill_id,
                text,
                jurisdiction,
                dict(self.models) if self.models else None,
                self.max_rounds,
                run_id=run_id,
            )
        except Exception as exc:
            if not self._holds_journal(run_id, exc):
                raise
            result = await self._resume(run_id)
        return result.run_id

    def _holds_journal(self, run_id: str, exc: BaseException) -> bool:
        """Whether the run failed for a store outage after paying for a step this process
        journaled (its disk is the only place that result is: no other worker can resume it
        without paying again)."""
        return _outage(exc) and bool(self.pipeline.journal.pending(run_id))

    async def _resume(self, run_id: str) -> PipelineResult:
        """Resume ``run_id``; while this process holds journaled steps of it and the run store
        is away, keep the job and try again every ``journal_retry_interval`` seconds, for at
        most ``journal_hold`` seconds, so this process hands its journal over itself."""
        deadline = asyncio.get_running_loop().time() + self.journal_hold
        waiting = False
        while True:
            try:
                return await self.pipeline.resume(run_id, self.models)
            except Exception as exc:
                if not self._holds_journal(run_id, exc):
                    raise
                if asyncio.get_running_loop().time() >= deadline:
                    logger.error(
                        "run %s: the run store is still away after %.0f s; its journaled steps"
                        " stay on this machine (%s) and the bill goes back to the queue",
                        run_id,
                        self.journal_hold,
                        self.name,
                    )
                    raise
                if not waiting:  # one line per wait, not one per try
                    logger.warning(
                        "run %s: the run store is away and this worker holds a paid step of"
                        " it; keeping the bill until the store answers",
                        run_id,
                    )
                    waiting = True
            await asyncio.sleep(self.journal_retry_interval)  # a poll: the store has no event


class _Retry(procrastinate.BaseRetryStrategy):
    """Retry decisions for batch jobs: a budget refusal, a live lease, other failures."""

    def __init__(self, worker: BatchWorker) -> None:
        self.worker = worker

    def get_retry_decision(
        self, *, exception: BaseException, job: Any
    ) -> procrastinate.RetryDecision | None:
        worker = self.worker
        if isinstance(exception, BudgetRefusedError):
            seconds = worker.budget_retry_delay
        elif isinstance(exception, RunInProgressError):
            seconds = worker.pipeline.config.lease_timeout
        elif _outage(exception):
            seconds = worker.outage_retry_delay
        elif job.attempts + 1 < worker.max_attempts:
            seconds = worker.retry_delay * (2**job.attempts)
        else:
            return None
        worker.stats.retried += 1
        return procrastinate.RetryDecision(retry_at=datetime.now(UTC) + timedelta(seconds=seconds))
