"""``analysis-pipeline dashboard``: the dashboard served standalone by uvicorn.

The run store and cost-tracker's store come from one place: ``--database-url`` (PostgreSQL),
``--supabase-url`` (with ``SUPABASE_SERVICE_ROLE_KEY``) or the local state directory
(``--store``). The token comes from ``LLM_COMMON_DASHBOARD_TOKEN``; without it the server
starts but refuses every request.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any, cast

import cost_tracker

from analysis_pipeline._errors import ConfigurationError
from analysis_pipeline._stores import LocalRunStore, RunStore
from analysis_pipeline._stores.local import default_state_dir

__all__ = ["SUPABASE_KEY_ENV_VAR", "open_stores", "serve"]

logger = logging.getLogger(__name__)

SUPABASE_KEY_ENV_VAR = "SUPABASE_SERVICE_ROLE_KEY"


async def open_stores(
    stack: contextlib.AsyncExitStack,
    *,
    database_url: str | None,
    supabase_url: str | None,
    store_dir: Path | None,
) -> tuple[RunStore, Any]:
    """The run store and cost store on one backend, closed when ``stack`` closes."""
    if database_url and supabase_url:
        raise ConfigurationError("give --database-url or --supabase-url, not both")
    if database_url:
        from analysis_pipeline._stores.postgres import PostgresRunStore

        runs: RunStore = PostgresRunStore(database_url)
        stack.push_async_callback(runs.aclose)
        # cost_tracker exports its backends lazily (module __getattr__), untyped for mypy.
        costs: Any = cast(Any, cost_tracker).PostgresCostStore(database_url)
        stack.push_async_callback(costs.aclose)
        return runs, costs
    if supabase_url:
        key = os.environ.get(SUPABASE_KEY_ENV_VAR, "")
        if not key:
            raise ConfigurationError(f"--supabase-url needs {SUPABASE_KEY_ENV_VAR} set")
        from analysis_pipeline._stores.supabase import SupabaseRunStore

        runs = await SupabaseRunStore.connect(supabase_url, key)
        stack.push_async_callback(runs.aclose)
        costs = await cast(Any, cost_tracker).SupabaseCostStore.connect(supabase_url, key)
        stack.push_async_callback(costs.aclose)
        return runs, costs
    from cost_tracker import LocalCostStore

    base = store_dir or default_state_dir()
    runs = LocalRunStore(base)
    stack.push_async_callback(runs.aclose)
    costs = LocalCostStore(base)
    stack.push_async_callback(costs.aclose)
    return runs, costs


async def serve(
    *,
    database_url: str | None,
    supabase_url: str | None,
    store_dir: Path | None,
    host: str,
    port: int,
    tz: str,
    token: str | None,
    announce: Any,
) -> None:
    """Open the stores, build the dashboard and serve it until interrupted."""
    import uvicorn

    from analysis_pipeline.dashboard._app import create_dashboard

    async with contextlib.AsyncExitStack() as stack:
        runs, costs = await open_stores(
            stack, database_url=database_url, supabase_url=supabase_url, store_dir=store_dir
        )
        app = create_dashboard(run_store=runs, cost_store=costs, token=token, tz=tz)
        announce(f"dashboard on http://{host}:{port}/ over {runs!r}")
        if not token:
            announce("LLM_COMMON_DASHBOARD_TOKEN is not set: every request is refused")
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        await server.serve()
