"""Fixtures: every run-store backend, and a pipeline on in-process test models."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from analysis_pipeline import LocalRunStore, RunStore

BILLS = Path(__file__).resolve().parents[3] / "../shared/data/bills"


@pytest.fixture(params=["local", "postgres", "supabase"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunStore]:
    """Each run-store backend in turn (PostgreSQL and Supabase on a private migrated database)."""
    if request.param == "local":
        local = LocalRunStore(tmp_path / "project")
        yield local
        await local.aclose()
        return
    if request.param == "postgres":
        from analysis_pipeline import PostgresRunStore

        pg = PostgresRunStore(request.getfixturevalue("postgres_db"))
        yield pg
        await pg.aclose()
        return
    from analysis_pipeline import SupabaseRunStore
    from supabase import acreate_client

    server: Any = request.getfixturevalue("supabase_server")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"supabase.*")
        client = await acreate_client(server.url, server.service_key)
    yield SupabaseRunStore(client)
    await client.postgrest.aclose()  # the app owns its Supabase client, so the test closes it


_SUPABASE_WARNINGS = (
    "ignore:The 'timeout' parameter is deprecated:DeprecationWarning",
    "ignore:The 'verify' parameter is deprecated:DeprecationWarning",
    "ignore:The 'proxy' parameter is deprecated:DeprecationWarning",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # supabase-py warns about its own internals when building a client; only those are ignored.
    for item in items:
        if "supabase" in item.nodeid:
            for spec in _SUPABASE_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))
