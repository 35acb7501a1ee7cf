"""Rich rendering for the CLI: the live step display, the analysis, the review, the cost table."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from analysis_pipeline._compare import ModelStats
from analysis_pipeline._estimate import CostProjection
from analysis_pipeline._progress import ProgressEvent
from analysis_pipeline._records import PipelineResult, RunRecord, StepRecord
from analysis_pipeline._schemas import BillAnalysis, ReviewCritique

__all__ = [
    "OFFLINE_LABEL",
    "LiveSteps",
    "analysis_panel",
    "comparison_table",
    "cost_table",
    "estimate_table",
    "money",
    "review_panel",
    "runs_table",
    "steps_table",
]


OFFLINE_LABEL = "OFFLINE placeholder"
"""Shown on every panel of a run the offline stand-ins answered (no real model was asked)."""


def money(value: Decimal | None) -> str:
    """Dollars for display; ``unpriced`` for None (never a fake zero)."""
    if value is None:
        return "unpriced"
    return f"${value:,.6f}" if value < 1 else f"${value:,.2f}"


class LiveSteps:
    """State behind the live progress display, updated from :class:`ProgressEvent`s."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: dict[str, dict[str, str]] = {}
        self.cost = Decimal(0)
        self.tokens = 0

    def update(self, event: ProgressEvent) -> None:
        """Fold one event into the display state."""
        row = self.rows.setdefault(
            event.key, {"status": "", "model": "", "detail": "", "step": event.step}
        )
        if event.model:
            row["model"] = event.model
        if event.kind == "searching":
            row["detail"] = f"{event.searches_done}/{event.searches_total} queries searched"
        elif event.kind == "failed":
            row["status"], row["detail"] = "[red]failed[/]", event.message[:80]
        elif event.kind == "reused":
            row["status"], row["detail"] = "[cyan]re-used[/]", "from the store, not paid again"
        elif event.kind == "started":
            row["status"] = "[yellow]running…[/]"
        elif event.kind == "finished":
            row["status"] = "[green]done[/]"
        self.cost = event.cost_so_far
        self.tokens = event.tokens_so_far

    def __rich__(self) -> RenderableType:
        table = Table(title=self.title, expand=False)
        for column in ("step", "status", "model", "detail"):
            table.add_column(column)
        for key, row in self.rows.items():
            table.add_row(key, row["status"], row["model"], row["detail"])
        footer = Text(f"tokens so far: {self.tokens:,}   cost so far: {money(self.cost)}")
        return Group(table, footer)


def analysis_panel(analysis: BillAnalysis, bill_id: str, *, offline: bool = False) -> Panel:
    """The analysis: summary, then one row per impact; an offline one says it is a placeholder."""
    table = Table(expand=True, show_lines=False)
    for column in ("category", "direction", "magnitude", "affected", "sources", "conf."):
        table.add_column(column, overflow="fold")
    for impact in analysis.impacts:
        mag = impact.magnitude
        size = (
            "—"
            if mag is None
            else f"{mag.amount} {mag.unit}" + (f" {mag.period}" if mag.period else "")
        )
        table.add_row(
            impact.category,
            impact.direction,
            size,
            impact.affected_population,
            ", ".join(impact.cited_source_ids),
            f"{impact.confidence:.2f}",
        )
    sources = Text()
    for source in analysis.sources:
        sources.append(f"[{source.id}] {source.title} — {source.url}\n")
    parts: list[RenderableType] = [
        Text(analysis.summary),
        table,
        sources,
        Text(f"overall confidence: {analysis.overall_confidence:.2f}"),
    ]
    if offline:
        parts.insert(0, Text(
            f"{OFFLINE_LABEL}: written by the offline test model from keyword rules and the "
            "bundled search fixture, not by an LLM; do not rely on it.", style="bold yellow",
        ))  # fmt: skip
        return Panel(
            Group(*parts), title=f"Analysis of {bill_id} ({OFFLINE_LABEL})", border_style="yellow"
        )
    return Panel(Group(*parts), title=f"Analysis of {bill_id}")


def review_panel(review: ReviewCritique, passed: bool, *, offline: bool = False) -> Panel:
    """The last review; a pass with factual errors is shown as the failure it is.

    An offline review is a canned placeholder: it shows no verdict, only that label.
    """
    if offline:
        lines = [
            f"[bold yellow]{OFFLINE_LABEL}[/]: no model reviewed this analysis. The offline "
            f"stand-in's canned verdict ({'pass' if passed else 'fail'}, placeholder score "
            f"{review.score:.2f}) says nothing about its quality.",
            review.critique,
        ]
        return Panel("\n".join(lines), title=f"Review ({OFFLINE_LABEL})", border_style="yellow")
    verdict = "[green]PASSED[/]" if passed else "[red]FAILED[/]"
    if review.passed and review.factual_errors:
        verdict += " (the reviewer said passed but listed factual errors)"
    lines = [f"{verdict}  score {review.score:.2f}", review.critique]
    lines += [f"missing: {m}" for m in review.missing_impacts]
    lines += [f"error: {e.claim} → {e.correction} [{e.evidence}]" for e in review.factual_errors]
    return Panel("\n".join(lines), title="Review")


