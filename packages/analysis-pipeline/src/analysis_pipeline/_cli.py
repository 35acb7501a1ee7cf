"""The ``analysis-pipeline`` command: run a bill end to end, list, show, resume, score, compare.

With no ``OPENROUTER_API_KEY`` / ``ZAI_API_KEY`` in the environment it runs entirely offline
(llm-client's test model with a bill-aware handler, the bundled search fixture) and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape

from analysis_pipeline._batch_cli import batch_app, worker
from analysis_pipeline._cli_render import (
    LiveSteps,
    analysis_panel,
    comparison_table,
    cost_table,
    review_panel,
    runs_table,
    steps_table,
)
from analysis_pipeline._compare import compare_models, comparison_csv
from analysis_pipeline._config import PipelineConfig
from analysis_pipeline._errors import AnalysisPipelineError
from analysis_pipeline._inputs import check_run_inputs
from analysis_pipeline._pipeline import AnalysisPipeline
from analysis_pipeline._records import PipelineResult
from analysis_pipeline._registry import STEP_NAMES
from analysis_pipeline._stores import LocalRunStore, RunStore
from analysis_pipeline._stores.local import default_state_dir
from analysis_pipeline.testing import OfflineSearch, offline_models  # an app may use them

__all__ = ["app"]

app = typer.Typer(
    help="Analyse bills for cost-of-living impact: research → generate → review → refine.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(batch_app, name="batch")
app.command()(worker)
out = Console()
err = Console(stderr=True)
T = TypeVar("T")

OFFLINE_NOTE = (
    "Offline mode: no OPENROUTER_API_KEY or ZAI_API_KEY set, so llm-client's test model and "
    "the bundled search fixture stand in (no network, no cost)."
)
# Used only when keys are set and llm-client's configuration names no model for a step.
_ONLINE_DEFAULTS = {
    "openrouter": {"generate": "openrouter/openai/gpt-4o-mini",
                   "review": "openrouter/anthropic/claude-3.5-haiku"},
    "zai": {"generate": "zai/glm-4.6", "review": "zai/glm-4.5-air"},
}  # fmt: skip

StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="Project directory of the local run store [.llm-common]."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _offline() -> bool:
    return not (os.environ.get("OPENROUTER_API_KEY") or os.environ.get("ZAI_API_KEY"))


def _run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()

    try:
        return asyncio.run(main())
    except AnalysisPipelineError as exc:
        _fail(str(exc))
    except Exception as exc:  # a provider, store or budget error: one line, never a traceback
        _fail(f"{type(exc).__name__}: {exc}")


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)  # one line, unwrapped
    raise typer.Exit(1)


def _read_bill(file: Path, bill_id: str, jurisdiction: str, max_chars: int) -> str:
    """The bill's text, checked before any output: UTF-8, non-empty, within the size cap."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror or exc}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(
            f"{file} is not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}); convert it, e.g. iconv -f latin1 -t utf-8"
        )
    try:
        check_run_inputs(bill_id, text, jurisdiction, max_chars)
    except AnalysisPipelineError as exc:
        _fail(f"{file}: {exc}" if not text.strip() else str(exc))
    return text


async def _with_store(store_dir: Path | None, work: Callable[[RunStore], Awaitable[T]]) -> T:
    async with LocalRunStore(store_dir or default_state_dir()) as local:
        return await work(local)


