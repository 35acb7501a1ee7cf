"""``analysis-pipeline batch enqueue|status`` and ``analysis-pipeline worker``.

The queue lives in PostgreSQL (``llm-common-db migrate --package analysis-pipeline
--package analysis-pipeline-batch --package cost-tracker``); run ``worker`` on as many
machines as needed against the same ``--database-url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from analysis_pipeline._limiter import ABANDONED_AFTER

if TYPE_CHECKING:
    from analysis_pipeline._batch import BatchStatus

__all__ = ["batch_app", "worker"]

batch_app = typer.Typer(
    help="Batch analysis on the PostgreSQL job queue: enqueue bills, watch progress.",
    no_args_is_help=True,
)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar=["ANALYSIS_PIPELINE_DATABASE_URL", "DATABASE_URL"],
        show_envvar=True,
        help="PostgreSQL URL of the queue, the run log and the cost ledger.",
    ),
]
# Per-account caps on concurrent calls when --limit names none (providers limit accounts).
DEFAULT_LIMITS = {"openrouter": 16, "zai": 8, "openai": 16, "anthropic": 16}


def _url(database_url: str | None) -> str:
    from analysis_pipeline._cli import _fail

    if not database_url:
        _fail("batch analysis needs a PostgreSQL database: give --database-url or set DATABASE_URL")
    return database_url


@batch_app.command("enqueue")
def enqueue(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Bill text files; the bill id is the file name without .txt."),
    ] = None,
    jurisdiction: Annotated[
        str | None, typer.Option(help="Jurisdiction of the FILES (required with FILES).")
    ] = None,
    from_table: Annotated[
        str | None,
        typer.Option("--from-table", help="Enqueue every row of TABLE (or SCHEMA.TABLE)."),
    ] = None,
    id_column: Annotated[str, typer.Option(help="--from-table: bill id column.")] = "bill_id",
    text_column: Annotated[str, typer.Option(help="--from-table: text column.")] = "bill_text",
    jurisdiction_column: Annotated[
        str, typer.Option(help="--from-table: jurisdiction column.")
    ] = "jurisdiction",
    database_url: DatabaseUrl = None,
) -> None:
    """Queue bills for analysis; a bill already queued with the same text is skipped."""
    from analysis_pipeline._batch import BatchBill, BatchQueue
    from analysis_pipeline._cli import _fail, _read_bill, _run, out
    from analysis_pipeline._config import PipelineConfig

    url = _url(database_url)
    if bool(files) == bool(from_table):
        _fail("give bill FILES or --from-table TABLE (one of them)")
    bills: list[Any] = []
    if files:
        if not jurisdiction:
            _fail("--jurisdiction is required with FILES")
        cap = PipelineConfig().max_bill_chars
        for file in files:
            bill_id = file.name.removesuffix(".txt")
            bills.append(
                BatchBill(bill_id, _read_bill(file, bill_id, jurisdiction, cap), jurisdiction)
            )

    async def go() -> Any:
        async with BatchQueue(url) as queue:
            if from_table:
                return await queue.enqueue_from_table(
                    from_table,
                    id_column=id_column,
                    text_column=text_column,
                    jurisdiction_column=jurisdiction_column,
                )
            return await queue.enqueue(bills)

    result = _run(go)
    out.print(f"enqueued {result.added} bill(s); {result.already} already enqueued (skipped)")


def status_view(status: BatchStatus) -> Group:
    """The batch as a table and a progress bar."""
    table = Table(title="batch", show_header=True)
    for name in ("queued", "running", "done", "failed", "spend (USD)", "rate", "ETA", "workers"):
        table.add_column(name, justify="right")
    rate = f"{status.rate:.2f} bills/s" if status.rate else "-"
    eta = str(timedelta(seconds=round(status.eta.total_seconds()))) if status.eta else "-"
    table.add_row(
        str(status.queued), str(status.running), str(status.done), str(status.failed),
        f"{status.spend:.6f}", rate, eta, str(status.workers),
    )  # fmt: skip
    finished = status.done + status.failed
    bar = ProgressBar(total=max(status.total, 1), completed=finished, width=50)
    caption = f"{finished}/{status.total} finished"
    return Group(table, bar, caption)


@batch_app.command("status")
def status(
    watch: Annotated[
        float | None,
        typer.Option(min=0.5, help="Refresh every SECONDS until nothing is queued or running."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Queued / running / done / failed, spend so far, rate, ETA and a progress bar."""
    from analysis_pipeline._batch import BatchQueue
    from analysis_pipeline._cli import _run, out

    url = _url(database_url)

    async def go() -> BatchStatus:
        async with BatchQueue(url) as queue:
            current = await queue.status()
            if watch is None or as_json:
                return current
            # Transient: the final view is printed once below, as without --watch.
            with Live(
                status_view(current), console=out, refresh_per_second=4, transient=True
            ) as live:
                while current.queued + current.running:
                    await asyncio.sleep(watch)  # the refresh period the user asked for
                    current = await queue.status()
                    live.update(status_view(current))
            return current

    current = _run(go)
    if as_json:
        out.print_json(
            data={
                "queued": current.queued, "running": current.running, "done": current.done,
                "failed": current.failed, "spend": str(current.spend), "rate": current.rate,
                "eta_seconds": current.eta.total_seconds() if current.eta else None,
                "workers": current.workers,
            }
        )  # fmt: skip
    else:
        out.print(status_view(current))


