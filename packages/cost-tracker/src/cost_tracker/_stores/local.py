"""Local backend: one SQLite file (WAL mode) through aiosqlite, safe across processes.

Every write runs in ``BEGIN IMMEDIATE``: SQLite's single writer lock makes the
read-check-update of a budget counter atomic across processes, so reservations are exact.
Concurrent writes of one store share a transaction (group commit, see ``_batch``); reads use a
second connection and see committed data only. Money is stored as Decimal text and added by a
Decimal SQL function registered on the connection, never as a float.

Durability: ``synchronous=NORMAL`` in WAL mode (the default here) never corrupts the file and
never loses a commit when a process crashes; a power cut can lose the last commits. Pass
``synchronous="FULL"`` to fsync every commit.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiosqlite

from cost_tracker._errors import StoreCorruptError, StoreError
from cost_tracker._models import BreakdownRow, BudgetAlert, CostMetrics
from cost_tracker._periods import load_zone
from cost_tracker._stores._batch import Batcher
from cost_tracker._stores._protocol import (
    BudgetContext,
    BudgetStatus,
    GroupBy,
    ReserveOutcome,
    WriteOutcome,
)

__all__ = ["LocalCostStore", "corrupt_error", "default_local_dir"]

T = TypeVar("T")
Op = Callable[[aiosqlite.Connection], Awaitable[Any]]

_ZERO = Decimal(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_SCHEMA = """
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
# EXISTS, and the index needs the column).
_UPGRADES = (
    ("cost_reservations", "holder_id", "alter table cost_reservations add column holder_id text"),
)
_HOLDER_INDEX = (
    "create index if not exists cost_reservations_holder on cost_reservations (holder_id) "
    "where holder_id is not null"
)

_RECORD_COLUMNS = (
    "idempotency_id, project, provider, model, step, cost, prompt_tokens, completion_tokens, "
    "cached_prompt_tokens, reasoning_tokens, success, error, latency_ms, user_id, metadata, ts_us"
)

# One statement moves both counters of a write: new rows start from the deltas, existing rows
# add them with Decimal arithmetic (dec_add), and the first known limit sticks.
_ADJUST = (
    "insert into cost_budget_periods "
    "(project, kind, period_start, limit_amount, reserved, spent, unpriced_calls) "
    "values (?, ?, ?, ?, ?, ?, ?) on conflict (project, kind, period_start) do update set "
    "reserved = dec_add(reserved, excluded.reserved), spent = dec_add(spent, excluded.spent), "
    "unpriced_calls = unpriced_calls + excluded.unpriced_calls, "
    "limit_amount = coalesce(limit_amount, excluded.limit_amount)"
)

# A reservation holds on both counters; a new limit replaces the recorded one.
_HOLD = (
    "insert into cost_budget_periods "
    "(project, kind, period_start, limit_amount, reserved, spent, unpriced_calls) "
    "values (?, ?, ?, ?, ?, ?, ?) on conflict (project, kind, period_start) do update set "
    "reserved = dec_add(reserved, excluded.reserved), "
    "limit_amount = coalesce(excluded.limit_amount, limit_amount)"
)

_RECLAIM = (
    "delete from cost_reservations where (? is null or project = ?) and ("
    " expires_us <= ? or holder_id in ("
    "  select id from cost_reservation_holders where heartbeat_us + stale_after_us < ?))"
    " returning project, day, month, amount"
)


def default_local_dir() -> Path:
    """``$LLM_COMMON_DIR`` or ``.llm-common`` under the current directory."""
    return Path(os.environ.get("LLM_COMMON_DIR") or ".llm-common")


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


def _us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _dec_add(left: str | None, right: str | None) -> str:
    return str(Decimal(left or 0) + Decimal(right or 0))


def _text(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount)