@contextlib.asynccontextmanager
async def _pipeline(
    store_dir: Path | None, context_tokens: int | None = None
) -> AsyncIterator[tuple[AnalysisPipeline, dict[str, Any]]]:
    """Build the pipeline for this environment: offline stand-ins or real providers."""
    from cost_tracker import CostTracker, LocalCostStore
    from llm_client import LLMClient

    base = store_dir or default_state_dir()
    store = LocalRunStore(base)
    config = PipelineConfig()
    if context_tokens:
        config.max_context_tokens = context_tokens
    tracker = CostTracker(LocalCostStore(base), outbox_path=base / "cost-outbox.sqlite3")
    async with contextlib.aclosing(store), tracker, LLMClient(cost_sink=tracker) as llm:
        if _offline():
            yield (
                AnalysisPipeline(llm, OfflineSearch(), store=store, config=config),
                dict(offline_models()),
            )
            return
        provider = "openrouter" if os.environ.get("OPENROUTER_API_KEY") else "zai"
        if not llm.config.steps:
            config.models = {k: [v] for k, v in _ONLINE_DEFAULTS[provider].items()}
        search: Any = OfflineSearch()
        client: Any = None
        if os.environ.get("ZAI_API_KEY"):
            from web_search import WebSearchClient

            client = WebSearchClient("zai", cost_sink=tracker)
            search = _legislation_service(client)
        try:
            yield AnalysisPipeline(llm, search, store=store, config=config), {}
        finally:
            if client is not None:
                await client.aclose()


def _legislation_service(client: Any) -> Any:
    from web_search.services import LegislationSearchService

    return LegislationSearchService(client)


def _parse_models(**given: str | None) -> dict[str, list[str]]:
    return {
        step: [m.strip() for m in value.split(",") if m.strip()]
        for step, value in given.items()
        if value
    }


def _parse_model_options(options: list[str]) -> dict[str, list[str]]:
    """``["review=a,b", ...]`` as step chains, every step checked against the registry."""
    chosen: dict[str, list[str]] = {}
    for option in options:
        step, sep, value = option.partition("=")
        step = step.strip()
        if not sep or step not in STEP_NAMES:
            _fail(f"--model takes STEP=MODEL with STEP one of {', '.join(STEP_NAMES)}: {option!r}")
        chosen.update(_parse_models(**{step: value}))
    return chosen


def _print_result(result: PipelineResult, as_json: bool) -> None:
    if as_json:
        out.print_json(result.model_dump_json())
        return
    out.print(analysis_panel(result.analysis, result.bill_id))
    out.print(review_panel(result.review, result.passed))
    out.print(cost_table(result))
    out.print(f"run id: [bold]{result.run_id}[/]  rounds: {result.rounds}")


async def _with_live(
    title: str, as_json: bool, work: Callable[[Callable[[Any], None]], Awaitable[T]]
) -> T:
    state = LiveSteps(title)
    if as_json:
        return await work(lambda event: None)
    shown: list[Live] = []

    def on_event(event: Any) -> None:
        state.update(event)
        if not shown:  # from the first step on: a refusal before it prints no empty table
            shown.append(Live(state, console=err, refresh_per_second=8, transient=False))
            shown[0].start()
        shown[0].refresh()

    try:
        return await work(on_event)
    finally:
        if shown:
            shown[0].stop()
            err.print()  # after the last frame: piped output has no newline after it otherwise