def cost_table(result: PipelineResult, *, offline: bool = False) -> Table:
    """Per-step model, tokens, cost and latency, with the total."""
    title = f"Cost ({OFFLINE_LABEL}: test models, nothing was paid)" if offline else "Cost"
    table = Table(title=title)
    for column in ("step", "model", "tokens", "cost", "latency", "note"):
        table.add_column(column, justify="right" if column in {"tokens", "latency"} else "left")
    for step in result.steps:
        table.add_row(
            step.key,
            step.model or "",
            f"{step.prompt_tokens + step.completion_tokens:,}",
            money(step.cost),
            f"{step.latency_ms:,.0f} ms",
            "re-used" if step.reused else "",
        )
    table.add_row(
        "[bold]total", "", f"{result.total_tokens:,}", money(result.total_cost),
        f"{result.latency_ms:,.0f} ms", "",
    )  # fmt: skip
    return table


def runs_table(runs: list[RunRecord], offline: set[str] | frozenset[str] = frozenset()) -> Table:
    """One line per run, newest first, ids whole; runs in ``offline`` show no verdict.

    The id column never wraps or truncates (people copy ids into ``show``/``score``/``resume``);
    the other columns fold when the terminal is narrow.
    """
    table = Table(title="Pipeline runs", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("run id", no_wrap=True, min_width=36)
    scored = any(run.quality_score is not None for run in runs)
    for column in ("bill", "status", "review", *(("quality",) if scored else ()), "cost"):
        table.add_column(column, overflow="fold")
    table.add_column("started (UTC)", overflow="fold")
    for run in runs:
        if run.id in offline and run.review_passed is not None:
            review = "offline"
        elif run.review_passed is None:
            review = ""
        else:
            review = f"{'pass' if run.review_passed else 'fail'} {run.review_score or 0:.2f}"
        quality = "" if run.quality_score is None else f"{run.quality_score:.2f}"
        table.add_row(
            run.id,
            run.bill_id,
            run.status,
            review,
            *((quality,) if scored else ()),
            money(run.cost),
            run.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
        )
    return table


def steps_table(steps: list[StepRecord], *, offline: bool = False) -> Table:
    """A run's logged steps."""
    table = Table(title=f"Steps ({OFFLINE_LABEL})" if offline else "Steps")
    for column in ("step", "status", "model", "tokens", "cost", "latency", "error"):
        table.add_column(column, overflow="fold")
    for step in steps:
        table.add_row(
            step.key,
            step.status,
            step.model or "",
            f"{step.prompt_tokens + step.completion_tokens:,}",
            money(step.cost),
            f"{step.latency_ms:,.0f} ms",
            step.error or "",
        )
    return table


def comparison_table(rows: list[ModelStats], step: str) -> Table:
    """Model comparison for one step."""
    table = Table(title=f"Models compared at step {step!r}")
    for column in ("model", "runs", "pass rate", "review", "quality", "cost/run", "p50", "p95"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.model,
            str(row.runs),
            "" if row.pass_rate is None else f"{row.pass_rate:.0%}",
            "" if row.mean_review_score is None else f"{row.mean_review_score:.2f}",
            "" if row.mean_quality is None else f"{row.mean_quality:.2f} (n={row.scored_runs})",
            money(row.mean_cost),
            f"{row.p50_latency_ms:,.0f} ms",
            f"{row.p95_latency_ms:,.0f} ms",
        )
    return table


def estimate_table(projection: CostProjection) -> Table:
    """Projected cost per bill, then the mean per bill, per day and per month."""

    def usd(value: Decimal | None) -> str:
        return "unpriced" if value is None else f"${value:,.4f}"

    models = {(s.step, s.model, s.price_source) for b in projection.bills for s in b.steps}
    table = Table(
        title=f"Projected cost at {projection.bills_per_day} new bills a day",
        caption="; ".join(f"{st}: {m} ({src})" for st, m, src in sorted(models)),
    )
    table.add_column("bill", no_wrap=True)
    for name in ("tokens in/out", "LLM calls", "searches", "search", "LLM", "total"):
        table.add_column(name, justify="right")
    for bill in projection.bills:
        tokens_in = sum(s.prompt_tokens for s in bill.steps)
        tokens_out = sum(s.completion_tokens for s in bill.steps)
        table.add_row(
            bill.bill_id + (" (condensed)" if bill.condensed else ""),
            f"{tokens_in:,}/{tokens_out:,}",
            str(sum(s.calls for s in bill.steps)),
            str(bill.search_calls),
            usd(bill.search_cost),
            usd(bill.llm_cost),
            usd(bill.total),
        )
    table.add_section()
    table.add_row("per bill (mean)", "", "", "", "", "", usd(projection.per_bill))
    table.add_row("per day", "", "", "", "", "", usd(projection.per_day))
    table.add_row("per month (30 days)", "", "", "", "", "", usd(projection.per_month))
    return table