def _record_params(record: CostMetrics) -> tuple[Any, ...]:
    return (
        record.idempotency_id,
        record.project,
        record.provider,
        record.model,
        record.step,
        _text(record.cost),
        record.prompt_tokens,
        record.completion_tokens,
        record.cached_prompt_tokens,
        record.reasoning_tokens,
        int(record.success),
        record.error,
        record.latency_ms,
        None if record.user_id is None else str(record.user_id),
        json.dumps(record.metadata, default=str),
        _us(record.timestamp),
    )


def _record_from_row(row: Sequence[Any]) -> CostMetrics:
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
        timestamp=_from_us(row[15]),
    )


def _closed(rows: Iterable[Sequence[Any]]) -> list[tuple[str, date, date, Decimal]]:
    return [(r[0], date.fromisoformat(r[1]), date.fromisoformat(r[2]), Decimal(r[3])) for r in rows]


async def _give_back(
    conn: aiosqlite.Connection, closed: list[tuple[str, date, date, Decimal]]
) -> None:
    if closed:
        await conn.executemany(
            _ADJUST,
            [
                (project, kind, period.isoformat(), None, str(-amount), "0", 0)
                for project, day, month, amount in closed
                for kind, period in (("daily", day), ("monthly", month))
            ],
        )


async def _reclaim(conn: aiosqlite.Connection, project: str | None, now_us: int) -> int:
    rows = list(await conn.execute_fetchall(_RECLAIM, (project, project, now_us, now_us)))
    await _give_back(conn, _closed(rows))
    return len(rows)


