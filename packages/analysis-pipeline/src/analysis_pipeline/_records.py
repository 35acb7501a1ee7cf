"""What the run store keeps and what a run returns: run/step records and the pipeline result."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from ._schemas import BillAnalysis, ChunkExtraction, ImpactDirection, ReviewCritique, SourceRef

__all__ = [
    "STEP_NAMES",
    "ArmStatus",
    "CondenseOutput",
    "FlagChange",
    "FlagState",
    "PipelineResult",
    "ResearchOutput",
    "ResearchPlanRecord",
    "RunRecord",
    "RunStatus",
    "ShadowArm",
    "ShadowImpact",
    "ShadowRecord",
    "StepName",
    "StepRecord",
    "StepStatus",
    "StepSummary",
    "new_run_id",
    "utcnow",
]

RunStatus = Literal["running", "completed", "failed"]
StepStatus = Literal["completed", "failed"]
StepName = str
"""A step name from the step registry (``research``, ``generate``, ``review``...); it is also
the ``step`` recorded with every cost."""
STEP_NAMES: tuple[str, ...] = ("research", "condense", "generate", "review", "refine")
"""The built-in step names (kept for 0.1 callers; the registry in ``_registry`` is the source)."""


def utcnow() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_run_id() -> str:
    """Return a fresh run id (a UUID4 string, valid as a PostgreSQL ``uuid``)."""
    return str(uuid.uuid4())


class RunRecord(BaseModel):
    """One pipeline run as the store keeps it.

    Attributes:
        id: Run id (UUID string).
        bill_id: The bill analysed.
        jurisdiction: Its jurisdiction.
        status: ``running``, ``completed`` or ``failed``.
        models: Step name to the model (or fallback chain) configured for it.
        inputs_hash: SHA-256 of the inputs (bill text, jurisdiction, models, rounds).
        inputs: What ``resume`` needs to continue (bill text, max rounds).
        analysis: The final (best-scoring) analysis as JSON.
        review: The last review as JSON.
        review_passed: Whether the final review passed (factual errors count as failure).
        review_score: Score of the kept analysis.
        quality_score: Manual quality score 0..1, set later with ``score``.
        rounds: Review rounds performed.
        cost: Total cost in US dollars (None when some call was unpriced and nothing priced).
        prompt_tokens: Total prompt tokens.
        completion_tokens: Total completion tokens.
        latency_ms: Wall time of the run (all attempts, resumed parts summed).
        error: Why the run failed.
        started_at: When the run started (UTC).
        completed_at: When it completed or failed (UTC).
        lease_owner: The process running it (while ``running``), see ``resume``.
        heartbeat_at: That process's last heartbeat (UTC); a ``running`` run whose heartbeat
            is older than the lease timeout is dead and may be resumed.
        project: The project the run (and its costs) belong to, from ``PipelineConfig.project``.
    """

    id: str = Field(default_factory=new_run_id)
    bill_id: str
    jurisdiction: str
    status: RunStatus = "running"
    models: dict[str, list[str]] = Field(default_factory=dict)
    inputs_hash: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict)
    analysis: dict[str, Any] | None = None
    review: dict[str, Any] | None = None
    review_passed: bool | None = None
    review_score: float | None = None
    quality_score: float | None = None
    rounds: int = 0
    cost: Decimal | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    error: str | None = None
    started_at: datetime = Field(default_factory=utcnow)
    completed_at: datetime | None = None
    lease_owner: str | None = None
    heartbeat_at: datetime | None = None
    project: str | None = None


class StepRecord(BaseModel):
    """One executed step of a run.

    Attributes:
        run_id: The run it belongs to.
        key: Unique key within the run (``research``, ``generate``, ``review:1``, ``refine:1``).
        step: The step name (also the cost-tracker step).
        round: Review round the step belongs to (0 before the first review).
        status: ``completed`` or ``failed``.
        model: The model that answered (the first of the chain when none did).
        output: The step's output as JSON (re-used on resume).
        cost: What the step cost, all attempts; None when unpriced.
        prompt_tokens: Prompt tokens.
        completion_tokens: Completion tokens.
        latency_ms: Wall time of the step.
        attempts: LLM attempts made (retries and fallbacks included).
        searches: Searches run (research step).
        error: Why the step failed.
        started_at: Start time (UTC).
        completed_at: End time (UTC).
    """

    run_id: str
    key: str
    step: StepName
    round: int = 0
    status: StepStatus = "completed"
    model: str | None = None
    output: dict[str, Any] | None = None
    cost: Decimal | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    attempts: int = 0
    searches: int = 0
    error: str | None = None
    started_at: datetime = Field(default_factory=utcnow)
    completed_at: datetime | None = None

    @field_validator("step")
    @classmethod
    def _registered(cls, value: str) -> str:
        from ._registry import STEP_NAMES  # the registry describes steps by these records

        if value not in STEP_NAMES:
            raise ValueError(f"unknown step {value!r}; steps are {', '.join(STEP_NAMES)}")
        return value


class StepSummary(BaseModel):
    """Cost and latency of one step in a :class:`PipelineResult`.

    Attributes:
        key: Step key within the run.
        step: Step name.
        model: Model that answered.
        cost: Cost in US dollars (None when unpriced).
        prompt_tokens: Prompt tokens.
        completion_tokens: Completion tokens.
        latency_ms: Wall time.
        reused: True when ``resume`` re-used the stored output instead of paying again.
    """

    key: str
    step: StepName
    model: str | None
    cost: Decimal | None
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    reused: bool = False


class PipelineResult(BaseModel):
    """What a finished run returns.

    Attributes:
        run_id: Id of the stored run.
        bill_id: The bill analysed.
        analysis: The best-scoring analysis.
        review: The last review.
        passed: Whether the kept analysis passed review (factual errors count as failure).
        score: Review score of the kept analysis.
        rounds: Review rounds performed.
        steps: Per-step cost and latency, in execution order.
        total_cost: Sum of step costs (None only when every step was unpriced).
        total_tokens: Prompt plus completion tokens of all steps.
        latency_ms: Wall time of this call (``run`` or ``resume``).
        condensed: Whether the bill was condensed to fit the generate model's context.
    """

    run_id: str
    bill_id: str
    analysis: BillAnalysis
    review: ReviewCritique
    passed: bool
    score: float
    rounds: int
    steps: list[StepSummary]
    total_cost: Decimal | None
    total_tokens: int
    latency_ms: float
    condensed: bool = False


class ResearchPlanRecord(BaseModel):
    """How a bill's research kept to its budget (stored with the research step).

    Attributes:
        max_calls: The budget's cap on upstream search calls.
        max_cost: The budget's cap on search dollars.
        planned_calls: Upstream calls the plan could make (cache hits make fewer).
        calls: Upstream calls made (each one paid, one cost record each).
        unplanned_calls: Calls the full query set would have made without a plan.
        cut: Whether the caps left a source domain unsearched.
        uncovered: The domains left unsearched.
        dropped: Queries not sent as written, as ``reason: text``.
    """

    max_calls: int
    max_cost: Decimal
    planned_calls: int
    calls: int = 0
    unplanned_calls: int = 0
    cut: bool = False
    uncovered: list[str] = Field(default_factory=list)
    dropped: list[str] = Field(default_factory=list)


class ResearchOutput(BaseModel):
    """Stored output of the research step.

    Attributes:
        queries: Every query searched (LLM-proposed merged with the service's set).
        sources: De-duplicated, ranked sources before fitting to a context budget.
        plan: How the research kept to its budget (None for a search without a plan).
    """

    queries: list[str] = Field(default_factory=list)
    sources: list[SourceRef] = Field(default_factory=list)
    plan: ResearchPlanRecord | None = None


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


class FlagState(BaseModel):
    """A rollout flag as the run store keeps it (an admin flips it without a restart).

    Attributes:
        name: The flag (``llm-framework`` for the switch-over).
        enabled: The kill switch: False routes nothing to the new framework, True routes
            everything, None lets ``percent`` decide.
        percent: Share of keys routed to the new framework while ``enabled`` is None, 0..100.
        updated_at: When it was last set (UTC).
        updated_by: Who set it.
    """

    name: str
    enabled: bool | None = None
    percent: float = Field(default=0.0, ge=0, le=100)
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str


class FlagChange(BaseModel):
    """One audited change of a rollout flag: who, when (UTC), the old and the new value.

    Attributes:
        name: The flag.
        changed_at: When (UTC).
        changed_by: Who.
        old_enabled: ``enabled`` before the change.
        old_percent: ``percent`` before the change; None when the flag did not exist.
        new_enabled: ``enabled`` after.
        new_percent: ``percent`` after.
    """

    name: str
    changed_at: datetime
    changed_by: str
    old_enabled: bool | None
    old_percent: float | None
    new_enabled: bool | None
    new_percent: float


ArmStatus = Literal["ok", "error", "timeout", "cancelled"]
"""How one arm of a shadow run ended."""


class ShadowImpact(BaseModel):
    """An impact as a shadow run compares it: a name and the direction costs move.

    The new pipeline's impacts are named by their category (``housing``, ``energy``...); the
    legacy analyser's by whatever the app maps them to. Names are matched after
    :func:`~analysis_pipeline.normalise_impact_name`.

    Attributes:
        name: The impact's name as the arm gave it.
        direction: ``increase``, ``decrease``, ``mixed`` or ``unclear``.
    """

    name: str
    direction: ImpactDirection


class ShadowArm(BaseModel):
    """The outcome of one arm (new pipeline or legacy analyser) of a shadow run.

    Attributes:
        status: ``ok``, ``error`` (it raised), ``timeout`` (the shadow arm ran past
            ``shadow_timeout``) or ``cancelled`` (shut down before it finished).
        error: What went wrong, one line (type and message), when not ``ok``.
        cost: What the arm cost in US dollars (None when unknown).
        latency_ms: Wall time of the arm.
        impacts: The impacts it found (empty unless ``ok``).
        run_id: The pipeline run of the new arm (None for the legacy arm).
    """

    status: ArmStatus
    error: str | None = None
    cost: Decimal | None = None
    latency_ms: float = 0.0
    impacts: list[ShadowImpact] = Field(default_factory=list)
    run_id: str | None = None


class ShadowRecord(BaseModel):
    """Both arms of one shadow run, as the run store keeps it (``pipeline_shadow_runs``).

    Attributes:
        id: Record id (UUID string).
        bill_id: The bill both arms analysed.
        jurisdiction: Its jurisdiction.
        served: The arm whose result the caller got (``new`` or ``legacy``).
        started_at: When the run started (UTC).
        new: The new pipeline's outcome.
        legacy: The legacy analyser's outcome.
    """

    id: str = Field(default_factory=new_run_id)
    bill_id: str
    jurisdiction: str
    served: Literal["new", "legacy"]
    started_at: datetime = Field(default_factory=utcnow)
    new: ShadowArm
    legacy: ShadowArm
