"""Backends for the contract tests, registered once with the testkit's contract harness:
local SQLite, PostgreSQL and Supabase (the real client through the loopback PostgREST server)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cost_tracker
import pytest
from cost_tracker import CostStore, CostTracker, LocalCostStore
from llm_common_testkit.contract import ContractBackend, StoreContract

MakeTracker = Callable[..., Awaitable[CostTracker]]

# What the generic checks found on main before the store work of issues 11/17 (which adds
# StoreCorruptError) landed; with that work every check passes, and a stale entry would fail.
_BEFORE_STORE_WORK = not hasattr(cost_tracker, "StoreCorruptError")
_GAPS_BEFORE_STORE_WORK = {
    "aclose_idempotent[local]": "a second LocalCostStore.aclose() raises RuntimeError "
    "(its executor is already shut down)",
    "corrupt_local_file": "no StoreCorruptError yet: a corrupt cost-tracker.sqlite raises "
    "sqlite3.DatabaseError",
}


def _postgres(url: str) -> CostStore:
    from cost_tracker import PostgresCostStore

    return PostgresCostStore(url, max_size=4)


async def _supabase(server: Any, url: str) -> CostStore:
    from cost_tracker import SupabaseCostStore
    from supabase import acreate_client

    return SupabaseCostStore(await acreate_client(server.url, server.service_key))


async def _exercise(store: CostStore) -> None:
    now = datetime.now(UTC)
    await store.total_cost(now - timedelta(days=1), now, None)


CONTRACT = StoreContract(
    package="cost-tracker",
    local=lambda tmp_path: LocalCostStore(tmp_path / "costs"),
    postgres=_postgres,
    supabase=_supabase,
    exercise=_exercise,
    local_file=lambda tmp_path: tmp_path / "costs" / "cost-tracker.sqlite",
    unavailable_error="cost_tracker.StoreUnavailableError",
    corrupt_error="cost_tracker.StoreCorruptError",
    known_gaps=_GAPS_BEFORE_STORE_WORK if _BEFORE_STORE_WORK else {},
)
contract_backend, store_contract = CONTRACT.fixtures()


@pytest.fixture
async def make_tracker(
    contract_backend: ContractBackend, tmp_path: Path
) -> AsyncIterator[MakeTracker]:
    """Build trackers over one private store of each backend; all closed at teardown."""
    trackers: list[CostTracker] = []

    async def make(**kwargs: Any) -> CostTracker:
        # Each tracker gets its own store on the same database, like replicas of one app.
        kwargs.setdefault("project", "contract")
        kwargs.setdefault("outbox_path", tmp_path / "outbox.sqlite")
        kwargs.setdefault("retry_interval", None)
        tracker = CostTracker(await contract_backend.new_store(), **kwargs)
        trackers.append(tracker)
        return tracker

    yield make
    for tracker in trackers:
        await tracker.aclose()
