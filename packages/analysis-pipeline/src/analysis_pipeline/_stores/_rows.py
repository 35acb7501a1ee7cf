"""Mapping run and step records to the ``pipeline_runs`` / ``pipeline_steps`` columns in db/."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from analysis_pipeline._errors import InvalidInputError, RunInProgressError
from analysis_pipeline._records import (
    FlagChange,
    FlagState,
    RunRecord,
    ShadowArm,
    ShadowRecord,
    StepRecord,
)
from analysis_pipeline._registry import step_key

__all__ = [
    "change_from_row",
    "check_flag_change",
    "claimed_or_refused",
    "flag_from_row",
    "run_from_row",
    "run_id_range",
    "run_to_row",
    "shadow_from_row",
    "shadow_to_row",
    "step_from_row",
    "step_key",
    "step_to_row",
]


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _ts(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _ts_or_none(value: Any) -> datetime | None:
    return None if value is None else _ts(value)


def run_id_range(prefix: str) -> tuple[str, str] | None:
    """The lowest and highest run id (canonical UUID text) starting with ``prefix``.

    Dashes in ``prefix`` are optional; None when it cannot begin any UUID (not hex, too long).
    UUIDs sort like their hex text in PostgreSQL and in SQLite's text columns alike, so a prefix
    becomes one range query on every backend (PostgREST has no ``like`` on a uuid column).
    """
    digits = prefix.strip().lower().replace("-", "")
    if not digits or len(digits) > 32 or any(c not in "0123456789abcdef" for c in digits):
        return None

    def canonical(hex32: str) -> str:
        return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"

    return canonical(digits.ljust(32, "0")), canonical(digits.ljust(32, "f"))


def run_to_row(run: RunRecord) -> dict[str, Any]:
    """Columns of ``pipeline_runs`` for ``run`` (JSON-ready: money as strings)."""
    return {
        "id": run.id,
        "bill_id": run.bill_id,
        "jurisdiction": run.jurisdiction,
        "status": run.status,
        "models": run.models,
        "input_hash": run.inputs_hash,
        "inputs": run.inputs,
        "result": {"analysis": run.analysis, "review": run.review},
        "review_passed": run.review_passed,
        "review_score": run.review_score,
        "manual_quality_score": run.quality_score,
        "rounds": run.rounds,
        "total_cost": format(run.cost if run.cost is not None else Decimal(0), "f"),
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "latency_ms": run.latency_ms,
        "error": run.error,
        "started_at": run.started_at.isoformat(),
        "finished_at": None if run.completed_at is None else run.completed_at.isoformat(),
        "lease_owner": run.lease_owner,
        "heartbeat_at": None if run.heartbeat_at is None else run.heartbeat_at.isoformat(),
        "project": run.project,
    }


def run_from_row(row: dict[str, Any]) -> RunRecord:
    """Rebuild a run record from a ``pipeline_runs`` row."""
    result = row.get("result") or {}
    quality = row.get("manual_quality_score")
    score = row.get("review_score")
    return RunRecord(
        id=str(row["id"]),
        bill_id=row.get("bill_id") or "",
        jurisdiction=row.get("jurisdiction") or "",
        status=row["status"],
        models=row.get("models") or {},
        inputs_hash=row.get("input_hash") or "",
        inputs=row.get("inputs") or {},
        analysis=result.get("analysis"),
        review=result.get("review"),
        review_passed=row.get("review_passed"),
        review_score=None if score is None else float(score),
        quality_score=None if quality is None else float(quality),
        rounds=int(row.get("rounds") or 0),
        cost=_dec(row.get("total_cost")),
        prompt_tokens=int(row.get("prompt_tokens") or 0),
        completion_tokens=int(row.get("completion_tokens") or 0),
        latency_ms=float(row.get("latency_ms") or 0),
        error=row.get("error"),
        started_at=_ts(row["started_at"]),
        completed_at=_ts_or_none(row.get("finished_at")),
        lease_owner=row.get("lease_owner"),
        heartbeat_at=_ts_or_none(row.get("heartbeat_at")),
        project=row.get("project"),
    )


def step_to_row(step: StepRecord) -> dict[str, Any]:
    """Columns of ``pipeline_steps`` for ``step``."""
    return {
        "run_id": step.run_id,
        "step": step.step,
        "round": step.round,
        "model": step.model,
        "status": step.status,
        "output": step.output,
        "cost": None if step.cost is None else format(step.cost, "f"),
        "prompt_tokens": step.prompt_tokens,
        "completion_tokens": step.completion_tokens,
        "latency_ms": step.latency_ms,
        "attempts": step.attempts,
        "searches": step.searches,
        "error": step.error,
        "started_at": step.started_at.isoformat(),
        "finished_at": None if step.completed_at is None else step.completed_at.isoformat(),
    }


def step_from_row(row: dict[str, Any]) -> StepRecord:
    """Rebuild a step record from a ``pipeline_steps`` row."""
    return StepRecord(
        run_id=str(row["run_id"]),
        key=step_key(row["step"], int(row.get("round") or 0)),
        step=row["step"],
        round=int(row.get("round") or 0),
        status=row["status"],
        model=row.get("model"),
        output=row.get("output"),
        cost=_dec(row.get("cost")),
        prompt_tokens=int(row.get("prompt_tokens") or 0),
        completion_tokens=int(row.get("completion_tokens") or 0),
        latency_ms=float(row.get("latency_ms") or 0),
        attempts=int(row.get("attempts") or 0),
        searches=int(row.get("searches") or 0),
        error=row.get("error"),
        started_at=_ts(row["started_at"]),
        completed_at=_ts_or_none(row.get("finished_at")),
    )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def check_flag_change(name: str, percent: float | None, changed_by: str) -> None:
    """Refuse a flag change every backend would refuse, before touching the store.

    Raises:
        InvalidInputError: Empty name or ``changed_by``, or ``percent`` outside 0..100 (or NaN).
    """
    if not name.strip():
        raise InvalidInputError("a flag needs a name")
    if not changed_by.strip():
        raise InvalidInputError("a flag change needs who made it (changed_by)")
    if percent is not None and not 0 <= percent <= 100:  # also rejects NaN
        raise InvalidInputError(f"flag percent must be between 0 and 100, got {percent!r}")


def flag_from_row(row: dict[str, Any]) -> FlagState:
    """Rebuild a flag from a ``pipeline_flags`` row."""
    return FlagState(
        name=row["name"],
        enabled=row.get("enabled"),
        percent=float(row.get("percent") or 0),
        updated_at=_ts(row["updated_at"]),
        updated_by=row.get("updated_by") or "",
    )


def change_from_row(row: dict[str, Any]) -> FlagChange:
    """Rebuild an audited flag change from a ``pipeline_flag_changes`` row."""
    return FlagChange(
        name=row["name"],
        changed_at=_ts(row["changed_at"]),
        changed_by=row["changed_by"],
        old_enabled=row.get("old_enabled"),
        old_percent=_float_or_none(row.get("old_percent")),
        new_enabled=row.get("new_enabled"),
        new_percent=float(row["new_percent"]),
    )


_ARMS = ("new", "legacy")


def shadow_to_row(record: ShadowRecord) -> dict[str, Any]:
    """Columns of ``pipeline_shadow_runs`` for ``record`` (JSON-ready: money as strings)."""
    row: dict[str, Any] = {
        "id": record.id,
        "bill_id": record.bill_id,
        "jurisdiction": record.jurisdiction,
        "served_arm": record.served,
        "started_at": record.started_at.isoformat(),
    }
    for name in _ARMS:
        arm: ShadowArm = getattr(record, name)
        row[f"{name}_status"] = arm.status
        row[f"{name}_error"] = arm.error
        row[f"{name}_cost"] = None if arm.cost is None else format(arm.cost, "f")
        row[f"{name}_latency_ms"] = arm.latency_ms
        row[f"{name}_impacts"] = [i.model_dump(mode="json") for i in arm.impacts]
    row["new_run_id"] = record.new.run_id
    return row


def shadow_from_row(row: dict[str, Any]) -> ShadowRecord:
    """Rebuild a shadow record from a ``pipeline_shadow_runs`` row."""
    arms = {
        name: ShadowArm(
            status=row[f"{name}_status"],
            error=row.get(f"{name}_error"),
            cost=_dec(row.get(f"{name}_cost")),
            latency_ms=float(row.get(f"{name}_latency_ms") or 0),
            impacts=row.get(f"{name}_impacts") or [],
            run_id=None if row.get(f"{name}_run_id") is None else str(row[f"{name}_run_id"]),
        )
        for name in _ARMS
    }
    return ShadowRecord(
        id=str(row["id"]),
        bill_id=row["bill_id"],
        jurisdiction=row.get("jurisdiction") or "",
        served=row["served_arm"],
        started_at=_ts(row["started_at"]),
        new=arms["new"],
        legacy=arms["legacy"],
    )


async def claimed_or_refused(
    rows: list[dict[str, Any]], run_id: str, get_run: Callable[[str], Awaitable[RunRecord]]
) -> RunRecord:
    """The run ``pipeline_claim_run`` returned, or why it returned none.

    Raises:
        RunNotFoundError: No such run (from ``get_run``).
        RunInProgressError: The run exists: a live process holds its lease.
    """
    if rows:
        return run_from_row(rows[0])
    run = await get_run(run_id)
    raise RunInProgressError(run_id, run.lease_owner, run.heartbeat_at)
