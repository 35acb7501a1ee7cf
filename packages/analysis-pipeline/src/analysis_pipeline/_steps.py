"""Running one step: re-use it when a resumed run already has it, else run, meter and log it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel

from ._errors import StoreError
from ._journal import StepJournal
from ._progress import ProgressCallback, ProgressEvent, ProgressKind, StepMeter, add_costs
from ._records import StepName, StepRecord, StepSummary, utcnow
from ._stores import RunStore
from ._tracing import SCOPE, cost_attribute, telemetry_of

__all__ = ["StepRunner", "is_budget_error", "unwrap_group"]

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo:
        err = todo.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        yield err
        todo.extend(e for e in (err.__cause__, err.__context__) if e is not None)
        if isinstance(err, BaseExceptionGroup):
            todo.extend(err.exceptions)
        # llm-client's AllModelsFailedError keeps (model, error) pairs.
        for item in getattr(err, "attempts", None) or ():
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], BaseException):
                todo.append(item[1])


def is_budget_error(exc: BaseException) -> bool:
    """Tell whether a budget refusal caused ``exc``.

    A cost sink refuses a call by raising from ``reserve`` an exception whose class sets
    ``is_budget_refusal = True`` (cost-tracker's ``BudgetExceededError`` does; llm-client and
    web-search re-raise it as their own ``BudgetExceededError`` from the original). The flag is
    looked for over the whole cause chain, inside a fallback chain's ``AllModelsFailedError``
    and inside exception groups, so the pipeline needs no import of any of those packages.

    Args:
        exc: The failure.

    Returns:
        True when an exception flagged as a budget refusal is in its cause chain.
    """
    return any(getattr(type(err), "is_budget_refusal", False) is True for err in _causes(exc))


def unwrap_group(exc: BaseException) -> BaseException:
    """Return the first real error of an exception group (not a sibling's cancellation)."""
    while isinstance(exc, BaseExceptionGroup):
        real = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)]
        exc = (real or list(exc.exceptions))[0]
    return exc


