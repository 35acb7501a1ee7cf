"""Helpers shared by cost-tracker's tests (imported as ``ct_testlib``)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cost_tracker import CostStore, CostTracker, LocalCostStore

BACKENDS = ["local", "postgres", "supabase"]

MakeTracker = Callable[..., Awaitable[CostTracker]]


@dataclass(frozen=True)
class Estimate:
    """Structurally what llm-client's CostEstimate is (cost-tracker must not import it)."""

    idempotency_id: str
    provider: str = "openrouter"
    model: str | None = "test/model"
    step: str | None = "generate"
    amount: Decimal | None = Decimal("0.01")


@dataclass(frozen=True)
class Record:
    """Structurally what llm-client's CostRecord is."""

    idempotency_id: str
    provider: str = "openrouter"
    model: str | None = "test/model"
    step: str | None = "generate"
    cost: Decimal | None = Decimal("0.01")
    prompt_tokens: int = 10
    completion_tokens: int = 5
    cached_prompt_tokens: int = 2
    reasoning_tokens: int = 1
    success: bool = True
    error: str | None = None
    latency_ms: float = 12.5
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    metadata: dict[str, Any] = field(default_factory=dict)


def estimate(amount: Decimal | None = Decimal("0.01"), **kwargs: Any) -> Estimate:
    """A fresh estimate with a unique id."""
    return Estimate(idempotency_id=str(uuid.uuid4()), amount=amount, **kwargs)


async def make_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> CostStore:
    """A store of backend ``kind`` on a private database."""
    if kind == "local":
        return LocalCostStore(tmp_path / "costs")
    if kind == "postgres":
        from cost_tracker import PostgresCostStore

        url = request.getfixturevalue("postgres_db")
        return PostgresCostStore(url, max_size=4)
    from cost_tracker import SupabaseCostStore
    from supabase import acreate_client

    server = request.getfixturevalue("supabase_server")
    return SupabaseCostStore(await acreate_client(server.url, server.service_key))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``cost-tracker ARGS`` in a fresh interpreter, as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PGPASSWORD")}
    env["COLUMNS"] = "80"  # rich wraps at the terminal width: one line must stay one line
    return subprocess.run(
        [sys.executable, "-c", "from cost_tracker._cli import app; app()", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def run_report(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``cost-tracker report --since 2026-04-01 ARGS`` in a fresh interpreter."""
    return run_cli("report", "--since", "2026-04-01", *args)
