"""Errors raised by analysis-pipeline.

The tree::

    AnalysisPipelineError
    ├── InvalidInputError        bad arguments (empty bill, unknown step, percent out of range)
    │   └── InputTooLargeError   a bill or its condensing over a configured cap (nothing paid)
    ├── ConfigurationError       a model setting or store argument is unusable
    ├── BatchError               batch analysis could not enqueue, read or run (or limit calls)
    ├── MissingExtraError        a backend's optional dependencies are not installed (ImportError)
    ├── StoreError               the run store could not read or write (alias: RunStoreError)
    │   ├── StoreUnavailableError  unreachable or timed out
    │   ├── StoreCorruptError      a local database file that is not a valid database
    │   └── RunNotFoundError       no run with that id
    ├── ResumeError              the run cannot be resumed (inputs lost)
    │   └── RunInProgressError   another live process holds the run's lease
    └── PipelineRunError         a run failed; the run is stored as ``failed`` with this reason
        ├── BudgetRefusedError   a cost budget refused a paid call
        └── LeaseLostError       another process took the run over; this one stopped paying
"""

from __future__ import annotations

from datetime import datetime

__all__ = [
    "AnalysisPipelineError",
    "BatchError",
    "BudgetRefusedError",
    "ConfigurationError",
    "InputTooLargeError",
    "InvalidInputError",
    "LeaseLostError",
    "MissingExtraError",
    "PipelineRunError",
    "ResumeError",
    "RunInProgressError",
    "RunNotFoundError",
    "RunStoreError",
    "StoreCorruptError",
    "StoreError",
    "StoreUnavailableError",
]


class AnalysisPipelineError(Exception):
    """Base class of every error raised by analysis-pipeline."""


class InvalidInputError(AnalysisPipelineError, ValueError):
    """An argument is unusable (empty bill text, unknown step name, percent out of range)."""


class InputTooLargeError(InvalidInputError):
    """A bill is larger than ``PipelineConfig.max_bill_chars``, or condensing it would take more
    calls or dollars than ``max_condense_calls`` / ``max_condense_cost`` allow.

    Raised before any paid call; no run is stored.

    Attributes:
        limit: The configured cap that was crossed.
        actual: What the bill would need (characters, calls or dollars).
    """

    def __init__(self, message: str, *, limit: object, actual: object) -> None:
        super().__init__(message)
        self.limit = limit
        self.actual = actual


class ConfigurationError(AnalysisPipelineError):
    """A model configuration or a store argument cannot work."""


class BatchError(AnalysisPipelineError):
    """Batch analysis could not enqueue, read or run (bad table name, database error, or the
    call limiter's slot table is missing)."""


class MissingExtraError(AnalysisPipelineError, ImportError):
    """A backend needs an optional extra that is not installed.

    Attributes:
        package: The distribution to install the extra of (``analysis-pipeline``).
        extra: The extra's name (``postgres``, ``supabase``).
    """

    def __init__(self, name: str, extra: str, package: str = "analysis-pipeline") -> None:
        super().__init__(
            f"{name} needs the {extra!r} extra: pip install '{package}[{extra}]'", name=package
        )
        self.package = package
        self.extra = extra


class StoreError(AnalysisPipelineError):
    """The run store failed to read or write."""


RunStoreError = StoreError
"""The name of :class:`StoreError` in 0.1 (kept as an alias)."""


class StoreUnavailableError(StoreError):
    """The run store's database is unreachable, timed out, or its circuit breaker is open."""


class StoreCorruptError(StoreError):
    """A local run-store file is not a valid database.

    Attributes:
        path: The file.
    """

    def __init__(self, path: object) -> None:
        super().__init__(
            f"the run store file {path} is not a valid SQLite database: move it aside (or "
            "delete it) and it will be recreated empty; runs stored in it are not readable"
        )
        self.path = path


class RunNotFoundError(StoreError, LookupError):
    """No run with the requested id exists in the store."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no pipeline run with id {run_id!r}")
        self.run_id = run_id


class ResumeError(AnalysisPipelineError):
    """A run cannot be resumed (its inputs were not stored, or another process runs it)."""


class RunInProgressError(ResumeError):
    """The run is ``running`` in a live process (its lease is fresh), so it is not resumed.

    Attributes:
        run_id: The run.
        owner: The process holding the lease.
        heartbeat_at: Its last heartbeat (UTC).
    """

    def __init__(self, run_id: str, owner: str | None, heartbeat_at: datetime | None) -> None:
        when = "never" if heartbeat_at is None else heartbeat_at.isoformat()
        super().__init__(
            f"run {run_id} is in progress in another process ({owner}, last heartbeat {when}); "
            "it can be resumed once that process stops and its lease expires"
        )
        self.run_id = run_id
        self.owner = owner
        self.heartbeat_at = heartbeat_at


class PipelineRunError(AnalysisPipelineError):
    """A pipeline run failed; the store keeps it as ``failed`` with its completed steps.

    Attributes:
        run_id: The failed run, resumable with ``AnalysisPipeline.resume(run_id)``.
        step: The step that failed (``research``, ``generate``, ``review``, ...).
        reason: Human-readable reason, also stored as the run's error.
    """

    def __init__(self, run_id: str, step: str, reason: str) -> None:
        super().__init__(f"pipeline run {run_id} failed at step {step!r}: {reason}")
        self.run_id = run_id
        self.step = step
        self.reason = reason


class BudgetRefusedError(PipelineRunError):
    """A cost budget refused a paid call, so the run stopped before overspending."""


class LeaseLostError(PipelineRunError):
    """Another process took the run over (this one's heartbeat lapsed); this one stopped.

    The run is left to its new owner: nothing is written over its state.
    """