class LocalCostStore:
    """Cost store in a SQLite file; the embedded default backend.

    Args:
        path: Database file, or a directory to hold ``cost-tracker.sqlite``
            (default: ``$LLM_COMMON_DIR``, else ``./.llm-common``).
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
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._open_lock = asyncio.Lock()
        self._batcher: Batcher[Op, Any] = Batcher(self._run_batch)

    def __repr__(self) -> str:
        return f"LocalCostStore(path={str(self.path)!r})"

    # --- connections ----------------------------------------------------------------------

    async def _connections(self) -> tuple[aiosqlite.Connection, aiosqlite.Connection]:
        if self._writer is None or self._reader is None:
            async with self._open_lock:
                if self._writer is None:
                    self._writer = await self._open(create=True)
                if self._reader is None:
                    self._reader = await self._open(create=False)
        return self._writer, self._reader

    async def _open(self, *, create: bool) -> aiosqlite.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
        try:
            await conn.execute("pragma journal_mode=wal")
            await conn.execute(f"pragma synchronous={self._synchronous}")
            if create:
                await conn.executescript(_SCHEMA)
                for table, column, statement in _UPGRADES:
                    columns = {
                        row[1] for row in await conn.execute_fetchall(f"pragma table_info({table})")
                    }
                    if column not in columns:
                        await conn.execute(statement)
                await conn.execute(_HOLDER_INDEX)
            await conn.create_function("dec_add", 2, _dec_add, deterministic=True)
        except BaseException:
            await conn.close()
            raise
        return conn

    def _translate(self, exc: sqlite3.Error) -> StoreError:
        # A file that is not a database must not surface as a raw sqlite3 error.
        recovery = (
            "move it aside (keep it: its records may be recoverable with the sqlite3 shell's "
            "'.recover'); a new store is created in its place on the next start"
        )
        error = corrupt_error(exc, self.path, recovery)
        return error or StoreError(f"SQLite error on {self.path}: {exc}")

    async def _write(self, op: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        try:
            result: T = await self._batcher.submit(op)
        except sqlite3.Error as exc:
            raise self._translate(exc) from None
        return result

    async def _read(self, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        try:
            _, reader = await self._connections()
            return list(await reader.execute_fetchall(query, params))
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    async def _run_batch(self, ops: list[Op]) -> Sequence[Any]:
        writer, _ = await self._connections()
        try:
            return await self._transaction(writer, ops)
        except Exception:
            if len(ops) == 1:
                raise
        # One failing write must not fail the others: one transaction each instead.
        results: list[Any] = []
        for op in ops:
            try:
                results.extend(await self._transaction(writer, [op]))
            except Exception as exc:
                results.append(exc)
        return results

    @staticmethod
    async def _transaction(conn: aiosqlite.Connection, ops: list[Op]) -> list[Any]:
        await conn.execute("begin immediate")
        try:
            results = [await op(conn) for op in ops]
            await conn.execute("commit")
        except BaseException:
            if conn.in_transaction:
                await conn.execute("rollback")
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
        now = _us(datetime.now(UTC))
        expires = now + int(ttl_seconds * 1_000_000)
        checks = (
            ("daily", budget.day, budget.daily_limit),
            ("monthly", budget.month, budget.monthly_limit),
        )

        async def tx(conn: aiosqlite.Connection) -> ReserveOutcome:
            if await conn.execute_fetchall(
                "select 1 from cost_reservations where id = ?", (reservation_id,)
            ):
                return ReserveOutcome(granted=True)
            # Abandoned holds go back before the check (every caller sees the room).
            await _reclaim(conn, project, now)
            rows = await conn.execute_fetchall(
                "select kind, reserved, spent from cost_budget_periods where project = ? "
                "and ((kind = 'daily' and period_start = ?) "
                "or (kind = 'monthly' and period_start = ?))",
                (project, budget.day.isoformat(), budget.month.isoformat()),
            )
            held = {row[0]: (Decimal(row[1]), Decimal(row[2])) for row in rows}
            for kind, period, limit in checks:
                reserved, spent = held.get(kind, (_ZERO, _ZERO))
                if limit is not None and spent + reserved + amount > limit:
                    return ReserveOutcome(False, kind, period, limit, spent, reserved)
            await conn.executemany(
                _HOLD,
                [
                    (project, kind, period.isoformat(), _text(limit), str(amount), "0", 0)
                    for kind, period, limit in checks
                ],
            )
            await conn.execute(
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

    async def settle(
        self, reservation_id: str | None, record: CostMetrics, budget: BudgetContext
    ) -> WriteOutcome:
        """See :meth:`CostStore.settle`."""
        params = _record_params(record)

        async def tx(conn: aiosqlite.Connection) -> WriteOutcome:
            closed = None
            if reservation_id is not None:
                gone = _closed(
                    await conn.execute_fetchall(
                        "delete from cost_reservations where id = ? "
                        "returning project, day, month, amount",
                        (reservation_id,),
                    )
                )
                closed = gone[0] if gone else None
            stored = bool(
                await conn.execute_fetchall(
                    f"insert or ignore into cost_tracking ({_RECORD_COLUMNS}) "  # noqa: S608
                    "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) returning id",
                    params,
                )
            )
            if closed is None and not stored:
                return WriteOutcome(stored=False)
            project, day, month, release = record.project, budget.day, budget.month, _ZERO
            if closed is not None:
                project, day, month, release = closed
            spend = record.cost if stored and record.cost is not None else _ZERO
            unpriced = int(stored and record.cost is None)
            kinds = (("daily", day, budget.daily_limit), ("monthly", month, budget.monthly_limit))
            alerts = []
            for kind, period, limit in kinds:
                [(spent,)] = await conn.execute_fetchall(
                    f"{_ADJUST} returning spent",
                    (
                        project,
                        kind,
                        period.isoformat(),
                        _text(limit),
                        str(-release),
                        str(spend),
                        unpriced,
                    ),
                )
                alert = await _alert(conn, project, kind, period, Decimal(spent), limit, budget)
                if alert is not None:
                    alerts.append(alert)
            return WriteOutcome(stored=stored, released=closed is not None, alerts=tuple(alerts))

        return await self._write(tx)

    async def release(self, reservation_id: str) -> bool:
        """See :meth:`CostStore.release`."""

        async def tx(conn: aiosqlite.Connection) -> bool:
            closed = _closed(
                await conn.execute_fetchall(
                    "delete from cost_reservations where id = ? "
                    "returning project, day, month, amount",
                    (reservation_id,),
                )
            )
            await _give_back(conn, closed)
            return bool(closed)

        return await self._write(tx)

    async def expire_reservations(self, project: str | None) -> int:
        """See :meth:`CostStore.expire_reservations`."""
        now = _us(datetime.now(UTC))
        return await self._write(lambda conn: _reclaim(conn, project, now))

    async def heartbeat(self, holder_id: str, stale_after: float) -> None:
        """See :meth:`CostStore.heartbeat`."""
        now = _us(datetime.now(UTC))
        stale_us = int(stale_after * 1_000_000)

        async def tx(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "insert into cost_reservation_holders values (?, ?, ?) on conflict (id) "
                "do update set heartbeat_us = excluded.heartbeat_us, "
                "stale_after_us = excluded.stale_after_us",
                (holder_id, now, stale_us),
            )
            await conn.execute(
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
        rows = await self._read(
            "select cost from cost_tracking where ts_us >= ? and ts_us < ? "
            "and (? is null or project = ?) and cost is not null",
            (_us(start), _us(end), project, project),
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
        rows = await self._read(
            "select model, step, project, ts_us, cost, success, prompt_tokens, "
            "completion_tokens, cached_prompt_tokens, reasoning_tokens from cost_tracking "
            "where ts_us >= ? and ts_us < ? and (? is null or project = ?)",
            (_us(start), _us(end), project, project),
        )
        zone = load_zone(tz)
        groups: dict[str | None, list[Any]] = {}
        for row in rows:
            if group_by == "day":
                key: str | None = _from_us(row[3]).astimezone(zone).date().isoformat()
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
        rows = await self._read(
            f"select {_RECORD_COLUMNS} from cost_tracking "  # noqa: S608
            "where ts_us >= ? and ts_us < ? and (? is null or project = ?) order by ts_us, id",
            (_us(start), _us(end), project, project),
        )
        return [_record_from_row(row) for row in rows]

    async def budget_status(self, project: str, kind: str, period: date) -> BudgetStatus:
        """See :meth:`CostStore.budget_status`."""
        column = "day" if kind == "daily" else "month"
        # One statement: one snapshot of the counters and the open reservations.
        [row] = await self._read(
            "select b.reserved, b.spent, b.limit_amount, b.unpriced_calls, "  # noqa: S608
            f" (select count(*) from cost_reservations where project = ? and {column} = ?) "
            "from (select 1) left join cost_budget_periods b "
            " on b.project = ? and b.kind = ? and b.period_start = ?",
            (project, period.isoformat(), project, kind, period.isoformat()),
        )
        if row[0] is None:
            return BudgetStatus(_ZERO, _ZERO, None, 0, row[4])
        limit = None if row[2] is None else Decimal(row[2])
        return BudgetStatus(Decimal(row[1]), Decimal(row[0]), limit, row[3], row[4])

    async def aclose(self) -> None:
        """Finish the writes in flight and close both connections (their threads end)."""
        await self._batcher.aclose()
        async with self._open_lock:
            for conn in (self._writer, self._reader):
                if conn is not None:
                    await conn.close()
            self._writer = self._reader = None


async def _alert(
    conn: aiosqlite.Connection,
    project: str,
    kind: str,
    period: date,
    spent: Decimal,
    limit: Decimal | None,
    budget: BudgetContext,
) -> BudgetAlert | None:
    threshold = budget.threshold
    if limit is None or threshold is None or spent < limit * threshold:
        return None
    won = await conn.execute_fetchall(
        "insert or ignore into cost_budget_alerts values (?, ?, ?, ?, ?, ?) returning 1",
        (project, kind, period.isoformat(), str(spent), str(limit), str(threshold)),
    )
    # Only the writer that inserts the period's alert row fires it, across processes.
    return BudgetAlert(project, kind, period, spent, limit, threshold) if won else None
