"""The run-store protocol every backend satisfies (local, PostgreSQL, Supabase)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from analysis_pipeline._records import FlagChange, FlagState, RunRecord, ShadowRecord, StepRecord
from analysis_pipeline._reports import ModelConfigChange, ModelReport, RunFilter, RunPage

__all__ = ["RunStore"]


@runtime_checkable
class RunStore(Protocol):
    """Keeps pipeline runs, their steps and the admin-editable model choices.

    Backends: :class:`~analysis_pipeline.LocalRunStore` (SQLite, no server),
    :class:`~analysis_pipeline.PostgresRunStore` and :class:`~analysis_pipeline.SupabaseRunStore`
    (tables ``pipeline_runs``, ``pipeline_steps``, ``model_configs``, ``pipeline_flags``,
    ``pipeline_flag_changes``, ``pipeline_shadow_runs`` from ``db/``).
    """

    async def save_run(self, run: RunRecord) -> None:
        """Insert or replace the run with ``run.id``."""
        ...

    async def get_run(self, run_id: str) -> RunRecord:
        """Return the run; raise ``RunNotFoundError`` when there is none."""
        ...

    async def find_run_ids(self, prefix: str) -> list[str]:
        """Return the ids of every run whose id starts with ``prefix`` (dashes optional).

        An empty list when none does, or when ``prefix`` is not the start of any UUID.
        """
        ...

    async def list_runs(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bill_id: str | None = None,
        limit: int | None = 100,
    ) -> list[RunRecord]:
        """Return runs started in ``[since, until)``, newest first."""
        ...

    async def claim_run(self, run_id: str, owner: str, lease_seconds: float) -> RunRecord:
        """Take the run's lease for ``owner`` unless a live process holds it, atomically.

        The claim succeeds when the run is not ``running``, when ``owner`` already holds it, or
        when its last heartbeat is older than ``lease_seconds`` (its process died). The claimed
        run is marked ``running`` with a fresh heartbeat, its error and end time cleared. Of
        two concurrent claims exactly one succeeds.

        Raises:
            RunNotFoundError: No such run.
            RunInProgressError: Another owner's lease is fresh.
        """
        ...

    async def heartbeat(self, run_id: str, owner: str) -> bool:
        """Refresh the lease; return False when ``owner`` no longer holds a running run."""
        ...

    async def save_step(self, step: StepRecord) -> None:
        """Insert or replace the step with ``(step.run_id, step.key)``."""
        ...

    async def list_steps(self, run_id: str) -> list[StepRecord]:
        """Return the run's steps in the order they started."""
        ...

    async def set_quality(self, run_id: str, quality: float) -> None:
        """Record a manual quality score 0..1; raise ``RunNotFoundError`` for unknown runs."""
        ...

    async def get_model_configs(self) -> dict[str, list[str]]:
        """Return the admin-configured model chain per step (empty when none is set)."""
        ...

    async def set_model_config(
        self, step: str, models: list[str], *, changed_by: str | None = None
    ) -> None:
        """Set the model chain for ``step`` (admins switch models without a deploy).

        The change and its audit row (old and new chain, ``changed_by``, the time) are written
        together: every change appears in :meth:`model_config_changes`.
        """
        ...

    async def model_config_changes(
        self, *, step: str | None = None, limit: int = 50
    ) -> list[ModelConfigChange]:
        """Return the latest changes of the model chains (of ``step``, or all), newest first."""
        ...

    async def model_report(
        self,
        step: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        jurisdiction: str | None = None,
    ) -> ModelReport:
        """Per-model statistics of ``step`` over runs started in ``[since, until)``, per day too.

        A run counts for the model that first answered the step (see :class:`ModelStats`).
        """
        ...

    async def run_page(
        self, filter: RunFilter | None = None, *, offset: int = 0, limit: int = 50
    ) -> RunPage:
        """Return one page of the runs matching ``filter``, newest first, with the total."""
        ...

    async def get_flag(self, name: str) -> FlagState | None:
        """Return the rollout flag ``name``, or None when no admin has set it."""
        ...

    async def set_flag(
        self, name: str, *, enabled: bool | None, percent: float | None, changed_by: str
    ) -> FlagState:
        """Set the flag and record the change (who, when UTC, old, new) in one transaction.

        Args:
            name: The flag.
            enabled: False = off for every key, True = on for every key, None = ``percent``
                decides. Stored as given.
            percent: Share 0..100 used while ``enabled`` is None; None keeps the stored
                percent (0 for a new flag).
            changed_by: Who makes the change (recorded; must not be empty).

        Returns:
            The flag as stored.

        Raises:
            InvalidInputError: ``percent`` outside 0..100, or ``changed_by`` empty.
        """
        ...

    async def flag_changes(self, name: str, *, limit: int = 50) -> list[FlagChange]:
        """Return the flag's audited changes, newest first."""
        ...

    async def record_shadow(self, record: ShadowRecord) -> None:
        """Insert the outcome of one shadow run (both arms)."""
        ...

    async def shadow_results(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bill_id: str | None = None,
        limit: int | None = 100,
    ) -> list[ShadowRecord]:
        """Return shadow runs started in ``[since, until)``, newest first."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
