"""Local backend: one SQLite file (WAL mode), safe across threads and processes on one machine.

Every write runs in ``BEGIN IMMEDIATE``: SQLite's single writer lock makes the
read-check-update of a budget counter atomic across processes, so reservations are exact.
Money is stored as Decimal text and summed in Python, never as a float.

Durability: ``synchronous=NORMAL`` in WAL mode (the default here) never corrupts the file and
never loses a commit when a process crashes; a power cut can lose the last commits. Pass
``synchronous="FULL"`` to fsync every commit.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar

from cost_tracker._errors import StoreError
from cost_tracker._models import BreakdownRow, CostMetrics
from cost_tracker._periods import load_zone
from cost_tracker._stores._batch import Batcher
from cost_tracker._stores._sqlite import (
    HOLDER_INDEX,
    RECORD_COLUMNS,
    SCHEMA,
    UPGRADES,
    adjust,
    corrupt_error,
    counter,
    default_local_dir,
    from_us,
    give_back,
    reclaim,
    record_from_row,
    record_params,
    save,
    us,
)
from cost_tracker._stores.base import (
    BudgetContext,
    BudgetStatus,
    GroupBy,
    ReserveOutcome,
    WriteOutcome,
)

__all__ = ["LocalCostStore", "default_local_dir"]

T = TypeVar("T")
_ZERO = Decimal(0)


class LocalCostStore:
    """Cost store in a SQLite file; the embedded default backend.

    Args:
        path: Database file, or a directory to hold ``cost-tracker.sqlite``
            (default: ``$LLM_COMMON_DIR`` or ``./.llm-common``).
        synchronous: SQLite ``synchronous`` pragma (``NORMAL`` or ``FULL``).
        busy_timeout: Seconds to wait for another process's write lock.
    """

    remote = False

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout: float = 30.0,
    ) -> None:
        target = Path(path) if path is not None else default_local_dir()
        if target.suffix not in (".sqlite", ".db", ".sqlite3"):
            target = target / "cost-tracker.sqlite"
        self.path = target
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        # One thread owns the connection: no sharing across threads, calls run in order.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cost-tracker-db")
        self._conn: sqlite3.Connection | None = None
        self._batcher: Batcher[Callable[[sqlite3.Connection], Any], Any] = Batcher(
            lambda fns: self._run(lambda conn: self._apply_batch(conn, fns))
        )

    def __repr__(self) -> str:
        return f"LocalCostStore(path={str(self.path)!r})"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
            try:
                conn.execute("pragma journal_mode=wal")
                conn.execute(f"pragma synchronous={self._synchronous}")
                conn.executescript(SCHEMA)
                for table, column, statement in UPGRADES:
                    columns = {row[1] for row in conn.execute(f"pragma table_info({table})")}
                    if column not in columns:
                        conn.execute(statement)
                conn.execute(HOLDER_INDEX)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            return fn(self._connection())

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(exc) from None

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            result: T = await self._batcher.submit(fn)
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(exc) from None
        return result

    def _corrupt(self, exc: sqlite3.DatabaseError) -> Exception:
        # A file that is not a database must not surface as a raw sqlite3 error.
        recovery = (
            "move it aside (keep it: its records may be recoverable with the sqlite3 shell's "
            "'.recover'); a new store is created in its place on the next start"
        )
        error = corrupt_error(exc, self.path, recovery)
        return error or StoreError(f"SQLite error on {self.path}: {exc}")

    def _apply_batch(
        self, conn: sqlite3.Connection, fns: list[Callable[[sqlite3.Connection], Any]]
    ) -> list[Any]:
        # One BEGIN IMMEDIATE ... COMMIT for the whole batch; a savepoint per write keeps a
        # failing write from undoing the others.
        results: list[Any] = []
        conn.execute("begin immediate")
        try:
            for fn in fns:
                conn.execute("savepoint op")
                try:
                    results.append(fn(conn))
                except Exception as exc:
                    conn.execute("rollback to op")
                    results.append(exc)
                conn.execute("release op")
            conn.execute("commit")
        except BaseException:
            if conn.in_transaction:
                conn.execute("rollback")
            raise
        return results

    # --- writes ---------------------------------------------------------------------------

    async def reserve(
        self,
        *,
        reservation_id: str,
        project: str,
        amount: Decimal,
        budget: BudgetContext,
        ttl_seconds: float,
        idempotency_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        step: str | None = None,
        holder_id: str | None = None,
    ) -> ReserveOutcome:
        """See :meth:`CostStore.reserve`."""
        now = us(datetime.now(UTC))
        expires = now + int(ttl_seconds * 1_000_000)

        def tx(conn: sqlite3.Connection) -> ReserveOutcome:
            exists = conn.execute(
                "select 1 from cost_reservations where id = ?", (reservation_id,)
            ).fetchone()
            if exists:
                return ReserveOutcome(granted=True)
            # Abandoned holds go back before the check (every caller sees the room).
            reclaim(conn, project, now)
            checks = (
                ("daily", budget.day, budget.daily_limit),
                ("monthly", budget.month, budget.monthly_limit),
            )
            counters = [counter(conn, project, kind, period) for kind, period, _ in checks]
            for (kind, period, limit), values in zip(checks, counters, strict=True):
                if limit is not None and values[1] + values[0] + amount > limit:
                    return ReserveOutcome(False, kind, period, limit, values[1], values[0])
            for (kind, period, limit), values in zip(checks, counters, strict=True):
                values[0] += amount
                if limit is not None:
                    values[2] = limit
                save(conn, project, kind, period, values)
            conn.execute(
                "insert into cost_reservations "
                "(id, idempotency_id, project, day, month, amount, expires_us, holder_id) "
                "values (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    reservation_id,
                    idempotency_id,
                    project,
                    budget.day.isoformat(),
                    budget.month.isoformat(),
                    str(amount),
                    expires,
                    holder_id,
                ),
            )
            return ReserveOutcome(granted=True)

        return await self._write(tx)

    def _close_reservation(
        self, conn: sqlite3.Connection, reservation_id: str
    ) -> tuple[str, date, date, Decimal] | None:
        row = conn.execute(
            "delete from cost_reservations where id = ? returning project, day, month, amount",
            (reservation_id,),
        ).fetchone()
        if row is None:
            return None
        return row[0], date.fromisoformat(row[1]), date.fromisoformat(row[2]), Decimal(row[3])

    async def settle(
        self, reservation_id: str | None, record: CostMetrics, budget: BudgetContext
    ) -> WriteOutcome:
        """See :meth:`CostStore.settle`."""
        params = record_params(record)

        def tx(conn: sqlite3.Connection) -> WriteOutcome:
            closed = (
                None if reservation_id is None else self._close_reservation(conn, reservation_id)
            )
            stored = (
                conn.execute(
                    f"insert or ignore into cost_tracking ({RECORD_COLUMNS}) "  # noqa: S608
                    "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    params,
                ).rowcount
                == 1
            )
            if closed is None and not stored:
                return WriteOutcome(stored=False)
            project, day, month, release = record.project, budget.day, budget.month, _ZERO
            if closed is not None:
                project, day, month, release = closed
            spend = record.cost if stored and record.cost is not None else _ZERO
            unpriced = int(stored and record.cost is None)
            alerts = [
                adjust(
                    conn,
                    project,
                    kind,
                    period,
                    release=release,
                    spend=spend,
                    unpriced=unpriced,
                    limit=limit,
                    threshold=budget.threshold,
                )
                for kind, period, limit in (
                    ("daily", day, budget.daily_limit),
                    ("monthly", month, budget.monthly_limit),
                )
            ]
            return WriteOutcome(
                stored=stored,
                released=closed is not None,
                alerts=tuple(alert for alert in alerts if alert is not None),
            )

        return await self._write(tx)

    async def release(self, reservation_id: str) -> bool:
        """See :meth:`CostStore.release`."""

        def tx(conn: sqlite3.Connection) -> bool:
            closed = self._close_reservation(conn, reservation_id)
            if closed is None:
                return False
            give_back(conn, [closed])
            return True

        return await self._write(tx)

    async def expire_reservations(self, project: str | None) -> int:
        """See :meth:`CostStore.expire_reservations`."""
        now = us(datetime.now(UTC))
        return await self._write(lambda conn: reclaim(conn, project, now))

    async def heartbeat(self, holder_id: str, stale_after: float) -> None:
        """See :meth:`CostStore.heartbeat`."""
        now = us(datetime.now(UTC))
        stale_us = int(stale_after * 1_000_000)

        def tx(conn: sqlite3.Connection) -> None:
            conn.execute(
                "insert into cost_reservation_holders values (?, ?, ?) on conflict (id) "
                "do update set heartbeat_us = excluded.heartbeat_us, "
                "stale_after_us = excluded.stale_after_us",
                (holder_id, now, stale_us),
            )
            conn.execute(
                "delete from cost_reservation_holders as h where h.id <> ? "
                "and h.heartbeat_us + h.stale_after_us < ? and not exists ("
                " select 1 from cost_reservations r where r.holder_id = h.id)",
                (holder_id, now),
            )

        await self._write(tx)

    # --- reads ----------------------------------------------------------------------------

    async def total_cost(
        self, start: datetime, end: datetime, project: str | None, *, server_only: bool = False
    ) -> Decimal:
        """See :meth:`CostStore.total_cost` (every local row is server-written)."""
        rows = await self._select(
            "select cost from cost_tracking where ts_us >= ? and ts_us < ? "
            "and (? is null or project = ?) and cost is not null",
            (us(start), us(end), project, project),
        )
        return sum((Decimal(row[0]) for row in rows), _ZERO)

    async def breakdown(
        self,
        start: datetime,
        end: datetime,
        group_by: GroupBy,
        project: str | None,
        tz: str,
        *,
        server_only: bool = False,
    ) -> list[BreakdownRow]:
        """See :meth:`CostStore.breakdown`."""
        rows = await self._select(
            "select model, step, project, ts_us, cost, success, prompt_tokens, "
            "completion_tokens, cached_prompt_tokens, reasoning_tokens from cost_tracking "
            "where ts_us >= ? and ts_us < ? and (? is null or project = ?)",
            (us(start), us(end), project, project),
        )
        zone = load_zone(tz)
        groups: dict[str | None, list[Any]] = {}
        for row in rows:
            if group_by == "day":
                key: str | None = from_us(row[3]).astimezone(zone).date().isoformat()
            else:
                key = row[("model", "step", "project").index(group_by)]
            acc = groups.setdefault(key, [_ZERO, 0, 0, 0, 0, 0, 0, 0])
            if row[4] is None:
                acc[2] += 1
            else:
                acc[0] += Decimal(row[4])
            acc[1] += 1
            acc[3] += 0 if row[5] else 1
            for offset in range(4):
                acc[4 + offset] += row[6 + offset]
        ordered = sorted(groups.items(), key=lambda item: (item[0] is None, item[0] or ""))
        return [BreakdownRow(key, *values) for key, values in ordered]

    async def records(
        self, start: datetime, end: datetime, project: str | None, *, server_only: bool = False
    ) -> list[CostMetrics]:
        """See :meth:`CostStore.records`."""
        rows = await self._select(
            f"select {RECORD_COLUMNS} from cost_tracking "  # noqa: S608
            "where ts_us >= ? and ts_us < ? and (? is null or project = ?) order by ts_us, id",
            (us(start), us(end), project, project),
        )
        return [record_from_row(row) for row in rows]

    async def budget_status(self, project: str, kind: str, period: date) -> BudgetStatus:
        """See :meth:`CostStore.budget_status`."""
        column = "day" if kind == "daily" else "month"

        def read(conn: sqlite3.Connection) -> BudgetStatus:
            row = conn.execute(
                "select reserved, spent, limit_amount, unpriced_calls from cost_budget_periods "
                "where project = ? and kind = ? and period_start = ?",
                (project, kind, period.isoformat()),
            ).fetchone()
            (open_count,) = conn.execute(
                f"select count(*) from cost_reservations where project = ? and {column} = ?",  # noqa: S608
                (project, period.isoformat()),
            ).fetchone()
            if row is None:
                return BudgetStatus(_ZERO, _ZERO, None, 0, open_count)
            limit = None if row[2] is None else Decimal(row[2])
            return BudgetStatus(Decimal(row[1]), Decimal(row[0]), limit, row[3], open_count)

        return await self._run(read)

    async def _select(self, query: str, params: tuple[Any, ...]) -> list[Any]:
        return await self._run(lambda conn: conn.execute(query, params).fetchall())

    async def aclose(self) -> None:
        """Close the SQLite connection and stop the worker thread."""
        await self._batcher.aclose()

        def close(_: sqlite3.Connection | None = None) -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)