class StepRunner:
    """Runs the steps of one run, logging each to the store and reporting progress.

    Attributes:
        summaries: Per-step cost and latency, in the order steps finished.
        paid_cost: What this call spent (re-used steps excluded).
        paid_prompt_tokens: Prompt tokens this call spent.
        paid_completion_tokens: Completion tokens this call spent.
    """

    def __init__(
        self,
        llm: Any,
        store: RunStore,
        run_id: str,
        chains: dict[str, list[Any]],
        done: dict[str, StepRecord],
        progress: ProgressCallback | None,
        journal: StepJournal,
    ) -> None:
        self.llm = llm
        self.telemetry = telemetry_of(llm)
        self.journal = journal
        self.store = store
        self.run_id = run_id
        self.chains = chains
        self.done = done
        self.progress = progress
        self.summaries: list[StepSummary] = []
        self.paid_cost: Decimal | None = None
        self.paid_prompt_tokens = 0
        self.paid_completion_tokens = 0
        self._last_started = "research"
        self._failed_step: str | None = None
        self._fenced = False

    def fence(self) -> None:
        """Stop writing to the store: another process took the run over."""
        self._fenced = True

    @property
    def current(self) -> str:
        """The step that failed, else the step started last."""
        return self._failed_step or self._last_started

    def emit(self, kind: ProgressKind, key: str, step: str, **fields: Any) -> None:
        """Send a progress event (errors in the listener are logged, never raised)."""
        if self.progress is None:
            return
        event = ProgressEvent(
            kind=kind,
            key=key,
            step=step,
            cost_so_far=self.paid_cost or Decimal(0),
            tokens_so_far=self.paid_prompt_tokens + self.paid_completion_tokens,
            run_id=self.run_id,
            **fields,
        )
        try:
            self.progress(event)
        except Exception:
            logger.exception("progress callback failed")

    def model_for(self, step: str) -> Any:
        """The ``model`` argument for llm-client: one model, or the fallback chain."""
        chain = self.chains[step]
        return chain[0] if len(chain) == 1 else list(chain)

    async def call(
        self, meter: StepMeter, step: str, messages: list[dict[str, str]], response_model: type[M]
    ) -> M:
        """One structured LLM call billed to ``step``; usage lands in ``meter``."""
        done = await self.llm.complete(
            messages, model=self.model_for(step), response_model=response_model, step=step
        )
        meter.add_completion(done)
        output: M = done.output
        return output

    async def ask(
        self,
        key: str,
        step: StepName,
        round_no: int,
        messages: list[dict[str, str]],
        response_model: type[M],
    ) -> M:
        """A step made of one structured LLM call."""

        async def work(meter: StepMeter) -> M:
            return await self.call(meter, step, messages, response_model)

        return await self.step(key, step, round_no, response_model, work)

    async def step(
        self,
        key: str,
        step: StepName,
        round_no: int,
        output_model: type[M],
        work: Callable[[StepMeter], Awaitable[M]],
    ) -> M:
        """Run ``work`` as step ``key`` unless a resumed run already completed it.

        Args:
            key: Step key within the run (``review:1``).
            step: Step name (cost-tracker step).
            round_no: Review round (0 before the first review).
            output_model: Type of the step's output (to re-validate stored output).
            work: The step's body; it records usage into the meter it is given.

        Returns:
            The step's output.
        """
        stored = self.done.get(key)
        if stored is not None and stored.output is not None:
            self.summaries.append(
                StepSummary(
                    key=key,
                    step=step,
                    model=stored.model,
                    cost=stored.cost,
                    prompt_tokens=stored.prompt_tokens,
                    completion_tokens=stored.completion_tokens,
                    latency_ms=stored.latency_ms,
                    reused=True,
                )
            )
            self.emit("reused", key, step, model=stored.model, message="re-used from the store")
            return output_model.model_validate(stored.output)
        self._last_started = step
        meter = StepMeter()
        started = utcnow()
        t0 = time.perf_counter()
        self.emit("started", key, step, model=_name(self.model_for(step)))
        attributes = {
            "analysis_pipeline.step": step,
            "analysis_pipeline.step.key": key,
            "analysis_pipeline.round": round_no,
        }
        with self.telemetry.span(SCOPE, f"analysis_pipeline.step {key}", attributes) as span:
            output = await self._work(key, step, round_no, work, meter, started, t0)
            if span is not None:
                span.set_attributes(
                    {
                        "analysis_pipeline.step.model": meter.model or "",
                        "analysis_pipeline.step.searches": meter.searches,
                        **cost_attribute("analysis_pipeline.step.cost", meter.cost),
                    }
                )
        return output

    async def _work(
        self,
        key: str,
        step: StepName,
        round_no: int,
        work: Callable[[StepMeter], Awaitable[M]],
        meter: StepMeter,
        started: Any,
        t0: float,
    ) -> M:
        try:
            output = await work(meter)
        except BaseException as exc:
            if self._failed_step is None and not isinstance(exc, asyncio.CancelledError):
                self._failed_step = step
            self._pay(meter)
            record = self._record(key, step, round_no, meter, started, t0)
            record.status = "failed"
            record.error = f"{type(exc).__name__}: {exc}"[:2000]
            if self._fenced:
                raise
            try:
                await asyncio.shield(self.store.save_step(record))
            except Exception:
                logger.exception("could not log failed step %s of run %s", key, self.run_id)
            self.emit("failed", key, step, model=meter.model, message=record.error)
            raise
        self._pay(meter)
        record = self._record(key, step, round_no, meter, started, t0)
        record.output = output.model_dump(mode="json")
        try:
            await self.store.save_step(record)
        except StoreError as exc:
            # Paid for: keep it where resume finds it, rather than pay for it again.
            path = await self.journal.keep(record)
            logger.warning(
                "run %s: step %s journaled to %s (the run store failed: %s)",
                self.run_id, key, path, exc,
            )  # fmt: skip
            raise
        self.summaries.append(
            StepSummary(
                key=key,
                step=step,
                model=record.model,
                cost=record.cost,
                prompt_tokens=record.prompt_tokens,
                completion_tokens=record.completion_tokens,
                latency_ms=record.latency_ms,
            )
        )
        self.emit("finished", key, step, model=record.model, searches_done=meter.searches)
        return output

    def _pay(self, meter: StepMeter) -> None:
        self.paid_cost = add_costs(self.paid_cost, meter.cost)
        self.paid_prompt_tokens += meter.prompt_tokens
        self.paid_completion_tokens += meter.completion_tokens

    def _record(
        self, key: str, step: StepName, round_no: int, meter: StepMeter, started: Any, t0: float
    ) -> StepRecord:
        return StepRecord(
            run_id=self.run_id,
            key=key,
            step=step,
            round=round_no,
            model=meter.model or _name(self.model_for(step)),
            cost=meter.cost,
            prompt_tokens=meter.prompt_tokens,
            completion_tokens=meter.completion_tokens,
            latency_ms=(time.perf_counter() - t0) * 1000,
            attempts=meter.attempts,
            searches=meter.searches,
            started_at=started,
            completed_at=utcnow(),
        )


def _name(model: Any) -> str:
    if isinstance(model, list):
        return _name(model[0]) if model else "?"
    return model if isinstance(model, str) else str(getattr(model, "name", type(model).__name__))
