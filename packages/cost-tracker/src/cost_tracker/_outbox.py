"""The durable outbox: writes that could not reach the database wait here, on local disk.

Each entry is one store operation (settle, log or release) with everything needed to replay
it. Replays are safe to repeat: records carry idempotency ids and the SQL functions store each
id once and close each reservation once, so delivery is exactly once even when a write reached
the database but its answer was lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiosqlite

from cost_tracker._errors import StoreError
from cost_tracker._models import CostMetrics
from cost_tracker._stores._protocol import BudgetContext
from cost_tracker._stores.local import corrupt_error

T = TypeVar("T")

__all__ = ["Outbox", "OutboxEntry", "default_outbox_path"]

Op = Literal["settle", "release"]


def default_outbox_path() -> Path:
    """``$COST_TRACKER_OUTBOX`` or ``<$LLM_COMMON_DIR or .llm-common>/cost-outbox.sqlite``."""
    explicit = os.environ.get("COST_TRACKER_OUTBOX")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("LLM_COMMON_DIR") or ".llm-common") / "cost-outbox.sqlite"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One pending operation.

    Attributes:
        seq: Position in the outbox (replayed in order).
        op: ``settle`` (a record, with or without a reservation) or ``release``.
        reservation_id: Reservation to close, or None for a plain log.
        record: The record to store (None for a release).
        budget: Periods and limits the record counts against.
    """

    seq: int
    op: Op
    reservation_id: str | None
    record: CostMetrics | None
    budget: BudgetContext


def _budget_to_json(budget: BudgetContext) -> dict[str, Any]:
    return {
        "day": budget.day.isoformat(),
        "month": budget.month.isoformat(),
        "daily_limit": None if budget.daily_limit is None else str(budget.daily_limit),
        "monthly_limit": None if budget.monthly_limit is None else str(budget.monthly_limit),
        "threshold": None if budget.threshold is None else str(budget.threshold),
    }


def _budget_from_json(data: dict[str, Any]) -> BudgetContext:
    def money(value: str | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    return BudgetContext(
        day=date.fromisoformat(data["day"]),
        month=date.fromisoformat(data["month"]),
        daily_limit=money(data["daily_limit"]),
        monthly_limit=money(data["monthly_limit"]),
        threshold=money(data["threshold"]),
    )


class Outbox:
    """A SQLite-backed queue of store operations, shared safely by processes on one machine.

    Args:
        path: The outbox file (created with its directory on first write).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_outbox_path()
        # One connection per outbox (aiosqlite runs its statements in order on one thread):
        # a connection per write made concurrent writers race on the WAL set-up.
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Outbox(path={str(self.path)!r})"

    async def _use(self, fn: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run ``fn`` on the outbox's connection (opened on first use)."""
        try:
            if self._conn is None:
                async with self._lock:
                    if self._conn is None:
                        self._conn = await self._connect()
            return await fn(self._conn)
        except sqlite3.Error as exc:
            recovery = (
                "move it aside and keep it (it may hold costs not yet delivered; the sqlite3 "
                "shell's '.recover' can read them); a new outbox is created on the next start"
            )
            raise (
                corrupt_error(exc, self.path, recovery)
                or StoreError(f"SQLite error on the outbox {self.path}: {exc}")
            ) from None

    async def aclose(self) -> None:
        """Close the outbox's connection (it reopens on the next use)."""
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                await conn.close()

    async def _connect(self) -> aiosqlite.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            # FULL: an outboxed record is the only copy of money spent; it must survive
            # power loss.
            await conn.execute("pragma journal_mode=wal")
            await conn.execute("pragma synchronous=FULL")
            await conn.execute(
                "create table if not exists outbox ("
                " seq integer primary key autoincrement,"
                " op text not null,"
                " key text not null unique,"
                " reservation_id text,"
                " record text,"
                " budget text not null,"
                " attempts integer not null default 0,"
                " last_error text)"
            )
        except BaseException:
            await conn.close()
            raise
        return conn

    async def add(
        self,
        op: Op,
        reservation_id: str | None,
        record: CostMetrics | None,
        budget: BudgetContext,
    ) -> None:
        """Append one operation (a duplicate of a pending one is ignored)."""
        key = f"{op}:{reservation_id or ''}:{record.idempotency_id if record else ''}"
        payload = None if record is None else record.model_dump_json()
        budget_json = json.dumps(_budget_to_json(budget))
        await self._use(
            lambda conn: conn.execute(
                "insert or ignore into outbox (op, key, reservation_id, record, budget) "
                "values (?, ?, ?, ?, ?)",
                (op, key, reservation_id, payload, budget_json),
            )
        )

    async def pending(self, limit: int = 10_000) -> list[OutboxEntry]:
        """Entries waiting for delivery, oldest first."""
        if not self.path.exists():
            return []
        rows = await self._use(
            lambda conn: conn.execute_fetchall(
                "select seq, op, reservation_id, record, budget from outbox order by seq limit ?",
                (limit,),
            )
        )
        return [
            OutboxEntry(
                seq=row[0],
                op=row[1],
                reservation_id=row[2],
                record=None if row[3] is None else CostMetrics.model_validate_json(row[3]),
                budget=_budget_from_json(json.loads(row[4])),
            )
            for row in rows
        ]

    async def remove(self, seqs: list[int]) -> None:
        """Delete delivered entries."""
        if seqs:
            await self._use(
                lambda conn: conn.executemany(
                    "delete from outbox where seq = ?", [(seq,) for seq in seqs]
                )
            )

    async def note_failure(self, seq: int, error: str) -> None:
        """Record a non-retryable failure on an entry (it stays for inspection and retry)."""
        await self._use(
            lambda conn: conn.execute(
                "update outbox set attempts = attempts + 1, last_error = ? where seq = ?",
                (error[:500], seq),
            )
        )

    async def count(self) -> int:
        """Number of pending entries."""
        if not self.path.exists():
            return 0
        [(value,)] = await self._use(
            lambda conn: conn.execute_fetchall("select count(*) from outbox")
        )
        return int(value)
