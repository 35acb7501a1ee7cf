"""The pipeline: research → (condense) → generate → review ⇄ refine, logged step by step."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
import uuid
import warnings
from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from ._compare import ModelStats, compare_models
from ._condense import Chunk
from ._config import PipelineConfig, normalize_models
from ._context import ContextPlanner
from ._errors import (
    BudgetRefusedError,
    InvalidInputError,
    LeaseLostError,
    PipelineRunError,
    RunNotFoundError,
    StoreUnavailableError,
)
from ._flow import Flow, plan_condense
from ._inputs import check_run_inputs
from ._journal import StepJournal
from ._lease import LeaseKeeper, new_owner_id
from ._progress import ProgressCallback, add_costs
from ._records import PipelineResult, RunRecord, StepRecord, utcnow
from ._registry import STEPS
from ._steps import StepRunner, is_budget_error
from ._stores import LocalRunStore, RunStore
from ._stores.local import default_state_dir
from ._tracing import SCOPE, cost_attribute, telemetry_of

if TYPE_CHECKING:
    from cost_tracker import CostTracker
    from llm_client import LLMClient
    from web_search.services import LegislationSearchService

__all__ = ["AnalysisPipeline"]

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


class AnalysisPipeline:
    """Analyses bills for cost-of-living impact: research, generate, review, refine.

    Args:
        llm: An ``llm_client.LLMClient`` (give it the ``CostTracker`` as its cost sink).
        search: A ``web_search.services.LegislationSearchService`` (its client reporting to the
            same ``CostTracker``), or any object with an async ``search(query, step=...)``
            (a bare ``WebSearchClient``, :class:`OfflineSearch`).
        costs: Deprecated and never read: costs reach cost-tracker through the LLM and search
            clients' own cost sinks. Passing it warns; it will be removed in 0.3.
        store: Where runs and steps are logged; a :class:`LocalRunStore` under ``.llm-common/``
            when omitted.
        config: Models, context sizes and concurrency bounds.

    Example:
        >>> pipeline = AnalysisPipeline(llm, search, store=LocalRunStore())
        >>> result = await pipeline.run("XX-AB0000-2026", text, "Exampleland")
        >>> result.analysis.impacts[0].category
        'housing'
    """

    def __init__(
        self,
        llm: LLMClient,
        search: LegislationSearchService | Any,
        costs: CostTracker | None = None,
        store: RunStore | None = None,
        *,
        config: PipelineConfig | None = None,
    ) -> None:
        if costs is not None:
            warnings.warn(
                "AnalysisPipeline(costs=...) is never read and is deprecated (removed in 0.3): "
                "give the CostTracker to LLMClient and WebSearchClient as their cost_sink, and "
                "pass the store as store=...",
                DeprecationWarning,
                stacklevel=2,
            )
        self.llm = llm
        self.search = search
        self.costs = costs
        self.store: RunStore = store if store is not None else LocalRunStore()
        self.owns_store = store is None
        """Whether :meth:`aclose` closes the store (only one this pipeline made)."""
        self.config = config or PipelineConfig()
        self.journal = StepJournal(
            self.config.journal_dir or default_state_dir() / "pipeline-journal"
        )
        self.owner = new_owner_id()
        """This pipeline's lease owner id (``host:pid:random``), see :meth:`resume`."""

    async def __aenter__(self) -> AnalysisPipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the run store if this pipeline made it (a store given to it is the caller's)."""
        if self.owns_store:
            await self.store.aclose()

    async def resolve_models(self, models: dict[str, Any] | None = None) -> dict[str, list[Any]]:
        """Work out the model chain of every step.

        Precedence: ``models``, then the store's ``model_configs``, then
        ``config.models``, then llm-client's per-step configuration, then ``test``.
        ``research``, ``condense`` and ``refine`` default to the ``generate`` chain.

        Args:
            models: Step to model or fallback chain (strings or test models).

        Returns:
            Step to a non-empty chain.
        """
        explicit = _normalize_explicit(models)
        stored = await self.store.get_model_configs()
        llm_config = getattr(self.llm, "config", None)
        chains: dict[str, list[Any]] = {}
        for entry in STEPS:  # a step that borrows a chain comes after its lender
            step = entry.name
            chain = explicit.get(step) or stored.get(step) or self.config.models.get(step)
            if not chain and llm_config is not None and step in getattr(llm_config, "steps", {}):
                chain = list(llm_config.steps[step])
            if not chain and entry.borrows is not None:
                chain = chains[entry.borrows]
            chains[step] = list(chain or ["test"])
        if [_model_name(m) for m in chains["review"]] == [
            _model_name(m) for m in chains["generate"]
        ]:
            # Allowed (tests, tight budgets), but a model grading itself is a weaker review.
            logger.warning("review uses the same model as generate: %s", chains["review"])
        return chains

    async def run(
        self,
        bill_id: str,
        bill_text: str,
        jurisdiction: str,
        models: dict[str, Any] | None = None,
        max_rounds: int = 2,
        *,
        progress: ProgressCallback | None = None,
        run_id: str | None = None,
    ) -> PipelineResult:
        """Analyse one bill end to end and log the run.

        Args:
            bill_id: Bill identifier (``CA-AB2097-2022``).
            bill_text: The bill's full text (long bills are condensed, never truncated).
            jurisdiction: Jurisdiction (``California``).
            models: Step (``research``, ``condense``, ``generate``, ``review``, ``refine``) to a
                model or fallback chain; unset steps use the configured defaults.
            max_rounds: Review rounds at most (2: review, refine once, review again).
            progress: Called with a :class:`ProgressEvent` as the run advances.
            run_id: The new run's id (a UUID; a fresh one by default). A caller that must
                know the id before anything is paid for (a batch worker records it first, so
                whoever takes over after a crash resumes this run) picks it here.

        Returns:
            The best-scoring analysis, the last review, per-step cost and latency.

        Raises:
            InvalidInputError: Empty bill id/text/jurisdiction, text that is not valid Unicode
                (lone surrogates), ``max_rounds`` < 1, or a ``run_id`` that is not a UUID or
                names a run that exists already (resume that one instead); nothing is stored.
            InputTooLargeError: The bill is over ``config.max_bill_chars``, or condensing it
                would cross ``config.max_condense_calls`` / ``max_condense_cost``; refused
                before any paid call, nothing stored.
            BudgetRefusedError: A budget refused a call; the run is stored as failed.
            PipelineRunError: Any other step failure; the run is stored as failed.
        """
        check_run_inputs(bill_id, bill_text, jurisdiction, self.config.max_bill_chars)
        if max_rounds < 1:
            raise InvalidInputError(f"max_rounds must be at least 1, got {max_rounds}")
        if run_id is not None:
            run_id = await self._unused_run_id(run_id)
        chains = await self.resolve_models(models)
        names = {step: [_model_name(m) for m in chain] for step, chain in chains.items()}
        inputs = {"bill_text": bill_text, "max_rounds": max_rounds}
        digest = hashlib.sha256(
            json.dumps(
                {"bill_id": bill_id, "jurisdiction": jurisdiction, "models": names, **inputs},
                sort_keys=True,
            ).encode()
        ).hexdigest()
        run = RunRecord(
            **({"id": run_id} if run_id is not None else {}),
            bill_id=bill_id,
            jurisdiction=jurisdiction,
            models=names,
            inputs_hash=digest,
            inputs=inputs,
            lease_owner=self.owner,
            heartbeat_at=utcnow(),
            project=self.config.project or os.environ.get("PROJECT_NAME") or "default",
        )
        planner, chunks = self._plan(run, chains, {})
        await self.store.save_run(run)
        return await self._execute(run, chains, {}, progress, planner, chunks)

    async def _unused_run_id(self, run_id: str) -> str:
        """``run_id`` as a canonical UUID string, refused if it is not one or is taken."""
        try:
            canonical = str(uuid.UUID(str(run_id)))
        except ValueError:
            raise InvalidInputError(f"run_id must be a UUID, got {str(run_id)[:60]!r}") from None
        try:
            await self.store.get_run(canonical)
        except RunNotFoundError:
            return canonical
        raise InvalidInputError(f"run {canonical} exists already: resume it instead")

    async def resume(
        self,
        run_id: str,
        models: dict[str, Any] | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> PipelineResult:
        """Continue a failed (or interrupted) run from its last completed step.

        Completed steps are re-used from the store (and steps journaled during a store outage
        are handed to it first), so nothing is paid for twice. Resuming a completed run
        rebuilds its result without any call.

        A run is resumed only when no live process runs it: a ``running`` run whose lease is
        fresh (its process heartbeats every ``config.heartbeat_interval`` seconds) is refused;
        one whose heartbeat is older than ``config.lease_timeout`` (the process died) is taken
        over. Two concurrent resumes of one running run: exactly one proceeds.

        Args:
            run_id: The run to continue.
            models: Replacement models per step (e.g. after a provider outage); by default the
                run's own models.
            progress: Called with a :class:`ProgressEvent` as the run advances.

        Returns:
            The run's result.

        Raises:
            RunNotFoundError: No such run.
            RunInProgressError: A live process is running it.
            InputTooLargeError: Condensing still to do would cross a configured cap.
            PipelineRunError: The run failed again (it stays resumable).
        """
        run = await self.store.get_run(run_id)
        if "bill_text" not in run.inputs:
            raise InvalidInputError(f"run {run_id} has no stored inputs to resume from")
        chains: dict[str, list[Any]] = {s: list(c) for s, c in run.models.items()}
        chains.update(_normalize_explicit(models))
        kept = [*await self.store.list_steps(run_id), *self.journal.pending(run_id)]
        planner, chunks = self._plan(run, chains, {s.key for s in kept if s.output})
        # Atomic: of two resumes only one gets the lease, and a live run's owner keeps it.
        run = await self.store.claim_run(run_id, self.owner, self.config.lease_timeout)
        # Steps paid for while the store was unreachable: hand them over before anything else.
        await self.journal.flush(self.store, run_id)
        # Read after the claim: the previous owner cannot add steps any more.
        done = {s.key: s for s in await self.store.list_steps(run_id) if s.status == "completed"}
        return await self._execute(run, chains, done, progress, planner, chunks)

    async def score(self, run_id: str, quality: float) -> None:
        """Record a manual quality score (0..1) for a run.

        Raises:
            RunNotFoundError: No such run.
            InvalidInputError: ``quality`` outside 0..1.
        """
        await self.store.set_quality(run_id, quality)

    async def compare_models(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        step: str = "generate",
    ) -> list[ModelStats]:
        """Compare models at ``step`` over runs started in ``[since, until)``.

        Returns:
            Per model: runs, pass rate, mean review and quality scores, mean cost, p50/p95
            latency (see :func:`analysis_pipeline.compare_models`).
        """
        return await compare_models(self.store, since, until, step)

    def _plan(
        self, run: RunRecord, chains: dict[str, list[Any]], done: Collection[str]
    ) -> tuple[ContextPlanner, list[Chunk] | None]:
        """Context budgets and the chunks to condense, checked against the caps before paying."""
        planner = ContextPlanner(self.config, chains, getattr(self.llm, "config", None))
        # A resumed run whose condensing is stored re-uses it: the caps guard only new spend.
        chunks = plan_condense(
            str(run.inputs["bill_text"]),
            planner,
            self.config,
            chains["condense"],
            enforce="condense" not in done,
        )
        return planner, chunks

    async def _execute(
        self,
        run: RunRecord,
        chains: dict[str, list[Any]],
        done: dict[str, StepRecord],
        progress: ProgressCallback | None,
        planner: ContextPlanner,
        chunks: list[Chunk] | None,
    ) -> PipelineResult:
        attributes = {
            "analysis_pipeline.run_id": run.id,
            "analysis_pipeline.bill_id": run.bill_id,
            "analysis_pipeline.jurisdiction": run.jurisdiction,
            "analysis_pipeline.resumed": bool(done),
        }
        with telemetry_of(self.llm).span(SCOPE, "analysis_pipeline.run", attributes) as span:
            started = time.perf_counter()
            bill_text = str(run.inputs["bill_text"])
            max_rounds = int(run.inputs.get("max_rounds", 2))
            steps = StepRunner(self.llm, self.store, run.id, chains, done, progress, self.journal)
            lease = LeaseKeeper(
                self.store, run.id, self.owner, self.config.heartbeat_interval, steps.fence
            )
            try:
                async with lease:
                    flow = Flow(self.search, self.config, run, steps, planner)
                    result = await flow.analyse(bill_text, max_rounds, chunks)
            except BaseException as exc:
                if lease.lost:
                    # The run is someone else's now: write nothing over their state.
                    task = asyncio.current_task()
                    if task is not None and isinstance(exc, asyncio.CancelledError):
                        task.uncancel()
                    raise LeaseLostError(
                        run.id, steps.current, "another process took the run over (lease lost)"
                    ) from None
                await self._fail(run, steps, exc, started)
                error = _as_run_error(run.id, steps.current, exc)
                if error is exc:
                    raise
                raise error from exc
            elapsed = (time.perf_counter() - started) * 1000
            result = result.model_copy(update={"latency_ms": elapsed})
            finished = run.model_copy(
                update={
                    "status": "completed",
                    "analysis": result.analysis.model_dump(mode="json"),
                    "review": result.review.model_dump(mode="json"),
                    "review_passed": result.passed,
                    "review_score": result.score,
                    "rounds": result.rounds,
                    "cost": add_costs(run.cost, steps.paid_cost),
                    "prompt_tokens": run.prompt_tokens + steps.paid_prompt_tokens,
                    "completion_tokens": run.completion_tokens + steps.paid_completion_tokens,
                    "latency_ms": run.latency_ms + elapsed,
                    "completed_at": utcnow(),
                }
            )
            # The last heartbeat may be seconds old: make sure the run is still ours to finish.
            if not await self._save_final(finished, check_lease=True):
                raise LeaseLostError(run.id, steps.current, "another process took the run over")
            if span is not None:
                span.set_attributes(
                    {
                        "analysis_pipeline.passed": result.passed,
                        "analysis_pipeline.rounds": result.rounds,
                        **cost_attribute("analysis_pipeline.run.cost", result.total_cost),
                    }
                )
            return result

    async def _save_final(self, record: RunRecord, *, check_lease: bool = False) -> bool:
        """Write a run's final state, riding out a store outage while the lease still holds.

        Until ``lease_timeout`` has passed since the last heartbeat no other process may take
        the run over, so retrying that long is safe; a store that stays down longer leaves the
        run ``running`` with a stale lease, which ``resume`` takes over without paying again.

        Returns:
            False when ``check_lease`` found the run taken over by another process.
        """
        # The last heartbeat may be up to one interval old: stop retrying before the lease can
        # lapse, so a write never lands after another process could have taken the run over.
        deadline = time.monotonic() + self.config.lease_timeout - self.config.heartbeat_interval
        delay = min(0.1, self.config.heartbeat_interval)
        while True:
            try:
                if check_lease and not await self.store.heartbeat(record.id, self.owner):
                    return False
                await self.store.save_run(record)
                return True
            except StoreUnavailableError:
                if time.monotonic() + delay > deadline:
                    raise
                logger.info("run store unavailable; retrying the final state of run %s", record.id)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.heartbeat_interval)

    async def _fail(
        self, run: RunRecord, steps: StepRunner, exc: BaseException, started: float
    ) -> None:
        reason = _reason(steps.current, exc)
        failed = run.model_copy(
            update={
                "status": "failed",
                "error": reason,
                "cost": add_costs(run.cost, steps.paid_cost),
                "prompt_tokens": run.prompt_tokens + steps.paid_prompt_tokens,
                "completion_tokens": run.completion_tokens + steps.paid_completion_tokens,
                "latency_ms": run.latency_ms + (time.perf_counter() - started) * 1000,
                "completed_at": utcnow(),
            }
        )
        try:
            if not await asyncio.shield(self._save_final(failed, check_lease=True)):
                logger.warning("run %s was taken over; not marking it failed", run.id)
                return
        except Exception:  # the original failure matters more than the bookkeeping one
            logger.exception("could not mark run %s as failed", run.id)
        logger.warning("pipeline run %s failed: %s", run.id, reason)


def _normalize_explicit(models: dict[str, Any] | None) -> dict[str, list[Any]]:
    """Like :func:`normalize_models` but lets test-model objects through unchanged."""
    out: dict[str, list[Any]] = {}
    for step, value in (models or {}).items():
        chain = [value] if isinstance(value, str) or not isinstance(value, list | tuple) else value
        strings = [m for m in chain if isinstance(m, str)]
        normalize_models({step: strings or ["placeholder"]})  # validates step and strings
        if not chain:
            raise InvalidInputError(f"step {step!r} needs at least one model")
        out[step] = [m.strip() if isinstance(m, str) else m for m in chain]
    return out


def _model_name(model: Any) -> str:
    return model if isinstance(model, str) else str(getattr(model, "name", type(model).__name__))


def _reason(step: str, exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError):
        return f"cancelled during {step}"
    if is_budget_error(exc):
        return f"budget refused a {step} call: {exc}"
    if isinstance(exc, PipelineRunError):
        return exc.reason
    return f"{type(exc).__name__}: {exc}"


def _as_run_error(run_id: str, step: str, exc: BaseException) -> BaseException:
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
        return exc
    if isinstance(exc, PipelineRunError):
        return exc
    reason = _reason(step, exc)
    if is_budget_error(exc):
        return BudgetRefusedError(run_id, step, reason)
    return PipelineRunError(run_id, step, reason)