@app.command()
def run(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Bill text file.")],
    bill_id: Annotated[str, typer.Option("--bill-id", help="Bill identifier.")],
    jurisdiction: Annotated[str, typer.Option("--jurisdiction", help="Jurisdiction.")],
    research_model: Annotated[str | None, typer.Option(help="Model(s), comma = fallback.")] = None,
    generate_model: Annotated[str | None, typer.Option(help="Model(s) for generate.")] = None,
    review_model: Annotated[str | None, typer.Option(help="Model(s) for review.")] = None,
    refine_model: Annotated[str | None, typer.Option(help="Model(s) for refine.")] = None,
    condense_model: Annotated[str | None, typer.Option(help="Model(s) for condense.")] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help=f"STEP=MODEL[,FALLBACK...] for any step ({', '.join(STEP_NAMES)}); repeatable.",
        ),
    ] = None,
    max_rounds: Annotated[int, typer.Option(min=1, help="Review rounds at most.")] = 2,
    context_tokens: Annotated[
        int | None, typer.Option(help="Cap every model's context window (e.g. 8192).")
    ] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Analyse one bill: research, generate, review, refine; print analysis, review and cost."""
    text = _read_bill(file, bill_id, jurisdiction, PipelineConfig().max_bill_chars)
    chosen = _parse_models(
        research=research_model, generate=generate_model, review=review_model,
        refine=refine_model, condense=condense_model,
    )  # fmt: skip
    chosen.update(_parse_model_options(model or []))

    async def go() -> PipelineResult:
        async with _pipeline(store, context_tokens) as (pipeline, defaults):
            if defaults:
                err.print(f"[dim]{OFFLINE_NOTE}[/]")
            models = {**defaults, **chosen}
            return await _with_live(
                f"{bill_id} ({jurisdiction})",
                as_json,
                lambda cb: pipeline.run(
                    bill_id, text, jurisdiction, models, max_rounds, progress=cb
                ),
            )

    _print_result(_run(go), as_json)


@app.command()
def resume(run_id: str, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Continue a failed run from its last completed step (completed steps are not paid again)."""

    async def go() -> PipelineResult:
        async with _pipeline(store) as (pipeline, defaults):
            if defaults:
                err.print(f"[dim]{OFFLINE_NOTE}[/]")
            return await _with_live(
                f"resume {run_id}",
                as_json,
                lambda cb: pipeline.resume(run_id, defaults or None, progress=cb),
            )

    _print_result(_run(go), as_json)


@app.command()
def runs(
    limit: Annotated[int, typer.Option(min=1)] = 20,
    bill_id: Annotated[str | None, typer.Option("--bill-id")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List recent runs, newest first."""
    found = _run(lambda: _with_store(store, lambda s: s.list_runs(limit=limit, bill_id=bill_id)))
    if as_json:
        out.print_json(data=[r.model_dump(mode="json", exclude={"inputs"}) for r in found])
    else:
        out.print(runs_table(found))


@app.command()
def show(run_id: str, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Show one run: its analysis, review and logged steps."""

    async def both(local: RunStore) -> tuple[Any, Any]:
        return await local.get_run(run_id), await local.list_steps(run_id)

    record, steps = _run(lambda: _with_store(store, both))
    if as_json:
        data = record.model_dump(mode="json", exclude={"inputs"})
        data["steps"] = [s.model_dump(mode="json") for s in steps]
        out.print_json(data=data)
        return
    out.print(runs_table([record]))
    if record.analysis:
        from analysis_pipeline._schemas import BillAnalysis, ReviewCritique

        out.print(analysis_panel(BillAnalysis.model_validate(record.analysis), record.bill_id))
        if record.review:
            out.print(review_panel(ReviewCritique.model_validate(record.review),
                                   bool(record.review_passed)))  # fmt: skip
    if record.error:
        out.print(f"[red]error:[/] {record.error}")
    out.print(steps_table(steps))


@app.command()
def score(
    run_id: str,
    quality: Annotated[float, typer.Argument(min=0.0, max=1.0, help="Quality 0..1.")],
    store: StoreOpt = None,
) -> None:
    """Record a manual quality score (0..1) for a run, used by ``compare``."""
    _run(lambda: _with_store(store, lambda s: s.set_quality(run_id, quality)))
    out.print(f"run {run_id}: quality {quality:.2f}")


@app.command()
def compare(
    step: Annotated[str, typer.Option(help="Step to compare models at.")] = "generate",
    days: Annotated[int, typer.Option(min=1, help="Look back this many days.")] = 30,
    csv: Annotated[Path | None, typer.Option(help="Also write the rows to this CSV file.")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare models at one step: runs, pass rate, scores, mean cost, p50/p95 latency."""
    since = datetime.now(UTC) - timedelta(days=days)
    rows = _run(lambda: _with_store(store, lambda s: compare_models(s, since, None, step)))
    if csv is not None:
        csv.write_text(comparison_csv(rows), encoding="utf-8")
    if as_json:
        out.print_json(data=[r.model_dump(mode="json") for r in rows])
    else:
        out.print(comparison_table(rows, step))
