"""The steps before generation: research and (for long bills) condensing, run concurrently."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import llm_client
from pydantic import BaseModel, Field

from . import _prompts as prompts
from ._condense import Chunk, condense_chunks, render_digest, split_chunks, split_sections
from ._config import PipelineConfig
from ._context import ContextPlanner
from ._errors import InputTooLargeError, PipelineRunError
from ._progress import StepMeter
from ._records import RunRecord
from ._research import dedupe_sources, fit_sources, merge_queries
from ._schemas import ChunkExtraction, ResearchQueries, SourceRef
from ._search import run_searches
from ._steps import StepRunner, unwrap_group

if TYPE_CHECKING:
    from ._pipeline import AnalysisPipeline

__all__ = [
    "CondenseOutput",
    "Prepared",
    "ResearchOutput",
    "plan_condense",
    "research_and_condense",
]


class ResearchOutput(BaseModel):
    """Stored output of the research step.

    Attributes:
        queries: Every query searched (LLM-proposed merged with the service's set).
        sources: De-duplicated, ranked sources before fitting to a context budget.
    """

    queries: list[str] = Field(default_factory=list)
    sources: list[SourceRef] = Field(default_factory=list)


class CondenseOutput(BaseModel):
    """Stored output of the condense step.

    Attributes:
        chunks: Section references of the chunks, in bill order.
        extractions: One structured extraction per chunk.
        digest: The condensed bill the analysis steps read.
    """

    chunks: list[str]
    extractions: list[ChunkExtraction]
    digest: str


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


async def _research(
    pipeline: AnalysisPipeline,
    run: RunRecord,
    steps: StepRunner,
    planner: ContextPlanner,
    bill_text: str,
) -> ResearchOutput:
    async def work(meter: StepMeter) -> ResearchOutput:
        opening, complete = _opening(bill_text, planner)
        cfg = pipeline.config
        messages = prompts.query_messages(
            run.bill_id, run.jurisdiction, opening, cfg.max_queries, complete=complete
        )

        async def propose() -> list[str]:
            proposed = await steps.call(meter, "research", messages, ResearchQueries)
            return merge_queries(proposed.queries, limit=cfg.max_queries)

        queries, found = await run_searches(
            pipeline.search,
            run.bill_id,
            bill_text,
            run.jurisdiction,
            propose,
            meter=meter,
            concurrency=cfg.search_concurrency,
            on_progress=lambda done, total: steps.emit(
                "searching", "research", "research", searches_done=done, searches_total=total
            ),
        )
        # Only the best few can ever reach a prompt; storing the long tail costs CPU and rows.
        keep = max(3 * cfg.max_sources, 50)
        return ResearchOutput(queries=queries, sources=dedupe_sources(found)[:keep])

    return await steps.step("research", "research", 0, ResearchOutput, work)


async def _condense(
    pipeline: AnalysisPipeline,
    run: RunRecord,
    steps: StepRunner,
    chunks: list[Chunk],
) -> CondenseOutput:
    cap = pipeline.config.max_condense_cost

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
            messages = prompts.condense_messages(
                run.bill_id, run.jurisdiction, chunk.ref, index, total, chunk.text
            )
            return await steps.call(meter, "condense", messages, ChunkExtraction)

        found = await condense_chunks(chunks, extract, pipeline.config.condense_concurrency)
        return CondenseOutput(
            chunks=[c.ref for c in chunks], extractions=found, digest=render_digest(found)
        )

    return await steps.step("condense", "condense", 0, CondenseOutput, work)


async def research_and_condense(
    pipeline: AnalysisPipeline,
    run: RunRecord,
    steps: StepRunner,
    planner: ContextPlanner,
    bill_text: str,
    chunks: list[Chunk] | None,
) -> Prepared:
    """Run research and, when the bill is too long for the analysis models, condense it.

    The two are independent, so they run concurrently: condensing a long bill costs no extra
    wall time beyond the slower of the two.

    Args:
        pipeline: The pipeline (search service and configuration).
        run: The run.
        steps: Runs and logs each step.
        planner: Context budgets of the run's models.
        bill_text: The bill.
        chunks: The chunks to condense (from :func:`plan_condense`), None for none.

    Returns:
        The bill (or its digest) and the sources fitted to the remaining context budget.

    Raises:
        PipelineRunError: Even the condensed digest does not fit the analysis models.
    """
    try:
        async with asyncio.TaskGroup() as group:
            research = group.create_task(_research(pipeline, run, steps, planner, bill_text))
            condense = (
                group.create_task(_condense(pipeline, run, steps, chunks))
                if chunks is not None
                else None
            )
    except BaseExceptionGroup as group_error:
        raise unwrap_group(group_error) from None
    bill = bill_text if condense is None else condense.result().digest
    used = planner.count(bill)
    if used > planner.analysis_budget:
        raise PipelineRunError(
            run.id,
            "condense",
            f"the condensed bill ({used} tokens, {len(split_sections(bill_text))} sections) "
            f"does not fit the analysis models' budget of {planner.analysis_budget} tokens; "
            "configure a larger context_tokens or a larger model",
        )
    sources = fit_sources(
        research.result().sources,
        planner.analysis_budget - used,
        planner.count,
        max_sources=pipeline.config.max_sources,
    )
    return Prepared(bill=bill, sources=sources, condensed=condense is not None)
