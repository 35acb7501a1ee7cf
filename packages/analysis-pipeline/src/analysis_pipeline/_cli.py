"""The ``analysis-pipeline`` command: run a bill end to end, list, show, resume, score, compare.

With no ``OPENROUTER_API_KEY`` / ``ZAI_API_KEY`` in the environment it runs entirely offline
(llm-client's test model with a bill-aware handler, the bundled search fixture) and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from cost_tracker import CostTrackerError
from rich.console import Console
from rich.live import Live
from rich.markup import escape

from analysis_pipeline._batch_cli import batch_app, worker
from analysis_pipeline._cli_render import (
    LiveSteps,
    analysis_panel,
    comparison_table,
    cost_table,
    estimate_table,
    review_panel,
    runs_table,
    steps_table,
)
from analysis_pipeline._compare import compare_models, comparison_csv
from analysis_pipeline._config import PipelineConfig
from analysis_pipeline._errors import AnalysisPipelineError, InvalidInputError, RunNotFoundError
from analysis_pipeline._inputs import check_run_inputs
from analysis_pipeline._pipeline import AnalysisPipeline
from analysis_pipeline._records import PipelineResult, RunRecord, StepRecord
from analysis_pipeline._registry import STEP_NAMES
from analysis_pipeline._stores import RunStore
from analysis_pipeline._stores.local import default_state_dir
from analysis_pipeline.testing import OfflineSearch, offline_models  # an app may use them

if TYPE_CHECKING:
    from cost_tracker import CostStore

__all__ = ["StoreOptions", "app"]


class _OneLineErrors(typer.Typer):
    """A typer app whose every failure, usage errors included, is one ``error:`` line, exit 1.

    Typer prints usage errors as a boxed panel with exit code 2 and other exceptions as a
    traceback; a person (or a script reading stderr) gets one line saying what to fix.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        kwargs.setdefault("prog_name", "analysis-pipeline")  # also under `python -m` / `python -c`
        try:
            code = typer.main.get_command(self).main(*args, **kwargs)
        except typer.TyperException as exc:  # usage errors, bad parameter values
            if not exc.format_message():  # no arguments: the help was printed instead
                raise SystemExit(exc.exit_code) from None
            where = getattr(getattr(exc, "ctx", None), "command_path", None)
            hint = f" (see '{where} --help')" if where else ""
            _echo_error(f"{exc.format_message()}{hint}")
            raise SystemExit(1) from None
        except typer.Abort:
            _echo_error("aborted")
            raise SystemExit(1) from None
        except Exception as exc:  # a bug: still one line, never a traceback
            _echo_error(f"unexpected {type(exc).__name__}: {exc}")
            raise SystemExit(1) from None
        raise SystemExit(code if isinstance(code, int) else 0)


