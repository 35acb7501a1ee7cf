"""Fixtures: every run-store backend, and a pipeline on in-process test models."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import analysis_pipeline
import pytest
from analysis_pipeline import LocalRunStore, RunStore
from llm_common_testkit.contract import ContractBackend, StoreContract

# What the generic checks found on main before the store work of issues 11/17 (which adds
# StoreCorruptError) landed; with that work every check should pass, and a stale entry fails.
_BEFORE_STORE_WORK = not hasattr(analysis_pipeline, "StoreCorruptError")
_GAPS_BEFORE_STORE_WORK = {
    "unreachable": "no StoreUnavailableError yet: a cut database raises RunStoreError, an "
    "unreachable Supabase API keeps the call waiting past connect_timeout + 2 s (postgrest-py "
    "retries GETs with back-off by default)",
    "corrupt_local_file": "no StoreCorruptError yet: a corrupt pipeline.sqlite3 raises "
    "RunStoreError",
}

BILLS = Path(__file__).resolve().parents[3] / "../shared/data/bills"


async def _supabase(server: Any, url: str) -> AsyncIterator[RunStore]:
    from analysis_pipeline import SupabaseRunStore
    from supabase import acreate_client

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"supabase.*")
        client = await acreate_client(server.url, server.service_key)
    yield SupabaseRunStore(client)
    await client.postgrest.aclose()  # the app owns its Supabase client, so the test closes it


def _postgres(url: str) -> RunStore:
    from analysis_pipeline import PostgresRunStore

    return PostgresRunStore(url)


async def _exercise(store: RunStore) -> None:
    await store.get_model_configs()


CONTRACT = StoreContract(
    package="analysis-pipeline",
    local=lambda tmp_path: LocalRunStore(tmp_path / "project"),
    postgres=_postgres,
    supabase=_supabase,
    exercise=_exercise,
    local_file=lambda tmp_path: tmp_path / "project" / "pipeline.sqlite3",
    unavailable_error="analysis_pipeline.StoreUnavailableError",
    corrupt_error="analysis_pipeline.StoreCorruptError",
    known_gaps=_GAPS_BEFORE_STORE_WORK if _BEFORE_STORE_WORK else {},
)
contract_backend, store_contract = CONTRACT.fixtures()


@pytest.fixture
async def store(contract_backend: ContractBackend) -> RunStore:
    """Each run-store backend in turn (PostgreSQL and Supabase on a private migrated database)."""
    built: RunStore = await contract_backend.new_store()
    return built


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
