"""Records, budgets and errors reject bad input with typed errors and keep secrets out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from cost_tracker import (
    BudgetExceededError,
    CostMetrics,
    CostTracker,
    CostTrackerError,
    InvalidRecordError,
    LocalCostStore,
    StoreError,
    StoreUnavailableError,
    UnpricedCostError,
)
from llm_common_testkit.costs import Record, estimate
from pydantic import ValidationError


def test_errors_share_one_base() -> None:
    for error in (BudgetExceededError, UnpricedCostError, InvalidRecordError, StoreError):
        assert issubclass(error, CostTrackerError)
    assert issubclass(StoreUnavailableError, CostTrackerError)
    assert issubclass(UnpricedCostError, BudgetExceededError)


def test_metrics_reject_naive_times_and_negative_money() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        CostMetrics(provider="p", timestamp=datetime(2026, 1, 1))
    for bad in (Decimal(-1), Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises(ValidationError):
            CostMetrics(provider="p", cost=bad)
    with pytest.raises(ValidationError):
        CostMetrics(provider="p", prompt_tokens=-1)
    with pytest.raises(ValidationError, match="JSON"):
        CostMetrics(provider="p", metadata={"x": object()})
    assert CostMetrics(provider="p", metadata={"x": {1}}).metadata == {"x": [1]}


def test_metrics_normalise_to_utc_and_default_the_project(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROJECT_NAME", "affordabot")
    moment = datetime(2026, 1, 1, 9, tzinfo=timezone(timedelta(hours=9)))
    metrics = CostMetrics(provider="p", timestamp=moment)
    assert metrics.timestamp == datetime(2026, 1, 1, tzinfo=UTC)
    assert metrics.timestamp.tzinfo is UTC
    assert metrics.project == "affordabot"
    assert uuid.UUID(metrics.idempotency_id)
    monkeypatch.delenv("PROJECT_NAME")
    assert CostMetrics(provider="p").project == "default"


def test_from_record_reads_any_record_shape() -> None:
    user = uuid.uuid4()
    record = Record("id-1", cost=Decimal("0.5"), metadata={"user_id": str(user), "attempt": 1})
    metrics = CostMetrics.from_record(record, project="x")
    assert (metrics.idempotency_id, metrics.cost, metrics.project) == ("id-1", Decimal("0.5"), "x")
    assert (metrics.user_id, metrics.reasoning_tokens, metrics.latency_ms) == (user, 1, 12.5)
    with pytest.raises(InvalidRecordError):
        CostMetrics.from_record(Record("id-2", cost=Decimal(-1)))
    with pytest.raises(InvalidRecordError):
        CostMetrics.from_record(object())  # type: ignore[arg-type]


def test_tracker_rejects_bad_configuration(tmp_path: Path) -> None:
    store = LocalCostStore(tmp_path)
    with pytest.raises(InvalidRecordError):
        CostTracker(store, daily_budget=1.5)  # type: ignore[arg-type]  # float money
    with pytest.raises(InvalidRecordError):
        CostTracker(store, monthly_budget="-1")
    with pytest.raises(InvalidRecordError):
        CostTracker(store, alert_threshold="1.5")
    with pytest.raises(InvalidRecordError, match="time zone"):
        CostTracker(store, tz="Nowhere/Special")


async def test_bad_estimates_are_refused_with_typed_errors(tmp_path: Path) -> None:
    async with CostTracker(LocalCostStore(tmp_path), daily_budget="1") as tracker:
        with pytest.raises(InvalidRecordError):
            await tracker.reserve(estimate(Decimal(-1)))
        with pytest.raises(InvalidRecordError):
            await tracker.log_cost(Record("x"))  # type: ignore[arg-type]


def test_connection_secrets_never_show() -> None:
    pytest.importorskip("psycopg")
    from cost_tracker import PostgresCostStore

    for url in (
        "postgresql://app:hunter2@db.example.com:5432/app",
        "host=db.example.com user=app password=hunter2 dbname=app",
    ):
        store = PostgresCostStore(url)
        tracker = CostTracker(store, tz="UTC")
        assert "hunter2" not in repr(store)
        assert "hunter2" not in repr(tracker)


@pytest.mark.parametrize(("name", "module", "extra"), [
    ("PostgresCostStore", "psycopg", "postgres"),
    ("SupabaseCostStore", "supabase", "supabase"),
])  # fmt: skip
def test_a_missing_extra_names_what_to_install(name: str, module: str, extra: str) -> None:
    import subprocess
    import sys

    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "import cost_tracker\n"
        "try:\n"
        f"    cost_tracker.{name}\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert f"pip install 'cost-tracker[{extra}]'" in result.stdout
