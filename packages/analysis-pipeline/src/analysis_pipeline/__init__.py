"""Research, generate, review, refine: a logged, comparable legislation-analysis pipeline.

Example:
    >>> from analysis_pipeline import AnalysisPipeline, LocalRunStore
    >>> pipeline = AnalysisPipeline(llm, search, store=LocalRunStore(".llm-common"))
    >>> result = await pipeline.run("CA-AB1482-2019", text, "California")
"""

from importlib.metadata import version as _version
from typing import TYPE_CHECKING

from ._compare import (
    ArmStats,
    ImpactAgreement,
    ModelStats,
    ShadowComparison,
    compare_models,
    compare_shadow,
    comparison_csv,
    shadow_comparison,
)
from ._config import PipelineConfig
from ._errors import (
    AnalysisPipelineError,
    BatchError,
    BudgetRefusedError,
    ConfigurationError,
    InputTooLargeError,
    InvalidInputError,
    LeaseLostError,
    MissingExtraError,
    PipelineRunError,
    ResumeError,
    RunInProgressError,
    RunNotFoundError,
    RunStoreError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from ._pipeline import AnalysisPipeline
from ._progress import ProgressEvent
from ._records import (
    FlagChange,
    FlagState,
    PipelineResult,
    ResearchPlanRecord,
    RunRecord,
    ShadowArm,
    ShadowImpact,
    ShadowRecord,
    StepRecord,
    StepSummary,
)
from ._reports import ModelConfigChange, ModelDay, ModelReport, RunFilter, RunPage, RunSummary
from ._rollout import DEFAULT_FLAG, RolloutFlag, parse_switch, resolve_rollout, rollout
from ._schemas import (
    BillAnalysis,
    ChunkExtraction,
    FactualError,
    Impact,
    Magnitude,
    ResearchQueries,
    ReviewCritique,
    SourceRef,
)
from ._shadow import (
    LegacyAnalyser,
    LegacyResult,
    Served,
    ShadowRunner,
    impacts_of,
    normalise_impact_name,
)
from ._stores import LocalRunStore, RunStore

if TYPE_CHECKING:
    from ._batch import (
        BatchBill,
        BatchQueue,
        BatchStatus,
        BatchWorker,
        EnqueueResult,
        WorkerStats,
    )
    from ._limiter import CallLimiter, LimitedCostSink
    from ._stores.postgres import PostgresRunStore
    from ._stores.supabase import SupabaseRunStore

__version__ = _version("analysis-pipeline")

__all__ = [
    "DEFAULT_FLAG",
    "AnalysisPipeline",
    "AnalysisPipelineError",
    "ArmStats",
    "BatchBill",
    "BatchError",
    "BatchQueue",
    "BatchStatus",
    "BatchWorker",
    "BillAnalysis",
    "BudgetRefusedError",
    "CallLimiter",
    "ChunkExtraction",
    "ConfigurationError",
    "EnqueueResult",
    "FactualError",
    "FlagChange",
    "FlagState",
    "Impact",
    "ImpactAgreement",
    "InputTooLargeError",
    "InvalidInputError",
    "LeaseLostError",
    "LegacyAnalyser",
    "LegacyResult",
    "LimitedCostSink",
    "LocalRunStore",
    "Magnitude",
    "MissingExtraError",
    "ModelConfigChange",
    "ModelDay",
    "ModelReport",
    "ModelStats",
    "PipelineConfig",
    "PipelineResult",
    "PipelineRunError",
    "PostgresRunStore",
    "ProgressEvent",
    "ResearchPlanRecord",
    "ResearchQueries",
    "ResumeError",
    "ReviewCritique",
    "RolloutFlag",
    "RunFilter",
    "RunInProgressError",
    "RunNotFoundError",
    "RunPage",
    "RunRecord",
    "RunStore",
    "RunStoreError",
    "RunSummary",
    "Served",
    "ShadowArm",
    "ShadowComparison",
    "ShadowImpact",
    "ShadowRecord",
    "ShadowRunner",
    "SourceRef",
    "StepRecord",
    "StepSummary",
    "StoreCorruptError",
    "StoreError",
    "StoreUnavailableError",
    "SupabaseRunStore",
    "WorkerStats",
    "__version__",
    "compare_models",
    "compare_shadow",
    "comparison_csv",
    "impacts_of",
    "normalise_impact_name",
    "parse_switch",
    "resolve_rollout",
    "rollout",
    "shadow_comparison",
]


_BATCH = frozenset(
    {"BatchBill", "BatchQueue", "BatchStatus", "BatchWorker", "EnqueueResult",
     "WorkerStats"}
)  # fmt: skip

# Moved to analysis_pipeline.testing in 0.2 (the core never imports test doubles).
_MOVED_TO_TESTING = frozenset(
    {"OfflineSearch", "offline_answer", "offline_handler", "offline_models", "structured_reply",
     "task_of"}
)  # fmt: skip


def __getattr__(name: str) -> object:
    # One lazy-export style: the PostgreSQL and Supabase stores import their drivers (optional
    # extras) only when asked for; a missing extra raises MissingExtraError.
    if name in {"PostgresRunStore", "SupabaseRunStore"}:
        from . import _stores

        return getattr(_stores, name)
    if name in _BATCH:  # procrastinate and psycopg: the 'batch' extra
        from . import _batch

        return getattr(_batch, name)
    if name in {"CallLimiter", "LimitedCostSink"}:
        from . import _limiter

        return getattr(_limiter, name)
    if name in _MOVED_TO_TESTING:
        import warnings

        from . import testing

        warnings.warn(
            f"analysis_pipeline.{name} moved to analysis_pipeline.testing.{name}; the old name "
            "will be removed in 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(testing, name)
    raise AttributeError(f"module 'analysis_pipeline' has no attribute {name!r}")
