"""The step registry: every pipeline step, described once.

The flow, the configuration (which step names exist, which model chain a step borrows), the
store rows (a step's key within its run) and the CLI (``--model STEP=...``) all read this table.
Adding a step means one entry here, its prompt builder in ``_prompts.py``, its schema in
``_schemas.py``, and the place in ``_flow.py`` where it runs (see the README's "Add a pipeline
step").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from . import _prompts as prompts
from ._records import CondenseOutput, ResearchOutput
from ._schemas import BillAnalysis, ChunkExtraction, ResearchQueries, ReviewCritique

__all__ = ["STEPS", "STEP_NAMES", "StepSpec", "spec", "step_key"]


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One pipeline step.

    Attributes:
        name: Step name: the cost-tracker step, the ``models`` key, the stored ``step``.
        task: The ``Task:`` tag its system prompt opens with (logs, fakes, the offline model).
        prompt: Builds the step's messages (from ``_prompts``).
        schema: The structured output each of its LLM calls must answer with.
        output: What the store keeps as the step's output (re-used by ``resume``).
        per_round: Whether it runs once per review round (its key is ``name:round``).
        borrows: The step whose model chain it uses when none is configured for it.
    """

    name: str
    task: str
    prompt: Callable[..., prompts.Messages]
    schema: type[BaseModel]
    output: type[BaseModel]
    per_round: bool = False
    borrows: str | None = None


STEPS: tuple[StepSpec, ...] = (
    StepSpec("generate", "generate-analysis", prompts.generate_messages, BillAnalysis,
             BillAnalysis),
    StepSpec("review", "review-analysis", prompts.review_messages, ReviewCritique,
             ReviewCritique, per_round=True),
    StepSpec("research", "propose-queries", prompts.query_messages, ResearchQueries,
             ResearchOutput, borrows="generate"),
    StepSpec("condense", "condense-section", prompts.condense_messages, ChunkExtraction,
             CondenseOutput, borrows="generate"),
    StepSpec("refine", "refine-analysis", prompts.refine_messages, BillAnalysis, BillAnalysis,
             per_round=True, borrows="generate"),
)  # fmt: skip
"""Every step; a step that borrows a chain comes after the step it borrows from."""

_BY_NAME = {s.name: s for s in STEPS}
STEP_NAMES: tuple[str, ...] = tuple(_BY_NAME)
"""The step names, in resolution order."""


def spec(name: str) -> StepSpec:
    """The registry entry of step ``name`` (KeyError for an unknown step)."""
    return _BY_NAME[name]


def step_key(name: str, round_no: int) -> str:
    """A step's key within its run: ``generate``, or ``review:2`` for a per-round step."""
    entry = _BY_NAME.get(name)
    return f"{name}:{round_no}" if entry is not None and entry.per_round else name
