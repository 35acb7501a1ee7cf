"""Backends for the contract tests: local SQLite, PostgreSQL and Supabase (loopback PostgREST)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make helpers importable

from cost_tracker import CostTracker
from ct_testlib import BACKENDS, MakeTracker, make_store


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Name of the backend under test."""
    return str(request.param)


@pytest.fixture
async def make_tracker(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[MakeTracker]:
    """Build trackers over one private store of ``backend``; all closed at teardown."""
    trackers: list[CostTracker] = []

    async def make(**kwargs: Any) -> CostTracker:
        # Each tracker gets its own store on the same database, like replicas of one app.
        kwargs.setdefault("project", "contract")
        kwargs.setdefault("outbox_path", tmp_path / "outbox.sqlite")
        kwargs.setdefault("retry_interval", None)
        tracker = CostTracker(await make_store(backend, request, tmp_path), **kwargs)
        trackers.append(tracker)
        return tracker

    yield make
    for tracker in trackers:
        await tracker.aclose()
