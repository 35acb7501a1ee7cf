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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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


# --- group commit: a batch of writes is planned in Python, applied in a few statements ---------
#
# SQLite serialises writers (BEGIN IMMEDIATE), so inside the transaction the batch can read the
# counters it touches once, apply its writes in order in Python (each with its own outcome,
# exactly as if they ran one by one) and write the results back: a handful of statements per
# batch instead of several per write (each statement is a hop to aiosqlite's thread).


@dataclass(frozen=True, slots=True)
class _Reserve:
    id: str
    project: str
    amount: Decimal
    budget: BudgetContext
    expires_us: int
    idempotency_id: str | None
    holder_id: str | None


@dataclass(frozen=True, slots=True)
class _Settle:
    reservation_id: str | None
    record: CostMetrics
    budget: BudgetContext


@dataclass(frozen=True, slots=True)
class _Release:
    reservation_id: str


@dataclass(frozen=True, slots=True)
class _Reclaim:
    project: str | None


@dataclass(frozen=True, slots=True)
class _Heartbeat:
    holder_id: str
    stale_us: int


_Write = _Reserve | _Settle | _Release | _Reclaim | _Heartbeat
_Key = tuple[str, str, str]  # project, kind, period_start
_Closed = tuple[str, date, date, Decimal]  # project, day, month, amount


@dataclass(slots=True)
class _Counter:
    reserved: Decimal = _ZERO
    spent: Decimal = _ZERO
    limit: Decimal | None = None
    unpriced: int = 0


def _marks(count: int, width: int = 1) -> str:
    row = "(" + ", ".join("?" * width) + ")" if width > 1 else "?"
    return ", ".join([row] * count)


def _closed(rows: Iterable[Sequence[Any]]) -> dict[str, _Closed]:
    return {
        r[0]: (r[1], date.fromisoformat(r[2]), date.fromisoformat(r[3]), Decimal(r[4]))
        for r in rows
    }


def _periods(project: str, day: date, month: date) -> list[tuple[_Key, str, date]]:
    return [
        ((project, "daily", day.isoformat()), "daily", day),
        ((project, "monthly", month.isoformat()), "monthly", month),
    ]


