"""Errors raised by analysis-pipeline.

The tree::

    AnalysisPipelineError
    ├── InvalidInputError        bad arguments (empty bill, unknown step, percent out of range)
    │   └── InputTooLargeError   a bill or its condensing over a configured cap (nothing paid)
    ├── ConfigurationError       a backend extra is missing or a model setting is unusable
    ├── RunStoreError            the run store could not read or write
    │   └── RunNotFoundError     no run with that id
    ├── ResumeError              the run cannot be resumed (already completed, inputs lost)
    └── PipelineRunError         a run failed; the run is stored as ``failed`` with this reason
        └── BudgetRefusedError   a cost budget refused a paid call
"""

from __future__ import annotations

__all__ = [
    "AnalysisPipelineError",
    "BudgetRefusedError",
    "ConfigurationError",
    "InputTooLargeError",
    "InvalidInputError",
    "PipelineRunError",
    "ResumeError",
    "RunNotFoundError",
    "RunStoreError",
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
    """A backend extra is not installed or a model configuration cannot work."""


class RunStoreError(AnalysisPipelineError):
    """The run store failed to read or write."""


class RunNotFoundError(RunStoreError, LookupError):
    """No run with the requested id exists in the store."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no pipeline run with id {run_id!r}")
        self.run_id = run_id


class ResumeError(AnalysisPipelineError):
    """A run cannot be resumed (it already completed, or its inputs were not stored)."""


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
