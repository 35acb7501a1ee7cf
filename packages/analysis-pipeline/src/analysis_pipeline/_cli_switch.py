"""The switch-over commands: ``flag show|set``, ``shadow`` and ``compare --shadow``'s report.

They register on the ``analysis-pipeline`` app (imported at the end of ``_cli``) and take the
same store options as every other command.
"""

from __future__ import annotations

import importlib
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Group
from rich.table import Table

from analysis_pipeline._cli import (
    OFFLINE_NOTE,
    ConnectTimeoutOpt,
    DatabaseUrlOpt,
    JsonOpt,
    ProjectOpt,
    StoreOpt,
    StoreOptions,
    SupabaseUrlOpt,
    _fail,
    _pipeline,
    _read_bill,
    _run,
    _store_options,
    _with_store,
    app,
    err,
    out,
)
from analysis_pipeline._cli_render import money
from analysis_pipeline._compare import ShadowComparison, compare_shadow
from analysis_pipeline._config import PipelineConfig
from analysis_pipeline._errors import AnalysisPipelineError
from analysis_pipeline._records import FlagChange, FlagState, ShadowRecord
from analysis_pipeline._rollout import (
    DEFAULT_FLAG,
    ENABLE_ENV_VAR,
    PERCENT_ENV_VAR,
    RolloutFlag,
    parse_switch,
    resolve_rollout,
)
from analysis_pipeline._shadow import LegacyAnalyser, ShadowRunner
from analysis_pipeline._stores import RunStore

__all__ = ["flag_app", "shadow_report"]

flag_app = typer.Typer(
    help="Show or set the rollout flag (kill switch + percentage) in the run store.",
    no_args_is_help=True,
)
app.add_typer(flag_app, name="flag")

FlagNameOpt = Annotated[
    str, typer.Option("--name", help="The flag (also the rollout's hash salt).")
]


def _switch_text(enabled: bool | None) -> str:
    return "unset (percentage decides)" if enabled is None else ("on" if enabled else "OFF")


def _flag_json(flag: RolloutFlag, state: FlagState | None, changes: list[FlagChange]) -> Any:
    return {
        "name": flag.salt,
        "source": flag.source,
        "enabled": flag.enabled,
        "percent": flag.percent,
        "effective_percent": flag.effective_percent,
        "store": None if state is None else state.model_dump(mode="json"),
        "changes": [c.model_dump(mode="json") for c in changes],
    }


def _flag_view(flag: RolloutFlag, state: FlagState | None, changes: list[FlagChange]) -> Group:
    where = (
        f"the store (set by {state.updated_by} at {state.updated_at:%Y-%m-%d %H:%M:%S} UTC)"
        if state is not None
        else f"the environment ({ENABLE_ENV_VAR}, {PERCENT_ENV_VAR}); no store row"
    )
    summary = Table.grid(padding=(0, 2))
    summary.add_row("flag", flag.salt)
    summary.add_row("from", where)
    summary.add_row("switch", _switch_text(flag.enabled))
    summary.add_row("percent", f"{flag.percent:g}%")
    summary.add_row("routed", f"{flag.effective_percent:g}% of keys to the new framework")
    history = Table(title="Changes (newest first)", box=box.SIMPLE)
    for column in ("when (UTC)", "by", "switch", "percent"):
        history.add_column(column)
    for change in changes:
        old = "new flag" if change.old_percent is None else _switch_text(change.old_enabled)
        old_pct = "" if change.old_percent is None else f"{change.old_percent:g}% → "
        history.add_row(
            f"{change.changed_at:%Y-%m-%d %H:%M:%S}",
            change.changed_by,
            f"{old} → {_switch_text(change.new_enabled)}",
            f"{old_pct}{change.new_percent:g}%",
        )
    return Group(summary, history) if changes else Group(summary)


async def _flag_state(
    store: RunStore, name: str, limit: int
) -> tuple[RolloutFlag, FlagState | None, list[FlagChange]]:
    state = await store.get_flag(name)
    if state is None:
        flag = RolloutFlag.from_env(salt=name)
    else:
        flag = RolloutFlag(state.percent, salt=name, enabled=state.enabled, source="store")
    return flag, state, await store.flag_changes(name, limit=limit)