def _parse_limits(options: list[str]) -> dict[str, int]:
    from analysis_pipeline._cli import _fail

    limits = dict(DEFAULT_LIMITS)
    for option in options:
        account, sep, value = option.partition("=")
        if not sep or not account.strip() or not value.strip().isdigit() or int(value) < 1:
            _fail(f"--limit takes ACCOUNT=N with N >= 1, got {option!r}")
        limits[account.strip()] = int(value)
    return limits


@contextlib.asynccontextmanager
async def _worker_pipeline(
    url: str,
    limits: dict[str, int],
    daily_budget: Decimal | None,
    concurrency: int,
    abandoned_after: float,
) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    """The production stack on one database: run log, cost ledger, call limiter, providers."""
    from cost_tracker import CostTracker, PostgresCostStore
    from llm_client import LLMClient

    from analysis_pipeline._cli import _legislation_service, _offline
    from analysis_pipeline._config import PipelineConfig
    from analysis_pipeline._limiter import CallLimiter, LimitedCostSink
    from analysis_pipeline._pipeline import AnalysisPipeline
    from analysis_pipeline._stores.postgres import PostgresRunStore
    from analysis_pipeline.testing import OfflineSearch, offline_models

    store = PostgresRunStore(url, max_size=concurrency + 2)
    tracker = CostTracker(PostgresCostStore(url), daily_budget=daily_budget)
    limiter = CallLimiter(url, limits, abandoned_after=abandoned_after)
    sink = LimitedCostSink(tracker, limiter)
    async with (
        contextlib.aclosing(store),
        tracker,
        contextlib.aclosing(limiter),
        LLMClient(cost_sink=sink) as llm,
    ):
        config = PipelineConfig()
        if _offline():
            yield (
                AnalysisPipeline(llm, OfflineSearch(), store=store, config=config),
                dict(offline_models()),
            )
            return
        search: Any = OfflineSearch()
        client: Any = None
        if os.environ.get("ZAI_API_KEY"):
            from web_search import WebSearchClient

            client = WebSearchClient("zai", cost_sink=sink)
            search = _legislation_service(client)
        try:
            yield AnalysisPipeline(llm, search, store=store, config=config), {}
        finally:
            if client is not None:
                await client.aclose()


def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="Bills analysed at once.")] = 4,
    limit: Annotated[
        list[str] | None,
        typer.Option(
            "--limit",
            help="ACCOUNT=N: calls at once per provider account across ALL workers "
            f"(defaults: {', '.join(f'{k}={v}' for k, v in DEFAULT_LIMITS.items())}).",
        ),
    ] = None,
    abandoned_after: Annotated[
        float,
        typer.Option(
            min=1.0,
            help="Seconds a dead worker's call slots stay taken (its calls may still be running "
            "at the provider): the longest one call can run.",
        ),
    ] = ABANDONED_AFTER,
    daily_budget: Annotated[
        str | None, typer.Option(help="Daily budget in USD (cost-tracker, shared by workers).")
    ] = None,
    exit_when_empty: Annotated[
        bool, typer.Option(help="Stop once the queue is empty instead of waiting for more.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Analyse queued bills until stopped (Ctrl-C / SIGTERM finish the bills in progress)."""
    from analysis_pipeline._batch import BatchWorker
    from analysis_pipeline._cli import OFFLINE_NOTE, _fail, _run, err, out

    url = _url(database_url)
    limits = _parse_limits(limit or [])
    budget: Decimal | None = None
    if daily_budget is not None:
        try:
            budget = Decimal(daily_budget)
        except InvalidOperation:
            _fail(f"--daily-budget takes an amount in USD, got {daily_budget!r}")

    async def go() -> Any:
        from llm_client import prepare_for_serving

        from analysis_pipeline._batch import BatchQueue

        async with BatchQueue(url) as queue:  # unreachable or unmigrated: one clear line now
            await queue.status()
        wiring = _worker_pipeline(url, limits, budget, concurrency, abandoned_after)
        async with wiring as (pipeline, models):
            prepare_for_serving()  # a first call must not import for seconds: heartbeats wait
            if models:
                err.print(f"[dim]{OFFLINE_NOTE}[/]")
            job = BatchWorker(
                url, pipeline, concurrency=concurrency, models=models or None,
                wait=not exit_when_empty,
            )  # fmt: skip
            err.print(f"worker {job.name}: taking jobs ({concurrency} at a time)")
            return await job.run()

    stats = _run(go)
    note = " (stopped: budget refused)" if stats.budget_stopped else ""
    out.print(
        f"worker done: {stats.done} analysed, {stats.resumed} resumed, {stats.failed} failed, "
        f"{stats.requeued_stalled} re-queued from dead workers{note}"
    )
