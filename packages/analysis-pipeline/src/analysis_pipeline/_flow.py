"""The order of the steps: research and condensing (concurrently), generate, review ⇄ refine.

:class:`Flow` is given everything it needs (search, configuration, the run, its step runner and
context budgets); it knows nothing of :class:`~analysis_pipeline.AnalysisPipeline`, which
builds it, starts it and logs the outcome.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import llm_client

from ._condense import Chunk, condense_chunks, render_digest, split_chunks, split_sections
from ._config import PipelineConfig
from ._context import ContextPlanner
from ._errors import InputTooLargeError, PipelineRunError
from ._progress import StepMeter, add_costs
from ._records import (
    CondenseOutput,
    PipelineResult,
    ResearchOutput,
    RunRecord,
    StepSummary,
)
from ._registry import spec, step_key
from ._research import dedupe_sources, fit_sources, merge_queries
from ._schemas import BillAnalysis, ChunkExtraction, ResearchQueries, ReviewCritique, SourceRef
from ._search import run_searches
from ._steps import StepRunner, unwrap_group

__all__ = ["Flow", "Prepared", "passed", "plan_condense"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """What generate, review and refine read."""

    bill: str
    sources: list[SourceRef]
    condensed: bool


logger = logging.getLogger(__name__)


def plan_condense(
    bill_text: str,
    planner: ContextPlanner,
    config: PipelineConfig,
    chain: list[Any],
    *,
    enforce: bool = True,
) -> list[Chunk] | None:
    """The chunks to condense, or None when the bill fits the analysis models as it is.

    Checked before the run pays for anything: a bill whose condensing would take more calls
    than ``config.max_condense_calls``, or cost more than ``config.max_condense_cost`` by the
    price bound of the dearest priced model in the condense ``chain``, is refused (unless
    ``enforce`` is false: a resumed run re-using its stored condensing).

    Raises:
        InputTooLargeError: Condensing would cross one of the caps.
    """
    if planner.count(bill_text) <= planner.bill_budget:
        return None
    chunks = split_chunks(bill_text, planner.chunk_tokens, planner.count)
    if not enforce:
        return chunks
    if len(chunks) > config.max_condense_calls:
        raise InputTooLargeError(
            f"condensing this bill would take {len(chunks)} calls, more than the "
            f"{config.max_condense_calls} allowed (PipelineConfig.max_condense_calls); use a "
            "model with a larger context or raise the cap",
            limit=config.max_condense_calls,
            actual=len(chunks),
        )
    cap = config.max_condense_cost
    if cap is None:
        return chunks
    overhead = config.prompt_reserve_tokens
    bounds: list[Decimal] = []
    for model in {m for m in chain if isinstance(m, str)}:
        try:
            per_call = [
                llm_client.estimate_cost(
                    planner.count(c.text) + overhead, config.condense_output_tokens, model
                )
                for c in chunks
            ]
        except Exception as exc:  # an unknown alias fails when the call is made, with its own error
            logger.debug("no price bound for %r: %s", model, type(exc).__name__)
            continue
        priced = [c for c in per_call if c is not None]
        if priced:
            bounds.append(sum(priced, Decimal(0)))
    if bounds and max(bounds) > cap:
        raise InputTooLargeError(
            f"condensing this bill could cost ${max(bounds):.4f} ({len(chunks)} calls), more "
            f"than the ${cap} allowed (PipelineConfig.max_condense_cost)",
            limit=cap,
            actual=max(bounds),
        )
    return chunks


def _opening(bill_text: str, planner: ContextPlanner) -> tuple[str, bool]:
    if planner.count(bill_text) <= planner.query_budget:
        return bill_text, True
    first = split_chunks(bill_text, planner.query_budget, planner.count)[0]
    return first.text, False


def passed(critique: ReviewCritique, config: PipelineConfig) -> bool:
    """Whether a review passes: it says so, lists no factual error and meets the threshold."""
    return critique.effective_pass and critique.score >= config.pass_threshold


@dataclass(frozen=True, slots=True)
class Flow:
    """One run's steps, in order.

    Attributes:
        search: The search service or client (see ``AnalysisPipeline``).
        config: Pipeline settings.
        run: The run.
        steps: Runs, re-uses and logs each step.
        planner: Context budgets of the run's models.
    """

    search: Any
    config: PipelineConfig
    run: RunRecord
    steps: StepRunner
    planner: ContextPlanner

    async def analyse(
        self, bill_text: str, max_rounds: int, chunks: list[Chunk] | None
    ) -> PipelineResult:
        """Research (and condense), generate, then review and refine for up to ``max_rounds``.

        Returns:
            The best-scoring analysis with the last review (``latency_ms`` left at 0).
        """
        prepared = await self.research_and_condense(bill_text, chunks)
        run, steps = self.run, self.steps
        args = (run.bill_id, run.jurisdiction, prepared.bill, prepared.sources)
        condensed = prepared.condensed
        current = _attach_sources(
            await self._ask("generate", 0, *args, condensed=condensed), prepared.sources
        )
        best: tuple[BillAnalysis, ReviewCritique] | None = None
        last: ReviewCritique | None = None
        rounds = 0
        for round_no in range(1, max_rounds + 1):
            rounds = round_no
            critique = await self._ask("review", round_no, *args, current, condensed=condensed)
            assert isinstance(critique, ReviewCritique)
            improved = last is None or critique.score > last.score + self.config.min_improvement
            last = critique
            if best is None or critique.score > best[1].score:
                best = (current, critique)
            if passed(critique, self.config) or round_no == max_rounds or not improved:
                break
            refined = await self._ask(
                "refine", round_no, *args, current, critique, condensed=condensed
            )
            current = _attach_sources(refined, prepared.sources)
        assert best is not None
        assert last is not None
        analysis, review = best
        return PipelineResult(
            run_id=run.id,
            bill_id=run.bill_id,
            analysis=analysis,
            review=last,
            passed=passed(review, self.config),
            score=review.score,
            rounds=rounds,
            steps=steps.summaries,
            total_cost=_sum_costs(steps.summaries),
            total_tokens=sum(s.prompt_tokens + s.completion_tokens for s in steps.summaries),
            latency_ms=0.0,
            condensed=condensed,
        )

    async def _ask(self, name: str, round_no: int, *args: Any, condensed: bool) -> Any:
        """A step made of one structured call: its prompt and schema come from the registry."""
        entry = spec(name)
        messages = entry.prompt(*args, condensed=condensed)
        return await self.steps.ask(
            step_key(name, round_no), name, round_no, messages, entry.schema
        )

    async def _research(self, bill_text: str) -> ResearchOutput:
        run, steps, cfg = self.run, self.steps, self.config

        async def work(meter: StepMeter) -> ResearchOutput:
            opening, complete = _opening(bill_text, self.planner)
            messages = spec("research").prompt(
                run.bill_id, run.jurisdiction, opening, cfg.max_queries, complete=complete
            )

            async def propose() -> list[str]:
                proposed = await steps.call(meter, "research", messages, ResearchQueries)
                return merge_queries(proposed.queries, limit=cfg.max_queries)

            queries, found, plan = await run_searches(
                self.search,
                run.bill_id,
                bill_text,
                run.jurisdiction,
                propose,
                meter=meter,
                concurrency=cfg.search_concurrency,
                on_progress=lambda done, total: steps.emit(
                    "searching", "research", "research", searches_done=done, searches_total=total
                ),
                budget=cfg.research_budget,
            )
            # Only the best few can ever reach a prompt; storing the long tail costs CPU and rows.
            keep = max(3 * cfg.max_sources, 50)
            return ResearchOutput(queries=queries, sources=dedupe_sources(found)[:keep], plan=plan)

        return await steps.step(step_key("research", 0), "research", 0, ResearchOutput, work)

    async def _condense(self, chunks: list[Chunk]) -> CondenseOutput:
        run, steps = self.run, self.steps
        cap = self.config.max_condense_cost

        async def work(meter: StepMeter) -> CondenseOutput:
            async def extract(chunk: Chunk, index: int, total: int) -> ChunkExtraction:
                if cap is not None and meter.cost is not None and meter.cost > cap:
                    # The price bound let the run start; the settled cost is what counts.
                    raise InputTooLargeError(
                        f"condensing has cost ${meter.cost:.4f}, more than the ${cap} allowed "
                        "(PipelineConfig.max_condense_cost)",
                        limit=cap,
                        actual=meter.cost,
                    )
                messages = spec("condense").prompt(
                    run.bill_id, run.jurisdiction, chunk.ref, index, total, chunk.text
                )
                return await steps.call(meter, "condense", messages, ChunkExtraction)

            found = await condense_chunks(chunks, extract, self.config.condense_concurrency)
            return CondenseOutput(
                chunks=[c.ref for c in chunks], extractions=found, digest=render_digest(found)
            )

        return await steps.step(step_key("condense", 0), "condense", 0, CondenseOutput, work)

    async def research_and_condense(self, bill_text: str, chunks: list[Chunk] | None) -> Prepared:
        """Run research and, when the bill is too long for the analysis models, condense it.

        The two are independent, so they run concurrently: condensing a long bill costs no
        extra wall time beyond the slower of the two.

        Args:
            bill_text: The bill.
            chunks: The chunks to condense (from :func:`plan_condense`), None for none.

        Returns:
            The bill (or its digest) and the sources fitted to the remaining context budget.

        Raises:
            PipelineRunError: Even the condensed digest does not fit the analysis models.
        """
        planner = self.planner
        try:
            async with asyncio.TaskGroup() as group:
                research = group.create_task(self._research(bill_text))
                condense = group.create_task(self._condense(chunks)) if chunks is not None else None
        except BaseExceptionGroup as group_error:
            raise unwrap_group(group_error) from None
        bill = bill_text if condense is None else condense.result().digest
        used = planner.count(bill)
        if used > planner.analysis_budget:
            raise PipelineRunError(
                self.run.id,
                "condense",
                f"the condensed bill ({used} tokens, {len(split_sections(bill_text))} sections) "
                f"does not fit the analysis models' budget of {planner.analysis_budget} tokens; "
                "configure a larger context_tokens or a larger model",
            )
        sources = fit_sources(
            research.result().sources,
            planner.analysis_budget - used,
            planner.count,
            max_sources=self.config.max_sources,
        )
        return Prepared(bill=bill, sources=sources, condensed=condense is not None)


def _attach_sources(analysis: BillAnalysis, sources: list[SourceRef]) -> BillAnalysis:
    cited = {sid for impact in analysis.impacts for sid in impact.cited_source_ids}
    return analysis.model_copy(update={"sources": [s for s in sources if s.id in cited]})


def _sum_costs(steps: list[StepSummary]) -> Decimal | None:
    total: Decimal | None = None
    for step in steps:
        total = add_costs(total, step.cost)
    return total
