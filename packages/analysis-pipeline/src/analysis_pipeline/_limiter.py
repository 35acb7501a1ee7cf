"""A cap on concurrent paid calls per provider account, shared by every worker on one database.

Providers limit an account, not a machine: ten workers each allowed four calls at once make
forty, and the 429s that go with them. :class:`CallLimiter` holds ``limit`` numbered slots per
account in ``public.pipeline_call_slots`` (``llm-common-db migrate --package
analysis-pipeline-batch``), so the cap holds across processes and machines.

A slot is a lease that outlives a dead holder. Taking one is one statement: a slot whose
``lease_until`` has passed *and* whose session advisory lock ``(account key, slot)`` this
session gets, then ``lease_until = now() + abandoned_after``. A live holder keeps the slot
through its lock however long the call runs (no renewal); releasing sets ``lease_until`` to now
and unlocks. A process that dies (SIGKILL, machine loss) loses its lock with its session, but
the calls it had sent may still be running at the provider (providers do not stop work when the
client disconnects), so its slot stays taken until the lease passes: the cap holds right after a
crash too, at the price of the dead worker's slots for up to ``abandoned_after`` seconds.

:class:`LimitedCostSink` puts the limiter where every paid call already passes: the cost sink.
llm-client and web-search call ``reserve`` right before each paid attempt and ``settle`` or
``release`` right after it, so wrapping the app's ``CostTracker`` caps LLM calls and searches
without touching either client::

    limiter = CallLimiter(url, {"openrouter": 8, "zai": 16})
    sink = LimitedCostSink(tracker, limiter)
    llm = LLMClient(cost_sink=sink)
    search = WebSearchClient("zai", cost_sink=sink)

Waiting for a slot polls with a short jittered back-off (5-50 ms): a slot frees when a call
ends, which is the granularity that matters, and it needs no listener connection.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import zlib
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from ._errors import BatchError, ConfigurationError

__all__ = ["CallLimiter", "LimitedCostSink"]

logger = logging.getLogger(__name__)

ABANDONED_AFTER = 120.0
"""Default seconds a dead holder's slot stays taken: twice LLMClient's default per-attempt
timeout (60 s; WebSearchClient's is 20 s). A slot is taken right before one attempt, so a call
sent just before a crash is past its client's timeout, with as much again to spare for the
provider, before its slot is handed out again."""

_PACKAGE = "analysis-pipeline-batch"
# Once per account per limiter: the account's slot rows (a lower limit elsewhere only ignores
# the rows above it).
_ADD_SLOTS = (
    "insert into public.pipeline_call_slots (key, slot)"
    " select %(key)s, s from generate_series(0, %(n)s - 1) as s"
    " on conflict (key, slot) do nothing"
)
# One statement. The CASE fixes the order: the lock is tried only on a row already known to be
# the account's, within the limit and past its lease, so no lock is ever taken on a slot that a
# later filter drops; LIMIT without ORDER BY stops the scan at the first slot locked (a sort
# would evaluate, and lock, every row first). The uncorrelated sub-select runs once, so the
# UPDATE, which always finds its row, never re-runs it.
_TAKE_SLOT = """
update public.pipeline_call_slots
set lease_until = now() + %(after)s * interval '1 second'
where key = %(key)s and slot = (
    select slot from public.pipeline_call_slots
    where key = %(key)s
      and case
          when key = %(key)s and slot < %(n)s and lease_until <= now()
          then pg_try_advisory_lock(key, slot)
          else false
      end
    limit 1
)
returning slot
"""
# One statement: the lease ends now and the lock goes (a data-modifying CTE always runs, so the
# lock goes even if the row has been deleted).
_FREE_SLOT = """
with freed as (
    update public.pipeline_call_slots set lease_until = now()
    where key = %(key)s and slot = %(slot)s
)
select pg_advisory_unlock(%(key)s, %(slot)s)
"""
_FIRST_WAIT, _LONGEST_WAIT = 0.005, 0.05


def account_key(namespace: str, account: str) -> int:
    """The advisory-lock key (a signed 32-bit int) of one account's slots."""
    value = zlib.crc32(f"{namespace}:{account}".encode())
    return value - (1 << 32) if value >= (1 << 31) else value


@dataclass(slots=True)
class Slot:
    """One held slot: released by :meth:`CallLimiter.release`."""

    account: str
    number: int
    key: int
    conn: Any
    stack: AsyncExitStack


class CallLimiter:
    """At most ``limits[account]`` calls at once per account, across all processes.

    Args:
        database_url: PostgreSQL URL (a password in it is never shown).
        limits: Account (the cost estimate's ``provider``: ``openrouter``, ``zai``, ``openai``)
            to its cap; an account not listed is not limited.
        namespace: Separates the slots of unrelated apps sharing one database.
        connect_timeout: Longest wait for a connection, in seconds.
        pool: An ``llm_common_db.PostgresPool`` to use instead of one built from the URL (it
            needs ``sum(limits)`` connections to spare; the caller closes it).
        abandoned_after: Seconds a slot stays taken after its holder died without releasing
            it: the longest one call can run, since the provider may still be running the dead
            worker's calls. A live holder keeps its slot however long its call runs. The
            default, 120 s, is twice LLMClient's default per-attempt timeout (60 s) and six
            times WebSearchClient's (20 s); raise it with those timeouts.

    Raises:
        ConfigurationError: A limit below 1, or ``abandoned_after`` not a positive number.
    """

    def __init__(
        self,
        database_url: str | None,
        limits: Mapping[str, int],
        *,
        namespace: str = "llm-common",
        connect_timeout: float = 5.0,
        pool: Any = None,
        abandoned_after: float = ABANDONED_AFTER,
    ) -> None:
        for account, limit in limits.items():
            if limit < 1:
                raise ConfigurationError(f"call limit of {account!r} must be >= 1, got {limit}")
        if not (math.isfinite(abandoned_after) and abandoned_after > 0):
            raise ConfigurationError(
                f"abandoned_after must be a finite number of seconds > 0, got {abandoned_after}"
            )
        self.limits = dict(limits)
        self.namespace = namespace
        self.abandoned_after = float(abandoned_after)
        self._keys = {a: account_key(namespace, a) for a in self.limits}
        # A process never holds more than `limit` slots of an account: the rest wait here
        # without a connection of their own.
        self._local = {a: asyncio.Semaphore(n) for a, n in self.limits.items()}
        if pool is None:
            if database_url is None:
                raise ConfigurationError("CallLimiter needs a database_url or a pool")
            from llm_common_db import PostgresPool

            pool = PostgresPool.from_url(
                database_url,
                connect_timeout=connect_timeout,
                max_size=max(1, sum(self.limits.values())),
                package=_PACKAGE,
            )
            self._owns_pool = True
        else:
            self._owns_pool = False
        self._pool = pool
        self._slot_rows: set[str] = set()  # accounts whose slot rows this limiter has made
        self.in_use: dict[str, int] = dict.fromkeys(self.limits, 0)
        """Slots this process holds now, per account."""
        self.waits = 0
        """How many acquisitions found every slot taken at first (and waited)."""

    def __repr__(self) -> str:
        return (
            f"CallLimiter(limits={self.limits!r}, namespace={self.namespace!r}, "
            f"abandoned_after={self.abandoned_after:g})"
        )

    async def __aenter__(self) -> CallLimiter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pool if this limiter built it."""
        if self._owns_pool:
            await self._pool.aclose()

    async def acquire(self, account: str) -> Slot | None:
        """Wait for a free slot of ``account``; None when the account has no limit.

        Raises:
            BatchError: The slot table is missing (names the migrate command that makes it).
        """
        if account not in self.limits:
            return None
        key, limit = self._keys[account], self.limits[account]
        params = {"n": limit, "key": key, "after": self.abandoned_after}
        stack = AsyncExitStack()
        try:
            await stack.enter_async_context(_semaphore(self._local[account]))
            conn = await stack.enter_async_context(self._pool.connection())
            if account not in self._slot_rows:
                await _execute(conn, _ADD_SLOTS, params)
                self._slot_rows.add(account)
            wait, waited = _FIRST_WAIT, False
            while True:
                row = await (await _execute(conn, _TAKE_SLOT, params)).fetchone()
                if row is not None:
                    break
                if not waited:
                    self.waits += 1
                    waited = True
                await asyncio.sleep(wait * (0.5 + random.random()))  # noqa: S311 (jitter)
                wait = min(wait * 2, _LONGEST_WAIT)
        except BaseException:
            await stack.aclose()
            raise
        self.in_use[account] += 1
        return Slot(account, int(row[0]), key, conn, stack)

    async def release(self, slot: Slot | None) -> None:
        """Give the slot back at once.

        If that fails (the connection broke), the slot stays taken until its lease passes, as
        for a dead holder: this process cannot tell whether its lock outlived the failure.
        """
        if slot is None:
            return
        self.in_use[slot.account] -= 1
        async with slot.stack:  # then the connection goes back to the pool
            await _free(slot)

    @asynccontextmanager
    async def hold(self, account: str) -> AsyncIterator[Slot | None]:
        """``async with limiter.hold("zai"):`` around one call."""
        slot = await self.acquire(account)
        try:
            yield slot
        finally:
            await asyncio.shield(self.release(slot))


async def _execute(conn: Any, query: str, params: Mapping[str, object]) -> Any:
    """Run one limiter statement; a failure closes the connection.

    A statement cut short (a cancelled task, a lost reply) may have taken a lock the caller
    never learns of; closing the session drops it, so no pooled connection keeps a slot.
    """
    import psycopg

    try:
        return await conn.execute(query, params)
    except psycopg.errors.UndefinedTable as exc:
        from llm_common_db import MissingTablesError

        missing = MissingTablesError(_PACKAGE, str(exc).strip().splitlines()[0])
        raise BatchError(f"call limiter: {missing}") from exc
    except BaseException:
        await _close(conn)
        raise


async def _free(slot: Slot) -> None:
    try:
        await slot.conn.execute(_FREE_SLOT, {"key": slot.key, "slot": slot.number})
    except BaseException as exc:
        # Closing drops the lock if the session still had it; the lease then runs out.
        await _close(slot.conn)
        if not isinstance(exc, Exception):
            raise
        logger.info(
            "call limiter: release of %s slot %d failed (taken until its lease passes): %s",
            slot.account, slot.number, exc,
        )  # fmt: skip


async def _close(conn: Any) -> None:
    try:
        await conn.close()
    except Exception as exc:  # pragma: no cover - closing a broken connection
        logger.debug("call limiter: closing a connection failed: %s", exc)


@asynccontextmanager
async def _semaphore(gate: asyncio.Semaphore) -> AsyncIterator[None]:
    async with gate:
        yield


class LimitedCostSink:
    """A cost sink that holds a :class:`CallLimiter` slot for each paid call it is told about.

    ``reserve`` waits for a slot of the estimate's provider, then reserves with the wrapped
    sink; ``settle`` and ``release`` give the slot back, then pass on. A refusal by the wrapped
    sink (a budget) frees the slot at once.

    Args:
        sink: The app's cost sink (a ``cost_tracker.CostTracker``), or None to only limit.
        limiter: The shared limiter.
    """

    def __init__(self, sink: Any, limiter: CallLimiter) -> None:
        self.sink = sink
        self.limiter = limiter

    def __repr__(self) -> str:
        return f"LimitedCostSink({self.sink!r}, {self.limiter!r})"

    async def reserve(self, estimate: Any) -> Held:
        """Take a slot for ``estimate.provider``, then reserve with the wrapped sink."""
        slot = await self.limiter.acquire(str(estimate.provider))
        try:
            inner = None if self.sink is None else await self.sink.reserve(estimate)
        except BaseException:
            await asyncio.shield(self.limiter.release(slot))
            raise
        return Held(slot, inner)

    async def settle(self, reservation: Held, record: Any) -> None:
        """The call is over: free its slot, then settle with the wrapped sink."""
        await asyncio.shield(self._free(reservation))
        if self.sink is not None:
            await self.sink.settle(reservation.inner, record)

    async def release(self, reservation: Held) -> None:
        """The call failed unbilled: free its slot, then release with the wrapped sink."""
        await asyncio.shield(self._free(reservation))
        if self.sink is not None:
            await self.sink.release(reservation.inner)

    async def _free(self, reservation: Held) -> None:
        slot, reservation.slot = reservation.slot, None  # freed once, whoever comes first
        await self.limiter.release(slot)


@dataclass(slots=True)
class Held:
    """A :class:`LimitedCostSink` reservation: the slot (until freed) and the wrapped one."""

    slot: Slot | None
    inner: Any