class _Batch:
    """One transaction's worth of writes, applied in order with their own outcomes."""

    def __init__(self, conn: aiosqlite.Connection, writes: list[_Write], now_us: int) -> None:
        self.conn = conn
        self.writes = writes
        self.now = now_us
        self.counters: dict[_Key, _Counter] = {}
        self.dirty: set[_Key] = set()

    async def run(self) -> list[Any]:
        await self._heartbeats()
        reclaimed = await self._reclaim()
        closed = await self._close_reservations()
        existing = await self._existing_reservations()
        stored = await self._insert_records()
        await self._load_counters(reclaimed, closed)
        for gone in (item for items in reclaimed.values() for item in items):
            self._move(gone, release=gone[3])
        results: list[Any] = []
        new_reservations: list[tuple[Any, ...]] = []
        alerts: dict[_Key, tuple[int, BudgetAlert]] = {}
        reclaim_counts = {project: len(gone) for project, gone in reclaimed.items()}
        for index, write in enumerate(self.writes):
            if isinstance(write, _Reserve):
                results.append(self._reserve(write, write.id in existing, new_reservations))
                existing.add(write.id)
            elif isinstance(write, _Settle):
                results.append(self._settle(write, index, closed, stored, alerts))
            elif isinstance(write, _Release):
                results.append(self._release(write, closed))
            elif isinstance(write, _Reclaim):
                scope = write.project
                results.append(
                    sum(reclaim_counts.values()) if scope is None else reclaim_counts.get(scope, 0)
                )
            else:
                results.append(None)
        await self._write_back(new_reservations)
        won = await self._insert_alerts([alert for _, alert in alerts.values()])
        for key, (index, alert) in alerts.items():
            if key in won:
                outcome = results[index]
                results[index] = WriteOutcome(
                    outcome.stored, outcome.released, (*outcome.alerts, alert)
                )
        return results

    # --- reads and bulk statements -------------------------------------------------------

    async def _heartbeats(self) -> None:
        beats = [w for w in self.writes if isinstance(w, _Heartbeat)]
        if not beats:
            return
        await self.conn.executemany(
            "insert into cost_reservation_holders values (?, ?, ?) on conflict (id) "
            "do update set heartbeat_us = excluded.heartbeat_us, "
            "stale_after_us = excluded.stale_after_us",
            [(beat.holder_id, self.now, beat.stale_us) for beat in beats],
        )
        await self.conn.execute(
            "delete from cost_reservation_holders as h "
            "where h.heartbeat_us + h.stale_after_us < ? and not exists ("
            " select 1 from cost_reservations r where r.holder_id = h.id)",
            (self.now,),
        )

    async def _reclaim(self) -> dict[str, list[_Closed]]:
        # Abandoned holds (expired, or their holder stopped beating) go back before any check.
        scopes = {w.project for w in self.writes if isinstance(w, _Reserve | _Reclaim)}
        if not scopes:
            return {}
        every = None in scopes
        projects = sorted(p for p in scopes if p is not None)
        where = "1" if every else f"project in ({_marks(len(projects))})"
        rows = await self.conn.execute_fetchall(
            f"delete from cost_reservations where {where} and ("  # noqa: S608
            " expires_us <= ? or holder_id in ("
            "  select id from cost_reservation_holders where heartbeat_us + stale_after_us < ?))"
            " returning id, project, day, month, amount",
            (*([] if every else projects), self.now, self.now),
        )
        by_project: dict[str, list[_Closed]] = {}
        for gone in _closed(rows).values():
            by_project.setdefault(gone[0], []).append(gone)
        return by_project

    async def _close_reservations(self) -> dict[str, _Closed]:
        ids = sorted(
            {
                w.reservation_id
                for w in self.writes
                if isinstance(w, _Settle | _Release) and w.reservation_id is not None
            }
        )
        if not ids:
            return {}
        rows = await self.conn.execute_fetchall(
            f"delete from cost_reservations where id in ({_marks(len(ids))}) "  # noqa: S608
            "returning id, project, day, month, amount",
            ids,
        )
        return _closed(rows)

    async def _existing_reservations(self) -> set[str]:
        ids = [w.id for w in self.writes if isinstance(w, _Reserve)]
        if not ids:
            return set()
        rows = await self.conn.execute_fetchall(
            f"select id from cost_reservations where id in ({_marks(len(ids))})",  # noqa: S608
            ids,
        )
        return {row[0] for row in rows}

    async def _insert_records(self) -> set[str]:
        records = [w.record for w in self.writes if isinstance(w, _Settle)]
        if not records:
            return set()
        params = [value for record in records for value in _record_params(record)]
        width = len(_record_params(records[0]))
        rows = await self.conn.execute_fetchall(
            f"insert or ignore into cost_tracking ({_RECORD_COLUMNS}) "  # noqa: S608
            f"values {_marks(len(records), width)} returning idempotency_id",
            params,
        )
        return {row[0] for row in rows}

    async def _load_counters(
        self, reclaimed: dict[str, list[_Closed]], closed: dict[str, _Closed]
    ) -> None:
        gone = [item for items in reclaimed.values() for item in items] + list(closed.values())
        touched = [(project, day, month) for project, day, month, _ in gone]
        for write in self.writes:
            if isinstance(write, _Reserve):
                touched.append((write.project, write.budget.day, write.budget.month))
            elif isinstance(write, _Settle):
                touched.append((write.record.project, write.budget.day, write.budget.month))
        keys = {
            key for project, day, month in touched for key, _, _ in _periods(project, day, month)
        }
        if not keys:
            return
        ordered = sorted(keys)
        rows = await self.conn.execute_fetchall(
            "select project, kind, period_start, reserved, spent, limit_amount, unpriced_calls "  # noqa: S608
            "from cost_budget_periods where (project, kind, period_start) in "
            f"(values {_marks(len(ordered), 3)})",
            [value for key in ordered for value in key],
        )
        for row in rows:
            limit = None if row[5] is None else Decimal(row[5])
            self.counters[(row[0], row[1], row[2])] = _Counter(
                Decimal(row[3]), Decimal(row[4]), limit, row[6]
            )

    def _counter(self, key: _Key) -> _Counter:
        self.dirty.add(key)
        return self.counters.setdefault(key, _Counter())

    def _move(self, closed: _Closed, *, release: Decimal) -> None:
        project, day, month, _ = closed
        for key, _, _ in _periods(project, day, month):
            self._counter(key).reserved -= release

    # --- the writes, in order ------------------------------------------------------------

    def _reserve(self, w: _Reserve, exists: bool, out: list[tuple[Any, ...]]) -> ReserveOutcome:
        if exists:
            return ReserveOutcome(granted=True)
        limits = (w.budget.daily_limit, w.budget.monthly_limit)
        periods = _periods(w.project, w.budget.day, w.budget.month)
        for (key, kind, period), limit in zip(periods, limits, strict=True):
            current = self.counters.get(key, _Counter())
            if limit is not None and current.spent + current.reserved + w.amount > limit:
                return ReserveOutcome(False, kind, period, limit, current.spent, current.reserved)
        for (key, _, _), limit in zip(periods, limits, strict=True):
            counter = self._counter(key)
            counter.reserved += w.amount
            if limit is not None:
                counter.limit = limit
        out.append(
            (
                w.id,
                w.idempotency_id,
                w.project,
                w.budget.day.isoformat(),
                w.budget.month.isoformat(),
                str(w.amount),
                w.expires_us,
                w.holder_id,
            )
        )
        return ReserveOutcome(granted=True)

    def _settle(
        self,
        w: _Settle,
        index: int,
        closed: dict[str, _Closed],
        stored_ids: set[str],
        alerts: dict[_Key, tuple[int, BudgetAlert]],
    ) -> WriteOutcome:
        gone = closed.pop(w.reservation_id, None) if w.reservation_id is not None else None
        stored = w.record.idempotency_id in stored_ids
        stored_ids.discard(w.record.idempotency_id)  # a repeated id in one batch counts once
        if gone is None and not stored:
            return WriteOutcome(stored=False)
        project, day, month, release = w.record.project, w.budget.day, w.budget.month, _ZERO
        if gone is not None:
            project, day, month, release = gone
        spend = w.record.cost if stored and w.record.cost is not None else _ZERO
        limits = (w.budget.daily_limit, w.budget.monthly_limit)
        threshold = w.budget.threshold
        for (key, kind, period), limit in zip(_periods(project, day, month), limits, strict=True):
            counter = self._counter(key)
            counter.reserved -= release
            counter.spent += spend
            counter.unpriced += int(stored and w.record.cost is None)
            if counter.limit is None:
                counter.limit = limit
            if (
                limit is not None
                and threshold is not None
                and counter.spent >= limit * threshold
                and key not in alerts
            ):
                alerts[key] = (
                    index,
                    BudgetAlert(project, kind, period, counter.spent, limit, threshold),
                )
        return WriteOutcome(stored=stored, released=gone is not None)

    def _release(self, w: _Release, closed: dict[str, _Closed]) -> bool:
        gone = closed.pop(w.reservation_id, None)
        if gone is None:
            return False
        self._move(gone, release=gone[3])
        return True

    # --- write back ----------------------------------------------------------------------

    async def _write_back(self, new_reservations: list[tuple[Any, ...]]) -> None:
        if self.dirty:
            await self.conn.executemany(
                "insert into cost_budget_periods "
                "(project, kind, period_start, limit_amount, reserved, spent, unpriced_calls) "
                "values (?, ?, ?, ?, ?, ?, ?) on conflict (project, kind, period_start) "
                "do update set limit_amount = excluded.limit_amount, "
                "reserved = excluded.reserved, spent = excluded.spent, "
                "unpriced_calls = excluded.unpriced_calls",
                [
                    (*key, _text(c.limit), str(c.reserved), str(c.spent), c.unpriced)
                    for key in sorted(self.dirty)
                    for c in (self.counters[key],)
                ],
            )
        if new_reservations:
            await self.conn.executemany(
                "insert into cost_reservations "
                "(id, idempotency_id, project, day, month, amount, expires_us, holder_id) "
                "values (?, ?, ?, ?, ?, ?, ?, ?)",
                new_reservations,
            )

    async def _insert_alerts(self, alerts: list[BudgetAlert]) -> set[_Key]:
        if not alerts:
            return set()
        rows = await self.conn.execute_fetchall(
            "insert or ignore into cost_budget_alerts values "  # noqa: S608
            f"{_marks(len(alerts), 6)} returning project, kind, period_start",
            [
                value
                for a in alerts
                for value in (
                    a.project,
                    a.kind,
                    a.period.isoformat(),
                    str(a.spent),
                    str(a.budget),
                    str(a.threshold),
                )
            ],
        )
        # Only the writer that inserts the period's alert row fires it, across processes.
        return {(row[0], row[1], row[2]) for row in rows}


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
        self._batcher: Batcher[_Write, Any] = Batcher(self._run_batch)

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

    async def _write(self, write: _Write) -> Any:
        try:
            return await self._batcher.submit(write)
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    async def _read(self, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        try:
            _, reader = await self._connections()
            return list(await reader.execute_fetchall(query, params))
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    async def _run_batch(self, writes: list[_Write]) -> Sequence[Any]:
        writer, _ = await self._connections()
        try:
            return await self._transaction(writer, writes)
        except Exception:
            if len(writes) == 1:
                raise
        # One failing write must not fail the others: one transaction each instead.
        results: list[Any] = []
        for write in writes:
            try:
                results.extend(await self._transaction(writer, [write]))
            except Exception as exc:
                results.append(exc)
        return results

    @staticmethod
    async def _transaction(conn: aiosqlite.Connection, writes: list[_Write]) -> list[Any]:
        await conn.execute("begin immediate")
        try:
            results = await _Batch(conn, writes, _us(datetime.now(UTC))).run()
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
        expires = _us(datetime.now(UTC)) + int(ttl_seconds * 1_000_000)
        write = _Reserve(
            reservation_id, project, amount, budget, expires, idempotency_id, holder_id
        )
        outcome: ReserveOutcome = await self._write(write)
        return outcome

    async def settle(
        self, reservation_id: str | None, record: CostMetrics, budget: BudgetContext
    ) -> WriteOutcome:
        """See :meth:`CostStore.settle`."""
        outcome: WriteOutcome = await self._write(_Settle(reservation_id, record, budget))
        return outcome

    async def release(self, reservation_id: str) -> bool:
        """See :meth:`CostStore.release`."""
        return bool(await self._write(_Release(reservation_id)))

    async def expire_reservations(self, project: str | None) -> int:
        """See :meth:`CostStore.expire_reservations`."""
        return int(await self._write(_Reclaim(project)))

    async def heartbeat(self, holder_id: str, stale_after: float) -> None:
        """See :meth:`CostStore.heartbeat`."""
        await self._write(_Heartbeat(holder_id, int(stale_after * 1_000_000)))

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