@flag_app.command("show")
def flag_show(
    name: FlagNameOpt = DEFAULT_FLAG,
    limit: Annotated[int, typer.Option(min=0, help="Changes to list.")] = 10,
    store: StoreOpt = None,
    database_url: DatabaseUrlOpt = None,
    supabase_url: SupabaseUrlOpt = None,
    connect_timeout: ConnectTimeoutOpt = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Show the flag in force (the store's row wins over the environment) and its changes."""
    options = _store_options(store, database_url, supabase_url, connect_timeout)
    flag, state, changes = _run(lambda: _with_store(options, lambda s: _flag_state(s, name, limit)))
    if as_json:
        out.print_json(data=_flag_json(flag, state, changes))
    else:
        out.print(_flag_view(flag, state, changes))


@flag_app.command("set")
def flag_set(
    by: Annotated[str, typer.Option("--by", help="Who makes the change (recorded).")],
    enabled: Annotated[
        str | None,
        typer.Option(
            "--enabled",
            help="true/on = every key to the new framework, false/off = none (kill switch), "
            "unset = the percentage decides. Omitted: kept as stored.",
            show_default=False,
        ),
    ] = None,
    percent: Annotated[
        float | None,
        typer.Option("--percent", help="Share of keys 0..100 while the switch is unset."),
    ] = None,
    name: FlagNameOpt = DEFAULT_FLAG,
    store: StoreOpt = None,
    database_url: DatabaseUrlOpt = None,
    supabase_url: SupabaseUrlOpt = None,
    connect_timeout: ConnectTimeoutOpt = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Set the flag in the run store; the change is recorded (who, when, old, new).

    Apps reading the flag with ``resolve_rollout`` pick it up without a restart.
    """
    if enabled is None and percent is None:
        _fail("flag set needs --enabled and/or --percent")
    try:
        switch = parse_switch(enabled, "--enabled") if enabled is not None else None
    except AnalysisPipelineError as exc:
        _fail(str(exc))
    options = _store_options(store, database_url, supabase_url, connect_timeout)

    async def change(s: RunStore) -> tuple[RolloutFlag, FlagState | None, list[FlagChange]]:
        keep = switch
        if enabled is None:  # only the percentage changes: the switch stays as stored
            current = await s.get_flag(name)
            keep = None if current is None else current.enabled
        await s.set_flag(name, enabled=keep, percent=percent, changed_by=by)
        return await _flag_state(s, name, 10)

    flag, state, changes = _run(lambda: _with_store(options, change))
    if as_json:
        out.print_json(data=_flag_json(flag, state, changes))
    else:
        out.print(_flag_view(flag, state, changes[:1]))


@flag_app.command("route")
def flag_route(
    keys: Annotated[list[str], typer.Argument(help="Keys to route (bill ids, user ids).")],
    name: FlagNameOpt = DEFAULT_FLAG,
    store: StoreOpt = None,
    database_url: DatabaseUrlOpt = None,
    supabase_url: SupabaseUrlOpt = None,
    connect_timeout: ConnectTimeoutOpt = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Say which arm each key goes to under the flag in force (as an app's resolve_rollout)."""
    options = _store_options(store, database_url, supabase_url, connect_timeout)
    flag = _run(lambda: _with_store(options, lambda s: resolve_rollout(s, name=name)))
    arms = {key: "new" if flag.routes(key) else "legacy" for key in keys}
    routed = sum(1 for arm in arms.values() if arm == "new")
    if as_json:
        data = {"source": flag.source, "enabled": flag.enabled, "percent": flag.percent,
                "keys": len(arms), "routed": routed, "arms": arms}  # fmt: skip
        out.print_json(data=data)
        return
    for key, arm in arms.items():
        out.print(f"{key}\t{arm}", soft_wrap=True, highlight=False)
    out.print(f"{routed} of {len(arms)} keys to the new framework (flag from {flag.source})")


def _load_legacy(spec: str) -> LegacyAnalyser:
    """``module:function`` → the app's legacy analyser (the working directory is importable)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        _fail(f"--legacy takes MODULE:FUNCTION (e.g. myapp.legacy:analyse), got {spec!r}")
    if os.getcwd() not in sys.path:  # like uvicorn's --app-dir: the app's own modules import
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # its import failed: one line naming why
        _fail(f"cannot import {module_name!r} for --legacy: {type(exc).__name__}: {exc}")
    found = getattr(module, attr, None)
    if not callable(found):
        _fail(f"--legacy {spec!r}: {module_name} has no callable {attr!r}")
    legacy: LegacyAnalyser = found
    return legacy


def _shadow_rows(records: list[ShadowRecord]) -> Table:
    table = Table(title="Shadow runs", box=box.SIMPLE)
    for column in ("bill", "served", "new", "legacy", "new cost", "new ms", "legacy ms"):
        table.add_column(column)
    for r in records:
        table.add_row(
            r.bill_id,
            r.served,
            r.new.status if r.new.status == "ok" else f"{r.new.status}: {r.new.error}",
            r.legacy.status if r.legacy.status == "ok" else f"{r.legacy.status}: {r.legacy.error}",
            money(r.new.cost),
            f"{r.new.latency_ms:,.0f}",
            f"{r.legacy.latency_ms:,.0f}",
        )
    return table


@app.command()
def shadow(
    files: Annotated[
        list[Path], typer.Argument(exists=True, dir_okay=False, help="Bill text file(s).")
    ],
    jurisdiction: Annotated[str, typer.Option("--jurisdiction", help="Jurisdiction.")],
    legacy: Annotated[
        str,
        typer.Option(
            "--legacy",
            help="The app's legacy analyser as MODULE:FUNCTION, an async "
            "(bill_text, bill_id, jurisdiction) -> LegacyResult "
            "(try analysis_pipeline.testing:offline_legacy_analyser).",
        ),
    ],
    bill_id: Annotated[
        str | None, typer.Option("--bill-id", help="Bill id (one file only; default: its name).")
    ] = None,
    shadow_percent: Annotated[
        float, typer.Option(min=0, max=100, help="Share of bills run on both arms (sticky).")
    ] = 100.0,
    shadow_timeout: Annotated[
        float, typer.Option(min=0.001, help="Seconds the shadow arm may take.")
    ] = 120.0,
    flag_name: FlagNameOpt = DEFAULT_FLAG,
    project: ProjectOpt = None,
    store: StoreOpt = None,
    database_url: DatabaseUrlOpt = None,
    supabase_url: SupabaseUrlOpt = None,
    connect_timeout: ConnectTimeoutOpt = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Shadow mode: serve the arm the flag picks, run the other too, record both.

    Each run's outcomes, costs and latencies go to the run store for ``compare --shadow``.
    """
    if bill_id is not None and len(files) != 1:
        _fail("--bill-id needs exactly one file (otherwise each file's name is its bill id)")
    max_chars = PipelineConfig().max_bill_chars
    bills = [(bill_id or f.stem, _read_bill(f, bill_id or f.stem, jurisdiction, max_chars))
             for f in files]  # fmt: skip
    analyser = _load_legacy(legacy)
    options = _store_options(store, database_url, supabase_url, connect_timeout)

    async def go() -> list[ShadowRecord]:
        async with _pipeline(options, project=project) as (pipeline, defaults):
            if defaults and not as_json:
                err.print(f"[dim]{OFFLINE_NOTE}[/]", soft_wrap=True)
            runner = ShadowRunner(
                pipeline, analyser, shadow_percent=shadow_percent, flag_name=flag_name,
                flag_ttl=0, shadow_timeout=shadow_timeout, drain_timeout=shadow_timeout + 5,
                models=defaults or None,
            )  # fmt: skip
            ids: list[str] = []
            async with runner:
                for bid, text in bills:
                    try:
                        served = await runner.run(bid, text, jurisdiction)
                    except Exception as exc:  # the served arm failed: recorded; go on
                        err.print(f"{bid}: the served arm failed: {type(exc).__name__}: {exc}")
                        continue
                    if served.shadow_id is not None:
                        ids.append(served.shadow_id)
            kept = await pipeline.store.shadow_results(limit=max(len(bills) * 4, 100))
            return [r for r in kept if r.id in set(ids)]

    records = _run(go)
    if as_json:
        out.print_json(data=[r.model_dump(mode="json") for r in records])
    else:
        out.print(_shadow_rows(records))


def _comparison_view(report: ShadowComparison) -> Group:
    totals = Table(title="Impacts (runs where both arms finished)", box=box.SIMPLE)
    for column in ("runs", "compared", "both", "only new", "only legacy", "direction differs",
                   "agreement"):  # fmt: skip
        totals.add_column(column)
    totals.add_row(
        str(report.runs),
        str(report.compared),
        str(report.impacts_both),
        str(report.impacts_only_new),
        str(report.impacts_only_legacy),
        str(report.direction_disagreements),
        "" if report.agreement is None else f"{report.agreement:.0%}",
    )
    arms = Table(title="Arms", box=box.SIMPLE)
    arms.add_column("")
    for a in report.arms:
        arms.add_column(a.arm)
    metrics: list[tuple[str, Any]] = [
        ("served", lambda a: str(a.served)),
        ("ok", lambda a: str(a.ok)),
        ("errors", lambda a: str(a.errors)),
        ("timeouts", lambda a: str(a.timeouts)),
        ("cancelled", lambda a: str(a.cancelled)),
        ("total cost", lambda a: money(a.total_cost)),
        ("mean cost", lambda a: money(a.mean_cost)),
        ("unpriced runs", lambda a: str(a.unpriced)),
        ("p50 latency", lambda a: f"{a.p50_latency_ms:,.0f} ms"),
        ("p95 latency", lambda a: f"{a.p95_latency_ms:,.0f} ms"),
    ]
    for label, cell in metrics:
        arms.add_row(label, *(cell(a) for a in report.arms))
    names = Table(title="By impact (normalised name)", box=box.SIMPLE)
    for column in ("impact", "both", "only new", "only legacy", "direction differs"):
        names.add_column(column)
    for row in report.by_impact:
        names.add_row(row.name, str(row.both), str(row.only_new), str(row.only_legacy),
                      str(row.direction_disagreements))  # fmt: skip
    return Group(totals, arms, names)


def shadow_report(options: StoreOptions, since: datetime, as_json: bool) -> None:
    """``compare --shadow``: agreement, cost and latency per arm since ``since``."""
    report = _run(lambda: _with_store(options, lambda s: compare_shadow(s, since, None)))
    if as_json:
        out.print_json(report.model_dump_json())
    else:
        out.print(_comparison_view(report))