app = _OneLineErrors(
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
    typer.Option(
        "--store",
        help="Project directory of the local run store [.llm-common]; with a database it holds "
        "only the step journal and the cost outbox.",
    ),
]
DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="PostgreSQL URL of the run store (env: ANALYSIS_PIPELINE_DATABASE_URL, "
        "DATABASE_URL; default: the local store).",
        show_default=False,
    ),
]
SupabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--supabase-url",
        help="Supabase project URL of the run store (env: SUPABASE_URL); the key comes from "
        "SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_KEY).",
        show_default=False,
    ),
]
ConnectTimeoutOpt = Annotated[
    float,
    typer.Option("--connect-timeout", min=0.1, help="Seconds to wait for the database."),
]
ProjectOpt = Annotated[
    str | None,
    typer.Option(
        "--project",
        envvar="PROJECT_NAME",
        help="Project the run and its costs are recorded under [default].",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _offline() -> bool:
    return not (os.environ.get("OPENROUTER_API_KEY") or os.environ.get("ZAI_API_KEY"))


def _run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()

    _quiet_logging()
    try:
        return asyncio.run(main())
    except typer.Exit:
        raise
    except AnalysisPipelineError as exc:
        _fail(str(exc))
    except CostTrackerError as exc:  # the run's cost store: its messages name the fix
        _fail(str(exc))
    except Exception as exc:  # a provider, store or budget error: one line, never a traceback
        _fail(f"{type(exc).__name__}: {exc}")


# Their warnings about an unreachable or unmigrated database repeat what the error line says.
_DRIVER_LOGGERS = ("psycopg", "psycopg.pool", "llm_common_db", "httpx", "postgrest", "supabase")


def _quiet_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="warning: %(name)s: %(message)s")
    for name in _DRIVER_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def _echo_error(message: str) -> None:
    err.print(f"[red]error:[/] {escape(' '.join(message.split()))}", soft_wrap=True)


def _fail(message: str) -> NoReturn:
    _echo_error(message)  # one line, unwrapped
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
    if not text.strip():
        _fail(f"{file} is empty: it holds no bill text to analyse")
    try:
        check_run_inputs(bill_id, text, jurisdiction, max_chars)
    except AnalysisPipelineError as exc:
        _fail(str(exc))
    return text


DATABASE_URL_VARS = ("ANALYSIS_PIPELINE_DATABASE_URL", "DATABASE_URL")
SUPABASE_KEY_VARS = ("SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_KEY")


@dataclass(frozen=True)
class StoreOptions:
    """Where a command keeps runs (and, for ``run``/``resume``, costs): one backend.

    ``--database-url`` (or ``$ANALYSIS_PIPELINE_DATABASE_URL`` / ``$DATABASE_URL``) selects
    PostgreSQL, ``--supabase-url`` (or ``$SUPABASE_URL``, key from
    ``$SUPABASE_SERVICE_ROLE_KEY`` / ``$SUPABASE_KEY``) Supabase, neither the local store
    under ``--store`` (default ``$LLM_COMMON_DIR`` or ``./.llm-common``). The local
    directory also holds the step journal and the cost outbox of a run on a remote store.
    """

    store_dir: Path | None = None
    database_url: str | None = field(default=None, repr=False)
    supabase_url: str | None = None
    supabase_key: str | None = field(default=None, repr=False)
    connect_timeout: float = 5.0

    @property
    def state_dir(self) -> Path:
        """Local directory for the SQLite stores, the step journal and the cost outbox."""
        return self.store_dir or default_state_dir()

    @property
    def backend(self) -> str:
        """``postgres``, ``supabase`` or ``local``."""
        if self.database_url:
            return "postgres"
        return "supabase" if self.supabase_url else "local"

    async def _open(self, postgres: str, supabase: str, local: str) -> Any:
        # Classes by "module:name", imported only for the backend in use: the other backends'
        # extras need not be installed.
        def load(spec: str) -> Any:
            module, _, name = spec.partition(":")
            return getattr(importlib.import_module(module), name)

        if self.database_url:
            return load(postgres)(
                self.database_url, max_size=2, connect_timeout=self.connect_timeout
            )
        if self.supabase_url and self.supabase_key:
            return await load(supabase).connect(
                self.supabase_url, self.supabase_key, connect_timeout=self.connect_timeout
            )
        return load(local)(self.state_dir)

    async def open_run_store(self) -> RunStore:
        """The run store these options name (the caller closes it)."""
        store: RunStore = await self._open(
            "analysis_pipeline._stores.postgres:PostgresRunStore",
            "analysis_pipeline._stores.supabase:SupabaseRunStore",
            "analysis_pipeline._stores.local:LocalRunStore",
        )
        return store

    async def open_cost_store(self) -> CostStore:
        """The cost-tracker store on the same backend (the tracker closes it)."""
        store: CostStore = await self._open(
            "cost_tracker._stores.postgres:PostgresCostStore",
            "cost_tracker._stores.supabase:SupabaseCostStore",
            "cost_tracker._stores.local:LocalCostStore",
        )
        return store


def _env(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def _store_options(
    store_dir: Path | None,
    database_url: str | None,
    supabase_url: str | None,
    connect_timeout: float,
    *,
    existing: bool = True,
) -> StoreOptions:
    """Pick one backend: a flag beats the environment, PostgreSQL beats Supabase in it.

    ``existing``: the command reads runs, so a ``--store`` directory that does not exist is a
    mistyped path, not a new store to create.
    """
    if store_dir is not None and store_dir.exists() and not store_dir.is_dir():
        _fail(f"--store {store_dir} is not a directory (give the project's state directory)")
    if store_dir is not None and existing and not store_dir.exists():
        _fail(f"--store {store_dir} does not exist (no run store there; check the path)")
    if database_url and supabase_url:
        _fail("give either --database-url or --supabase-url, not both")
    if not (database_url or supabase_url):
        database_url = _env(*DATABASE_URL_VARS)
        supabase_url = None if database_url else _env("SUPABASE_URL")
    key = None
    if supabase_url:
        key = _env(*SUPABASE_KEY_VARS)
        if key is None:
            _fail(f"--supabase-url needs the service role key in {' or '.join(SUPABASE_KEY_VARS)}")
    return StoreOptions(store_dir, database_url, supabase_url, key, connect_timeout)


async def _with_store(options: StoreOptions, work: Callable[[RunStore], Awaitable[T]]) -> T:
    store = await options.open_run_store()
    async with contextlib.aclosing(store):
        return await work(store)


@contextlib.asynccontextmanager
async def _pipeline(
    options: StoreOptions, context_tokens: int | None = None, project: str | None = None
) -> AsyncIterator[tuple[AnalysisPipeline, dict[str, Any]]]:
    """Build the pipeline for this environment: offline stand-ins or real providers."""
    from cost_tracker import CostTracker
    from llm_client import LLMClient

    base = options.state_dir
    config = PipelineConfig(journal_dir=base / "pipeline-journal", project=project)
    if context_tokens:
        config.max_context_tokens = context_tokens
    store = await options.open_run_store()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(store.aclose)
        # One cheap read first: an unreachable or unmigrated store is the error line, before
        # any other output.
        await store.get_model_configs()
        costs = await options.open_cost_store()
        try:
            now = datetime.now(UTC)
            await costs.total_cost(now, now, project)  # the cost tables: same reason
        except BaseException:
            await costs.aclose()
            raise
        tracker = CostTracker(
            costs,
            project=project,
            outbox_path=base / "cost-outbox.sqlite3",
        )
        await stack.enter_async_context(tracker)
        llm = await stack.enter_async_context(LLMClient(cost_sink=tracker))
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
        if os.environ.get("ZAI_API_KEY"):
            from web_search import WebSearchClient

            client = WebSearchClient("zai", cost_sink=tracker)
            stack.push_async_callback(client.aclose)
            search = _legislation_service(client)
        yield AnalysisPipeline(llm, search, store=store, config=config), {}


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


def _offline_model_names() -> frozenset[str]:
    return frozenset(str(model.name) for model in offline_models().values())


def _offline_runs(runs: list[RunRecord]) -> set[str]:
    """Ids of the runs the offline stand-ins answered (any step)."""
    names = _offline_model_names()
    return {r.id for r in runs if any(m in names for chain in r.models.values() for m in chain)}


async def _resolve_run_id(store: RunStore, given: str) -> str:
    """The whole id of the one run whose id is or starts with ``given``."""
    found = await store.find_run_ids(given)
    if given.strip().lower() in found or len(found) == 1:
        return found[0] if len(found) == 1 else given.strip().lower()
    if not found:
        raise RunNotFoundError(given)
    raise InvalidInputError(
        f"run id prefix {given!r} matches {len(found)} runs; give more of the id "
        "(analysis-pipeline runs lists them)"
    )


def _print_result(result: PipelineResult, as_json: bool) -> None:
    names = _offline_model_names()
    offline = any(step.model in names for step in result.steps)
    if as_json:
        data = result.model_dump(mode="json")
        data["offline"] = offline
        for step in data["steps"]:
            step["offline"] = step["model"] in names
        out.print_json(data=data)
        return
    out.print(analysis_panel(result.analysis, result.bill_id, offline=offline))
    out.print(review_panel(result.review, result.passed, offline=offline))
    out.print(cost_table(result, offline=offline))
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
    project: ProjectOpt = None,
    store: StoreOpt = None,
    database_url: DatabaseUrlOpt = None,
    supabase_url: SupabaseUrlOpt = None,
    connect_timeout: ConnectTimeoutOpt = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Analyse one bill: research, generate, review, refine; print analysis, review and cost."""
    text = _read_bill(file, bill_id, jurisdiction, PipelineConfig().max_bill_chars)
    chosen = _parse_models(
        research=research_model, generate=generate_model, review=review_model,
        refine=refine_model, condense=condense_model,
    )  # fmt: skip
    chosen.update(_parse_model_options(model or []))
    options = _store_options(store, database_url, supabase_url, connect_timeout, existing=False)

    async def go() -> PipelineResult:
        async with _pipeline(options, context_tokens, project) as (pipeline, defaults):
            if defaults:
                err.print(f"[dim]{OFFLINE_NOTE}[/]", soft_wrap=True)
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
def resume(
    run_id: str,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            envvar="PROJECT_NAME",
            help="Project for the costs of a run recorded without one (a run's own wins).",
            show_default=False,
        ),
    ] = None,
    store: StoreOpt = None,
    database_url: DatabaseUrlOpt = None,
    supabase_url: SupabaseUrlOpt = None,
    connect_timeout: ConnectTimeoutOpt = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Continue a failed run from its last completed step (completed steps are not paid again)."""
    options = _store_options(store, database_url, supabase_url, connect_timeout)

    async def recorded(store: RunStore) -> RunRecord:
        return await store.get_run(await _resolve_run_id(store, run_id))

    async def go() -> PipelineResult:
        run = await _with_store(options, recorded)
        # The resumed steps' costs go to the project the run was recorded under.
        async with _pipeline(options, project=run.project or project) as (pipeline, defaults):
            whole = run.id
            if defaults:
                err.print(f"[dim]{OFFLINE_NOTE}[/]", soft_wrap=True)
            return await _with_live(
                f"resume {whole}",
                as_json,
                lambda cb: pipeline.resume(whole, defaults or None, progress=cb),
            )

    _print_result(_run(go), as_json)


@app.command()
def runs(
    limit: Annotated[int, typer.Option(min=1)] = 20,
    bill_id: Annotated[str | None, typer.Option("--bill-id")] = None,
    store: StoreOpt = None,
    database_url: DatabaseUrlOpt = None,
    supabase_url: SupabaseUrlOpt = None,
    connect_timeout: ConnectTimeoutOpt = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """List recent runs, newest first."""
    options = _store_options(store, database_url, supabase_url, connect_timeout)
    found = _run(lambda: _with_store(options, lambda s: s.list_runs(limit=limit, bill_id=bill_id)))
    offline = _offline_runs(found)
    if as_json:
        rows = [
            {**r.model_dump(mode="json", exclude={"inputs"}), "offline": r.id in offline}
            for r in found
        ]
        out.print_json(data=rows)
    else:
        # Piped output has no terminal width to respect: keep each run on one line.
        (out if out.is_terminal else Console(width=200)).print(runs_table(found, offline))


@app.command()
def show(
    run_id: str,
    store: StoreOpt = None,
    database_url: DatabaseUrlOpt = None,
    supabase_url: SupabaseUrlOpt = None,
    connect_timeout: ConnectTimeoutOpt = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Show one run: its analysis, review and logged steps."""
    options = _store_options(store, database_url, supabase_url, connect_timeout)

    async def both(local: RunStore) -> tuple[RunRecord, list[StepRecord]]:
        whole = await _resolve_run_id(local, run_id)
        return await local.get_run(whole), await local.list_steps(whole)

    record, steps = _run(lambda: _with_store(options, both))
    offline = bool(_offline_runs([record]))
    names = _offline_model_names()
    if as_json:
        data = record.model_dump(mode="json", exclude={"inputs"})
        data["offline"] = offline
        data["steps"] = [{**s.model_dump(mode="json"), "offline": s.model in names} for s in steps]
        out.print_json(data=data)
        return
    out.print(runs_table([record], {record.id} if offline else set()))
    if record.analysis:
        from analysis_pipeline._schemas import BillAnalysis, ReviewCritique

        analysis = BillAnalysis.model_validate(record.analysis)
        out.print(analysis_panel(analysis, record.bill_id, offline=offline))
        if record.review:
            review = ReviewCritique.model_validate(record.review)
            out.print(review_panel(review, bool(record.review_passed), offline=offline))
    if record.error:
        out.print(f"[red]run failed:[/] {escape(record.error)}")
    out.print(steps_table(steps, offline=offline))


@app.command()
def score(
    run_id: str,
    quality: Annotated[float, typer.Argument(min=0.0, max=1.0, help="Quality 0..1.")],
    store: StoreOpt = None,
    database_url: DatabaseUrlOpt = None,
    supabase_url: SupabaseUrlOpt = None,
    connect_timeout: ConnectTimeoutOpt = 5.0,
) -> None:
    """Record a manual quality score (0..1) for a run, used by ``compare``."""
    options = _store_options(store, database_url, supabase_url, connect_timeout)

    async def set_quality(store: RunStore) -> str:
        whole = await _resolve_run_id(store, run_id)
        await store.set_quality(whole, quality)
        return whole

    whole = _run(lambda: _with_store(options, set_quality))
    out.print(f"run {whole}: quality {quality:.2f}")


@app.command()
def compare(
    step: Annotated[str, typer.Option(help="Step to compare models at.")] = "generate",
    days: Annotated[int, typer.Option(min=1, help="Look back this many days.")] = 30,
    csv: Annotated[Path | None, typer.Option(help="Also write the rows to this CSV file.")] = None,
    shadow: Annotated[
        bool,
        typer.Option(
            "--shadow",
            help="Compare the shadow runs' arms instead: impacts found by both or one, "
            "direction disagreements, cost and latency per arm.",
        ),
    ] = False,
    store: StoreOpt = None,
    database_url: DatabaseUrlOpt = None,
    supabase_url: SupabaseUrlOpt = None,
    connect_timeout: ConnectTimeoutOpt = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Compare models at one step: runs, pass rate, scores, mean cost, p50/p95 latency.

    With ``--shadow``: how the new pipeline agreed with the legacy analyser in shadow runs.
    """
    options = _store_options(store, database_url, supabase_url, connect_timeout)
    if csv is not None and not csv.parent.is_dir():
        _fail(f"--csv {csv}: directory {csv.parent} does not exist")
    since = datetime.now(UTC) - timedelta(days=days)
    if shadow:
        if csv is not None:
            _fail("--csv writes the model comparison; with --shadow use --json")
        from analysis_pipeline._cli_switch import shadow_report

        shadow_report(options, since, as_json)
        return
    rows = _run(lambda: _with_store(options, lambda s: compare_models(s, since, None, step)))
    if csv is not None:
        try:
            csv.write_text(comparison_csv(rows), encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot write {csv}: {exc.strerror or exc}")
    if as_json:
        out.print_json(data=[r.model_dump(mode="json") for r in rows])
    else:
        out.print(comparison_table(rows, step))


@app.command()
def dashboard(
    store: StoreOpt = None,
    database_url: DatabaseUrlOpt = None,
    supabase_url: SupabaseUrlOpt = None,
    connect_timeout: ConnectTimeoutOpt = 5.0,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8050,
    tz: Annotated[str, typer.Option(help="Time zone of the Spend page's days.")] = "UTC",
) -> None:
    """Serve the admin dashboard (needs the 'dashboard' extra and LLM_COMMON_DASHBOARD_TOKEN).

    Runs, costs and the rollout flag come from the same store as the other commands; without
    LLM_COMMON_DASHBOARD_TOKEN the server starts but refuses every request.
    """
    try:
        from analysis_pipeline.dashboard import TOKEN_ENV_VAR, create_dashboard
        from analysis_pipeline.dashboard._serve import serve
    except ImportError as exc:
        _fail(str(exc))
    options = _store_options(store, database_url, supabase_url, connect_timeout)
    token = os.environ.get(TOKEN_ENV_VAR) or None

    async def go() -> None:
        async with _pipeline(options) as (pipeline, defaults):
            costs = await options.open_cost_store()
            async with contextlib.aclosing(costs):
                app = create_dashboard(
                    run_store=pipeline.store,
                    cost_store=costs,
                    pipeline=pipeline,
                    resume_models=defaults or None,
                    token=token,
                    tz=tz,
                )
                err.print(f"dashboard on http://{host}:{port}/ ({options.backend} store)")
                if not token:
                    err.print(f"{TOKEN_ENV_VAR} is not set: every request is refused")
                await serve(app, host=host, port=port)

    _run(go)


@app.command()
def estimate(
    paths: Annotated[
        list[Path], typer.Argument(exists=True, help="Bill text files, or directories of them.")
    ],
    bills_per_day: Annotated[int, typer.Option(min=1, help="New bills a day.")] = 50,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="STEP=MODEL (first of a chain is priced); repeatable."),
    ] = None,
    rounds: Annotated[int, typer.Option(min=1, help="Review rounds per bill.")] = 1,
    jurisdiction: Annotated[
        str | None, typer.Option(help="Jurisdiction [from each file name: CA-..., US-...].")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Project the cost per bill and per month, offline, from real bills' token counts."""
    from dataclasses import asdict

    from llm_client import LLMConfig

    from analysis_pipeline._estimate import project_costs

    files = [f for p in paths for f in (sorted(p.glob("*.txt")) if p.is_dir() else [p])]
    bills = [
        (f.stem, _read_bill(f, f.stem, where, PipelineConfig().max_bill_chars), where)
        for f in files
        if not (f.name.endswith(".summary.txt") and f.parent in paths)
        for where in [jurisdiction or f.stem.split("-")[0]]
    ]
    if not bills:
        _fail("no bill text files (*.txt) found")
    try:
        configured = LLMConfig.load().steps
    except Exception as exc:
        _fail(f"llm-client configuration: {exc}")
    models = {
        **_parse_models(**_ONLINE_DEFAULTS["openrouter"]),
        **configured,
        **_parse_model_options(model or []),
    }
    projection = _run(lambda: asyncio.to_thread(
        project_costs, bills, models, bills_per_day=bills_per_day, rounds=rounds))  # fmt: skip
    if as_json:
        out.print_json(json.dumps(asdict(projection), default=str))
    else:
        out.print(estimate_table(projection))
    if projection.unpriced:
        _fail(f"no price source knows {', '.join(projection.unpriced)}; choose priced models")


# The switch-over commands (flag show|set, shadow) register themselves on ``app``.
from analysis_pipeline import _cli_switch  # noqa: E402, F401
