"""Pipeline settings: default models per step, context sizes, concurrency bounds, rounds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from web_search.services import ResearchBudget

from ._errors import InvalidInputError
from ._registry import STEP_NAMES

__all__ = ["DEFAULT_MODELS", "PIPELINE_STEPS", "ModelChoice", "PipelineConfig", "normalize_models"]

PIPELINE_STEPS: tuple[str, ...] = STEP_NAMES
"""Every step name, from the step registry."""

ModelChoice = str | Sequence[str]
"""One model string (or alias) or a fallback chain tried in order."""

DEFAULT_MODELS: dict[str, list[str]] = {name: ["test"] for name in STEP_NAMES}
"""Used only when neither the call, the run store, this config nor llm-client name a model."""


@dataclass(slots=True)
class PipelineConfig:
    """How a pipeline runs.

    Attributes:
        models: Default model chain per step (``research``, ``condense``, ``generate``,
            ``review``, ``refine``); ``condense`` falls back to ``generate`` and ``refine`` to
            ``generate`` when unset. Precedence at run time: the ``models`` argument, then the
            store's ``model_configs``, then this, then llm-client's configuration.
        context_tokens: Context window override per model string or alias (e.g. ``{"small":
            8192}``); otherwise ``llm_client.model_info(model).max_input_tokens``.
        default_context_tokens: Used when a model's context is unknown.
        max_context_tokens: Cap on every model's context window (e.g. to run as on an 8k
            model); None for no cap.
        output_reserve_tokens: Tokens kept free for the answer of generate/review/refine.
        prompt_reserve_tokens: Tokens kept for instructions and message framing.
        draft_reserve_tokens: Tokens kept for the draft and critique that review/refine add.
        condense_output_tokens: Tokens kept for each chunk extraction's answer.
        min_source_share: Share of the context budget kept for research sources; a bill that
            does not fit in the rest is condensed.
        search_concurrency: Searches in flight at once.
        research_budget: Caps on one bill's research searches (calls and dollars); None for
            the search service's own (``ResearchBudget()``: 12 calls, $0.12). A plan the caps
            cut is recorded on the research step (``ResearchOutput.plan``), not raised.
        condense_concurrency: Chunk extractions in flight at once.
        max_sources: Upper bound on sources passed to the models.
        max_queries: Upper bound on LLM-proposed queries.
        min_improvement: A refine round must raise the review score by more than this, or the
            loop stops early.
        pass_threshold: Score a review must reach to count as passed (besides ``passed`` and
            no factual errors).
        max_bill_chars: Largest bill (characters) a run accepts; a larger one is refused with
            ``InputTooLargeError`` before any call.
        max_condense_calls: Most condense calls one run may make; a bill needing more is
            refused before any call.
        max_condense_cost: Most dollars one run's condensing may cost, by the models' price
            bound before the run and by the settled cost while it runs; None for no cap.
        heartbeat_interval: Seconds between a running run's lease heartbeats.
        lease_timeout: Seconds without a heartbeat after which a ``running`` run counts as
            dead and ``resume`` may take it over (several heartbeats, to ride out a slow store).
        journal_dir: Where paid step results wait when the run store cannot take them
            (``resume`` hands them over); ``<state dir>/pipeline-journal`` when None.
        project: Project recorded with each run (``pipeline_runs.project``); when None,
            ``$PROJECT_NAME`` or ``default``, the rule cost-tracker's ``CostTracker`` follows,
            so a run and its cost rows carry the same project. Give the tracker's project here
            when it is set explicitly.
    """

    models: dict[str, list[str]] = field(default_factory=dict)
    context_tokens: dict[str, int] = field(default_factory=dict)
    default_context_tokens: int = 32_000
    max_context_tokens: int | None = None
    output_reserve_tokens: int = 1_500
    prompt_reserve_tokens: int = 700
    draft_reserve_tokens: int = 1_500
    condense_output_tokens: int = 600
    min_source_share: float = 0.25
    search_concurrency: int = 32
    research_budget: ResearchBudget | None = None
    condense_concurrency: int = 8
    max_sources: int = 20
    max_queries: int = 24
    min_improvement: float = 0.0
    pass_threshold: float = 0.0
    max_bill_chars: int = 2_000_000
    max_condense_calls: int = 200
    max_condense_cost: Decimal | None = Decimal("1.00")
    heartbeat_interval: float = 5.0
    lease_timeout: float = 30.0
    journal_dir: Path | None = None
    project: str | None = None

    def __post_init__(self) -> None:
        if self.search_concurrency < 1 or self.condense_concurrency < 1:
            raise InvalidInputError("concurrency bounds must be at least 1")
        if self.max_bill_chars < 1 or self.max_condense_calls < 1:
            raise InvalidInputError("max_bill_chars and max_condense_calls must be at least 1")
        if self.max_condense_cost is not None:
            self.max_condense_cost = Decimal(str(self.max_condense_cost))
            if self.max_condense_cost < 0:
                raise InvalidInputError("max_condense_cost must not be negative")
        if not 0 < self.heartbeat_interval < self.lease_timeout:
            raise InvalidInputError("heartbeat_interval must be positive and below lease_timeout")
        if not 0 <= self.min_source_share < 1:
            raise InvalidInputError("min_source_share must be in [0, 1)")
        self.models = normalize_models(self.models)


def normalize_models(models: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """Turn ``{step: model | [models]}`` into ``{step: [models]}``, validating step names.

    Args:
        models: Step name to one model or a fallback chain.

    Returns:
        Step name to a non-empty list of model strings.

    Raises:
        InvalidInputError: An unknown step or an empty/non-string model.
    """
    out: dict[str, list[str]] = {}
    for step, choice in (models or {}).items():
        if step not in PIPELINE_STEPS:
            raise InvalidInputError(f"unknown step {step!r}; steps are {', '.join(PIPELINE_STEPS)}")
        chain = [choice] if isinstance(choice, str) else list(choice)
        if not chain or not all(isinstance(m, str) and m.strip() for m in chain):
            raise InvalidInputError(f"step {step!r} needs a model string or a list of them")
        out[step] = [m.strip() for m in chain]
    return out
