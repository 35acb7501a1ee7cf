"""Supabase run store: the ``supabase`` async client over ``pipeline_runs``/``pipeline_steps``.

Needs the ``supabase`` extra. Use the service role key on a backend: the tables are
server-side only (RLS on, no policies for anon/authenticated). Money travels as strings so no
float ever touches it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

try:
    import httpx
    from postgrest.exceptions import APIError
    from supabase import AsyncClient, AsyncClientOptions, acreate_client
except ImportError as exc:
    from analysis_pipeline._errors import MissingExtraError

    raise MissingExtraError("SupabaseRunStore", "supabase") from exc

from analysis_pipeline._errors import (
    ConfigurationError,
    InvalidInputError,
    RunNotFoundError,
    StoreError,
    StoreUnavailableError,
)
from analysis_pipeline._records import (
    FlagChange,
    FlagState,
    RunRecord,
    ShadowRecord,
    StepRecord,
)
from analysis_pipeline._reports import (
    ModelConfigChange,
    ModelReport,
    RunFilter,
    RunPage,
    check_page,
    check_step,
)
from analysis_pipeline._stores import _rows

__all__ = ["SupabaseRunStore"]

MIGRATE_COMMAND = "llm-common-db migrate --package analysis-pipeline --database-url <url>"
# PostgREST's answers for a table or function that is not there: the database's own codes
# (undefined table / function) and its schema-cache misses (PGRST205 table, PGRST202 function).
_MISSING_CODES = frozenset({"42P01", "42883", "PGRST202", "PGRST205"})


class SupabaseRunStore:
    """Run store on Supabase through PostgREST.

    Args:
        client: An async Supabase client (``await acreate_client(url, service_key)``).
        owns_client: Whether ``aclose()`` closes the client (``connect`` builds one it owns).
        connect_timeout: Longest wait for the API to answer one call (whatever retries the
            client makes meanwhile) before ``StoreUnavailableError``.
    """

    def __init__(
        self, client: AsyncClient, *, owns_client: bool = False, connect_timeout: float = 5.0
    ) -> None:
        if connect_timeout <= 0:
            raise ConfigurationError("connect_timeout must be positive")
        self._client = client
        self.owns_client = owns_client
        self.connect_timeout = connect_timeout

    @classmethod
    async def connect(cls, url: str, key: str, *, connect_timeout: float = 5.0) -> SupabaseRunStore:
        """Create an async client for ``url`` with ``key`` (never logged) that this store owns.

        Args:
            url: The project URL.
            key: The service role key.
            connect_timeout: Longest wait for an answer before ``StoreUnavailableError``.
        """
        # No client-side retries: an outage fails within connect_timeout (paid steps are journaled).
        options = AsyncClientOptions(
            postgrest_client_timeout=connect_timeout, postgrest_client_retry=False
        )
        client = await acreate_client(url, key, options=options)
        return cls(client, owns_client=True, connect_timeout=connect_timeout)

    def __repr__(self) -> str:
        return f"SupabaseRunStore(url={str(self._client.supabase_url)!r})"

    async def _send(self, query: Any) -> Any:
        try:
            async with asyncio.timeout(self.connect_timeout):
                return await query.execute()
        except TimeoutError as exc:
            raise StoreUnavailableError(
                f"Supabase did not answer within {self.connect_timeout:g} s"
            ) from exc
        except APIError as exc:
            if exc.code in _MISSING_CODES:
                raise StoreError(
                    f"tables for analysis-pipeline are missing: run `{MIGRATE_COMMAND}` "
                    f"on the project's database ({exc.message})"
                ) from exc
            raise StoreError(f"Supabase run store failed: {exc.code}: {exc.message}") from exc
        except httpx.TransportError as exc:
            raise StoreUnavailableError(f"Supabase unreachable: {type(exc).__name__}") from exc

    async def _exec(self, query: Any) -> list[dict[str, Any]]:
        data = (await self._send(query)).data
        return list(data) if isinstance(data, list) else []

    async def save_run(self, run: RunRecord) -> None:
        """Insert or replace the run with ``run.id``."""
        table = self._client.table("pipeline_runs")
        await self._exec(table.upsert(_rows.run_to_row(run), on_conflict="id"))

    async def get_run(self, run_id: str) -> RunRecord:
        """Return the run; raise ``RunNotFoundError`` when there is none."""
        try:
            rows = await self._exec(
                self._client.table("pipeline_runs").select("*").eq("id", run_id).limit(1)
            )
        except StoreError as exc:
            if getattr(exc.__cause__, "code", None) == "22P02":  # not a uuid: no such run
                raise RunNotFoundError(run_id) from None
            raise
        if not rows:
            raise RunNotFoundError(run_id)
        return _rows.run_from_row(rows[0])

    async def claim_run(self, run_id: str, owner: str, lease_seconds: float) -> RunRecord:
        """Take the run's lease unless a live process holds it (the ``pipeline_claim_run`` RPC)."""
        args = {"p_run_id": run_id, "p_owner": owner, "p_lease_seconds": lease_seconds}
        try:
            rows = await self._exec(self._client.rpc("pipeline_claim_run", args))
        except StoreError as exc:
            if getattr(exc.__cause__, "code", None) == "22P02":  # not a uuid: no such run
                raise RunNotFoundError(run_id) from None
            raise
        return await _rows.claimed_or_refused(rows, run_id, self.get_run)

    async def heartbeat(self, run_id: str, owner: str) -> bool:
        """Refresh the lease; return False when ``owner`` no longer holds a running run."""
        query = self._client.rpc("pipeline_heartbeat", {"p_run_id": run_id, "p_owner": owner})
        return (await self._send(query)).data is True

    async def find_run_ids(self, prefix: str) -> list[str]:
        """Return the ids of every run whose id starts with ``prefix`` (dashes optional)."""
        bounds = _rows.run_id_range(prefix)
        if bounds is None:
            return []
        query = (
            self._client.table("pipeline_runs")
            .select("id")
            .gte("id", bounds[0])
            .lte("id", bounds[1])
            .order("id")
        )
        return [str(r["id"]) for r in await self._exec(query)]

    async def list_runs(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bill_id: str | None = None,
        limit: int | None = 100,
    ) -> list[RunRecord]:
        """Return runs started in ``[since, until)``, newest first."""
        query = self._window("pipeline_runs", since, until, bill_id, limit)
        return [_rows.run_from_row(r) for r in await self._exec(query)]

    def _window(
        self,
        table: str,
        since: datetime | None,
        until: datetime | None,
        bill_id: str | None,
        limit: int | None,
    ) -> Any:
        """Rows of ``table`` started in ``[since, until)``, newest first."""
        query = self._client.table(table).select("*")
        if since is not None:
            query = query.gte("started_at", since.isoformat())
        if until is not None:
            query = query.lt("started_at", until.isoformat())
        if bill_id is not None:
            query = query.eq("bill_id", bill_id)
        query = query.order("started_at", desc=True)
        if limit is not None:
            query = query.limit(limit)
        return query

    async def save_step(self, step: StepRecord) -> None:
        """Insert or replace the step with ``(run_id, step, round)``."""
        table = self._client.table("pipeline_steps")
        await self._exec(table.upsert(_rows.step_to_row(step), on_conflict="run_id,step,round"))

    async def list_steps(self, run_id: str) -> list[StepRecord]:
        """Return the run's steps in the order they started."""
        query = (
            self._client.table("pipeline_steps")
            .select("*")
            .eq("run_id", run_id)
            .order("started_at")
            .order("round")
        )
        return [_rows.step_from_row(r) for r in await self._exec(query)]

    async def set_quality(self, run_id: str, quality: float) -> None:
        """Record a manual quality score 0..1; raise ``RunNotFoundError`` for unknown runs."""
        if not 0 <= quality <= 1:
            raise InvalidInputError(f"quality must be between 0 and 1, got {quality!r}")
        await self.get_run(run_id)
        table = self._client.table("pipeline_runs")
        await self._exec(table.update({"manual_quality_score": quality}).eq("id", run_id))

    async def get_model_configs(self) -> dict[str, list[str]]:
        """Return the enabled model chain per step, by priority."""
        query = (
            self._client.table("model_configs")
            .select("step,model,priority")
            .eq("enabled", True)
            .order("step")
            .order("priority")
        )
        out: dict[str, list[str]] = {}
        for row in await self._exec(query):
            out.setdefault(row["step"], []).append(row["model"])
        return out

    async def set_model_config(
        self, step: str, models: list[str], *, changed_by: str | None = None
    ) -> None:
        """Replace the chain for ``step`` and record the change (``pipeline_configure_step``)."""
        args = {"p_step": step, "p_models": list(models), "p_changed_by": changed_by}
        await self._send(self._client.rpc("pipeline_configure_step", args))

    async def model_config_changes(
        self, *, step: str | None = None, limit: int = 50
    ) -> list[ModelConfigChange]:
        """Return the latest changes of the model chains (of ``step``, or all), newest first."""
        query = self._client.table("model_config_changes").select(
            "step,old_models,new_models,changed_by,changed_at"
        )
        if step is not None:
            query = query.eq("step", step)
        query = query.order("changed_at", desc=True).order("id", desc=True).limit(limit)
        return [ModelConfigChange.model_validate(r) for r in await self._exec(query)]

    async def model_report(
        self,
        step: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        jurisdiction: str | None = None,
    ) -> ModelReport:
        """Per-model statistics of ``step`` (the ``pipeline_model_report`` RPC, in SQL)."""
        args = {
            "p_step": check_step(step),
            "p_since": None if since is None else since.isoformat(),
            "p_until": None if until is None else until.isoformat(),
            "p_jurisdiction": jurisdiction,
        }
        data = (await self._send(self._client.rpc("pipeline_model_report", args))).data
        return ModelReport.model_validate(data)

    async def run_page(
        self, filter: RunFilter | None = None, *, offset: int = 0, limit: int = 50
    ) -> RunPage:
        """One page of matching runs, newest first (the ``pipeline_run_page`` RPC)."""
        f = filter or RunFilter()
        check_page(offset, limit)
        args = {
            "p_status": f.status,
            "p_bill": f.bill,
            "p_jurisdiction": f.jurisdiction,
            "p_model": f.model,
            "p_since": None if f.since is None else f.since.isoformat(),
            "p_until": None if f.until is None else f.until.isoformat(),
            "p_offset": offset,
            "p_limit": limit,
        }
        data = (await self._send(self._client.rpc("pipeline_run_page", args))).data
        return RunPage.model_validate(data)

    async def get_flag(self, name: str) -> FlagState | None:
        """Return the rollout flag ``name``, or None when no admin has set it."""
        query = self._client.table("pipeline_flags").select("*").eq("name", name).limit(1)
        rows = await self._exec(query)
        return _rows.flag_from_row(rows[0]) if rows else None

    async def set_flag(
        self, name: str, *, enabled: bool | None, percent: float | None, changed_by: str
    ) -> FlagState:
        """Set the flag and audit the change in one transaction (``pipeline_set_flag`` RPC)."""
        _rows.check_flag_change(name, percent, changed_by)
        args = {
            "p_name": name,
            "p_enabled": enabled,
            "p_percent": None if percent is None else str(percent),
            "p_changed_by": changed_by,
        }
        rows = await self._exec(self._client.rpc("pipeline_set_flag", args))
        return _rows.flag_from_row(rows[0])

    async def flag_changes(self, name: str, *, limit: int = 50) -> list[FlagChange]:
        """Return the flag's audited changes, newest first."""
        query = (
            self._client.table("pipeline_flag_changes")
            .select("*")
            .eq("name", name)
            .order("id", desc=True)
            .limit(limit)
        )
        return [_rows.change_from_row(r) for r in await self._exec(query)]

    async def record_shadow(self, record: ShadowRecord) -> None:
        """Insert the outcome of one shadow run (both arms)."""
        table = self._client.table("pipeline_shadow_runs")
        await self._exec(table.upsert(_rows.shadow_to_row(record), on_conflict="id"))

    async def shadow_results(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bill_id: str | None = None,
        limit: int | None = 100,
    ) -> list[ShadowRecord]:
        """Return shadow runs started in ``[since, until)``, newest first."""
        query = self._window("pipeline_shadow_runs", since, until, bill_id, limit)
        return [_rows.shadow_from_row(r) for r in await self._exec(query)]

    async def aclose(self) -> None:
        """Close the client if this store made it (``connect``); a given client is the app's."""
        if self.owns_client:
            self.owns_client = False
            await self._client.postgrest.aclose()
