"""Progress events a run emits (the CLI's live display listens to them) and the step meter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

__all__ = ["ProgressCallback", "ProgressEvent", "StepMeter", "add_costs"]

ProgressKind = Literal["started", "finished", "reused", "failed", "searching", "note"]


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """Something that happened during a run.

    Attributes:
        kind: ``started``, ``finished``, ``reused`` (resume re-used a stored step), ``failed``,
            ``searching`` (search progress) or ``note``.
        key: Step key (``research``, ``review:1``...).
        step: Step name.
        model: Model of the step, when known.
        message: Human-readable detail.
        cost_so_far: Cost of the run so far (this call).
        tokens_so_far: Tokens of the run so far (this call).
        searches_done: Searches finished (research).
        searches_total: Searches planned (research).
        run_id: The run the event belongs to.
    """

    kind: ProgressKind
    key: str
    step: str
    model: str | None = None
    message: str = ""
    cost_so_far: Decimal = Decimal(0)
    tokens_so_far: int = 0
    searches_done: int = 0
    searches_total: int = 0
    run_id: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


def add_costs(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    """Add two costs where None means unpriced: the sum is None only when both are None."""
    if a is None:
        return b
    if b is None:
        return a
    return a + b


@dataclass(slots=True)
class StepMeter:
    """Accumulates what one step spent across its LLM calls and searches.

    Attributes:
        cost: Dollars spent (None while nothing priced was spent).
        prompt_tokens: Prompt tokens.
        completion_tokens: Completion tokens.
        attempts: LLM HTTP attempts.
        searches: Searches run.
        model: The model that answered last.
    """

    cost: Decimal | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0
    searches: int = 0
    model: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def add_completion(self, done: Any) -> None:
        """Add an llm-client ``Completion`` (its cost covers every attempt)."""
        self.cost = add_costs(self.cost, done.cost)
        self.prompt_tokens += int(done.usage.prompt_tokens)
        self.completion_tokens += int(done.usage.completion_tokens)
        self.attempts += len(done.attempts)
        self.model = str(done.model)
