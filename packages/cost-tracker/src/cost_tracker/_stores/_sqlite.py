"""SQLite schema and row conversions of the local backend."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from cost_tracker._errors import StoreCorruptError
from cost_tracker._models import BudgetAlert, CostMetrics

__all__ = [
    "HOLDER_INDEX",
    "RECORD_COLUMNS",
    "SCHEMA",
    "UPGRADES",
    "adjust",
    "corrupt_error",
    "counter",
    "default_local_dir",
    "from_us",
    "give_back",
    "reclaim",
    "record_from_row",
    "record_params",
    "save",
    "us",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO = Decimal(0)

SCHEMA = """
create table if not exists cost_tracking (
    id integer primary key,
    idempotency_id text not null unique,
    project text not null,
    provider text not null,
    model text,
    step text,
    cost text,
    prompt_tokens integer not null default 0,
    completion_tokens integer not null default 0,
    cached_prompt_tokens integer not null default 0,
    reasoning_tokens integer not null default 0,
    success integer not null default 1,
    error text,
    latency_ms real not null default 0,
    user_id text,
    metadata text not null default '{}',
    ts_us integer not null
);
create index if not exists cost_tracking_project_ts on cost_tracking (project, ts_us);
create index if not exists cost_tracking_ts on cost_tracking (ts_us);
create table if not exists cost_budget_periods (
    project text not null,
    kind text not null,
    period_start text not null,
    limit_amount text,
    reserved text not null default '0',
    spent text not null default '0',
    unpriced_calls integer not null default 0,
    primary key (project, kind, period_start)
) without rowid;
create table if not exists cost_reservations (
    id text primary key,
    idempotency_id text,
    project text not null,
    day text not null,
    month text not null,
    amount text not null,
    expires_us integer not null,
    holder_id text
) without rowid;
create index if not exists cost_reservations_expiry on cost_reservations (project, expires_us);
create table if not exists cost_reservation_holders (
    id text primary key,
    heartbeat_us integer not null,
    stale_after_us integer not null
) without rowid;
create table if not exists cost_budget_alerts (
    project text not null,
    kind text not null,
    period_start text not null,
    spent text not null,
    limit_amount text not null,
    threshold text not null,
    primary key (project, kind, period_start)
) without rowid;
"""

# Files made before reservations had holders get the column (SQLite has no ADD COLUMN IF NOT
# EXISTS; the index needs the column).
UPGRADES = (
    (
        "cost_reservations",
        "holder_id",
        "alter table cost_reservations add column holder_id text",
    ),
)
HOLDER_INDEX = (
    "create index if not exists cost_reservations_holder on cost_reservations (holder_id) "
    "where holder_id is not null"
)

RECORD_COLUMNS = (
    "idempotency_id, project, provider, model, step, cost, prompt_tokens, completion_tokens, "
    "cached_prompt_tokens, reasoning_tokens, success, error, latency_ms, user_id, metadata, ts_us"
)


def default_local_dir() -> Path:
    """``$LLM_COMMON_DIR`` or ``.llm-common`` under the current directory."""
    return Path(os.environ.get("LLM_COMMON_DIR") or ".llm-common")


def us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def record_params(record: CostMetrics) -> tuple[Any, ...]:
    return (
        record.idempotency_id,
        record.project,
        record.provider,
        record.model,
        record.step,
        None if record.cost is None else str(record.cost),
        record.prompt_tokens,
        record.completion_tokens,
        record.cached_prompt_tokens,
        record.reasoning_tokens,
        int(record.success),
        record.error,
        record.latency_ms,
        None if record.user_id is None else str(record.user_id),
        json.dumps(record.metadata, default=str),
        us(record.timestamp),
    )


def record_from_row(row: Any) -> CostMetrics:
    return CostMetrics(
        idempotency_id=row[0],
        project=row[1],
        provider=row[2],
        model=row[3],
        step=row[4],
        cost=None if row[5] is None else Decimal(row[5]),
        prompt_tokens=row[6],
        completion_tokens=row[7],
        cached_prompt_tokens=row[8],
        reasoning_tokens=row[9],
        success=bool(row[10]),
        error=row[11],
        latency_ms=row[12],
        user_id=row[13],
        metadata=json.loads(row[14]),
        timestamp=from_us(row[15]),
    )


def counter(conn: sqlite3.Connection, project: str, kind: str, period: date) -> list[Any]:
    row = conn.execute(
        "select reserved, spent, limit_amount, unpriced_calls from cost_budget_periods "
        "where project = ? and kind = ? and period_start = ?",
        (project, kind, period.isoformat()),
    ).fetchone()
    if row is None:
        conn.execute(
            "insert into cost_budget_periods (project, kind, period_start) values (?, ?, ?)",
            (project, kind, period.isoformat()),
        )
        return [_ZERO, _ZERO, None, 0]
    return [Decimal(row[0]), Decimal(row[1]), row[2], row[3]]


def save(
    conn: sqlite3.Connection, project: str, kind: str, period: date, values: list[Any]
) -> None:
    conn.execute(
        "update cost_budget_periods set reserved = ?, spent = ?, limit_amount = ?, "
        "unpriced_calls = ? where project = ? and kind = ? and period_start = ?",
        (
            str(values[0]),
            str(values[1]),
            None if values[2] is None else str(values[2]),
            values[3],
            project,
            kind,
            period.isoformat(),
        ),
    )


def adjust(
    conn: sqlite3.Connection,
    project: str,
    kind: str,
    period: date,
    *,
    release: Decimal,
    spend: Decimal,
    unpriced: int,
    limit: Decimal | None,
    threshold: Decimal | None,
) -> BudgetAlert | None:
    values = counter(conn, project, kind, period)
    values[0] -= release
    values[1] += spend
    values[3] += unpriced
    if values[2] is None and limit is not None:
        values[2] = limit
    save(conn, project, kind, period, values)
    spent: Decimal = values[1]
    if limit is None or threshold is None or spent < limit * threshold:
        return None
    cursor = conn.execute(
        "insert or ignore into cost_budget_alerts values (?, ?, ?, ?, ?, ?)",
        (project, kind, period.isoformat(), str(spent), str(limit), str(threshold)),
    )
    if cursor.rowcount != 1:
        return None
    return BudgetAlert(project, kind, period, spent, limit, threshold)


def give_back(conn: sqlite3.Connection, closed: Iterable[tuple[str, date, date, Decimal]]) -> None:
    for project, day, month, amount in closed:
        for kind, period in (("daily", day), ("monthly", month)):
            adjust(
                conn,
                project,
                kind,
                period,
                release=amount,
                spend=_ZERO,
                unpriced=0,
                limit=None,
                threshold=None,
            )


def reclaim(conn: sqlite3.Connection, project: str | None, now_us: int) -> int:
    """Give back the reservations past their expiry or whose holder stopped beating."""
    rows = conn.execute(
        "delete from cost_reservations where (? is null or project = ?) and ("
        " expires_us <= ? or holder_id in ("
        "  select id from cost_reservation_holders where heartbeat_us + stale_after_us < ?))"
        " returning project, day, month, amount",
        (project, project, now_us, now_us),
    ).fetchall()
    give_back(
        conn,
        [(r[0], date.fromisoformat(r[1]), date.fromisoformat(r[2]), Decimal(r[3])) for r in rows],
    )
    return len(rows)


def corrupt_error(exc: BaseException, path: Path, recovery: str) -> StoreCorruptError | None:
    """A StoreCorruptError naming ``path`` if ``exc`` says the file is no SQLite database."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if not isinstance(exc, sqlite3.DatabaseError) or not (
        name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "file is not a database" in str(exc)
    ):
        return None
    return StoreCorruptError(
        str(path), f"{path} is not a valid SQLite database ({name or exc}): {recovery}"
    )
