"""The PostgreSQL plumbing every llm-common store shares: one pool, bounded waits, a breaker.

Why one class instead of each store driving psycopg_pool itself: the same four things went
wrong in four places — the raw URL (password included) handed to psycopg_pool, whose warnings
print it; an unreachable server costing a 30 s pool wait per operation; a stream of
"error connecting" warnings for as long as the outage lasts; and "relation does not exist"
when the app forgot the migrations. :class:`PostgresPool` fixes each once:

* The URL is parsed up front (:func:`parse_conninfo`); psycopg_pool gets it *without* the
  password, which travels in the pool's ``kwargs`` (never logged), and a pool name made of
  ``host:port/dbname``.
* :meth:`PostgresPool.connection` waits at most ``connect_timeout``; a refused connection
  fails the waiting callers at once instead of letting them sit out the timeout.
* A circuit breaker: after a connect failure every caller fails immediately for
  ``breaker_interval`` seconds; then one caller probes, and its success closes the breaker.
  A connection lost mid-query is reported but does not trip it: the idle connections are
  dropped and the next caller connects afresh (after a server restart, that works at once).
* psycopg_pool retries a failed connect with its own back-off for ``reconnect_timeout``
  (5 min by default), logging a warning per attempt. The breaker already decides when to try
  again, so owned pools give up at once (tiny ``reconnect_timeout``) and their per-attempt
  warnings are replaced by one warning per outage from here (see :class:`_QuietOwnPools`).
* ``undefined_table`` / ``undefined_function`` become :class:`MissingTablesError` naming the
  migrate command, when the pool knows which package it serves.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import psycopg
import psycopg.errors
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from ._conninfo import ParsedConninfo, parse_conninfo, redact_conninfo
from ._errors import DatabaseUnavailableError, MissingTablesError

__all__ = ["PostgresPool"]

logger = logging.getLogger(__name__)

# The pool's own retries are pointless under the breaker; psycopg_pool treats 0 as "retry
# forever", so the smallest positive value: one immediate retry, then give up.
_RECONNECT_TIMEOUT = 0.001
_names = itertools.count(1)
_own_pool_names: weakref.WeakValueDictionary[str, PostgresPool] = weakref.WeakValueDictionary()


class _QuietOwnPools(logging.Filter):
    """Drop psycopg_pool's per-attempt connect warnings for pools this module owns.

    They carry nothing secret (the password never reaches psycopg_pool's conninfo), but one
    outage produced one line per attempt; :class:`PostgresPool` logs one line per outage with
    the same reason instead. Records about anybody else's pools pass untouched.
    """

    _PREFIXES = ("error connecting in %r", "reconnection attempt in pool %r")

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        ours = (
            isinstance(record.msg, str)
            and record.msg.startswith(self._PREFIXES)
            and isinstance(args, tuple)
            and bool(args)
            and args[0] in _own_pool_names
        )
        return not ours


_QUIET = _QuietOwnPools()
logging.getLogger("psycopg.pool").addFilter(_QUIET)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _reason(exc: BaseException) -> str:
    """A short reason from libpq's message: its last "failed:" clause, without the preamble."""
    text = _first_line(exc)
    # 'connection failed: connection to server at "h", port 5 failed: Connection refused'
    _, sep, tail = text.rpartition(" failed: ")
    reason = tail if sep and tail.strip() else text
    reason = reason.strip().removeprefix("FATAL:")
    return " ".join(reason.split())


def _connection_class(on_failure: Callable[[BaseException], None]) -> type[Any]:
    """An AsyncConnection subclass that reports every failed connect to ``on_failure``.

    psycopg_pool connects from its own worker tasks and only logs failures; this is the
    public hook (``connection_class``) that lets the waiting callers learn about them at once.
    """

    class _ReportingConnection(psycopg.AsyncConnection[Any]):
        @classmethod
        async def connect(cls, conninfo: str = "", **kwargs: Any) -> _ReportingConnection:
            try:
                return await super().connect(conninfo, **kwargs)
            except psycopg.Error as exc:
                on_failure(exc)
                raise

    return _ReportingConnection


class PostgresPool:
    """A PostgreSQL connection pool with bounded waits, a circuit breaker and redacted messages.

    Build it with :meth:`from_url` (it owns its psycopg_pool and closes it in :meth:`aclose`)
    or :meth:`from_pool` (it borrows an existing ``AsyncConnectionPool`` and never closes it).
    Connections are autocommit (use ``conn.transaction()`` for multi-statement units) and use
    no server-side prepared statements, so they work through Supabase's transaction pooler.

    Example:
        >>> pg = PostgresPool.from_url(url, connect_timeout=2, package="cost-tracker")
        >>> async with pg.connection() as conn:  # doctest: +SKIP
        ...     await conn.execute("select 1")
        >>> await pg.aclose()  # doctest: +SKIP

    Attributes:
        display: The connection string with the password masked (for reprs and messages).
        where: ``host:port/dbname``.
        missing_tables_for: The package whose migrations a missing table points to, or None.
        connect_timeout: Longest wait for a connection, in seconds.
        breaker_interval: Seconds the breaker stays open after a connect failure.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        owns_pool: bool,
        display: str,
        where: str,
        connect_timeout: float,
        breaker_interval: float,
        package: str | None,
        parsed: ParsedConninfo | None = None,
    ) -> None:
        """Use :meth:`from_url` or :meth:`from_pool` instead."""
        if connect_timeout <= 0:
            raise ValueError("connect_timeout must be positive")
        if breaker_interval < 0:
            raise ValueError("breaker_interval must not be negative")
        self._pool = pool
        self._owns_pool = owns_pool
        self.display = display
        self.where = where
        self.connect_timeout = float(connect_timeout)
        self.breaker_interval = float(breaker_interval)
        self.missing_tables_for = package
        self._parsed = parsed
        self._opened = not owns_pool
        self._open_lock: asyncio.Lock | None = None
        self._closed = False
        # Circuit breaker: open while monotonic() < _open_until; one caller probes after that.
        self._open_until = 0.0
        self._probing = False
        self._last_reason = ""
        self._waiters: set[asyncio.Future[BaseException]] = set()

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        connect_timeout: float = 5.0,
        min_size: int = 0,
        max_size: int = 10,
        breaker_interval: float = 30.0,
        name: str | None = None,
        package: str | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> PostgresPool:
        """Build a pool that owns its connections (closed by :meth:`aclose`).

        Nothing connects until the first :meth:`connection`; ``min_size=0`` keeps an idle app
        (or an unreachable database) from holding or retrying connections in the background.

        Args:
            url: libpq URL or ``key=value`` string; may contain a password (never shown).
            connect_timeout: Longest wait for a connection, in seconds.
            min_size: Connections kept open even when idle.
            max_size: Most connections open at once.
            breaker_interval: Seconds to fail fast after a connect failure.
            name: Pool name for psycopg_pool's logs (default: ``llm-common-db[host:port/db]``).
            package: Distribution whose tables this pool serves (e.g. ``"cost-tracker"``):
                a missing table or function then raises :class:`MissingTablesError`.
            kwargs: Extra keyword arguments for ``psycopg.AsyncConnection.connect``.

        Raises:
            InvalidConnectionStringError: ``url`` cannot be parsed (the message omits it).
        """
        parsed = parse_conninfo(url)
        connect_kwargs: dict[str, Any] = {
            "autocommit": True,
            "prepare_threshold": None,
            # libpq counts whole seconds (and treats 1 as 2); our own wait is exact.
            "connect_timeout": max(2, math.ceil(connect_timeout)),
            **(kwargs or {}),
        }
        if parsed.password is not None:
            connect_kwargs["password"] = parsed.password
        pool_name = name or f"llm-common-db[{parsed.where}]#{next(_names)}"
        holder: list[PostgresPool] = []
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            parsed.conninfo,
            kwargs=connect_kwargs,
            connection_class=_connection_class(lambda exc: holder[0]._connect_failed(exc)),
            min_size=min_size,
            max_size=max_size,
            open=False,
            name=pool_name,
            timeout=connect_timeout,
            reconnect_timeout=_RECONNECT_TIMEOUT,
        )
        self = cls(
            pool,
            owns_pool=True,
            display=parsed.display,
            where=parsed.where,
            connect_timeout=connect_timeout,
            breaker_interval=breaker_interval,
            package=package,
            parsed=parsed,
        )
        holder.append(self)
        _own_pool_names[pool_name] = self
        return self

    @classmethod
    def from_pool(
        cls,
        pool: AsyncConnectionPool[Any],
        *,
        connect_timeout: float = 5.0,
        breaker_interval: float = 30.0,
        package: str | None = None,
    ) -> PostgresPool:
        """Wrap a pool the caller owns: :meth:`aclose` never closes it.

        The caller opens and closes ``pool``; its connections should be autocommit (and
        ``prepare_threshold=None`` behind a transaction pooler).
        """
        conninfo = pool.conninfo if isinstance(pool.conninfo, str) else ""
        try:
            where = parse_conninfo(conninfo).where if conninfo else pool.name
        except ValueError:
            where = pool.name
        display = redact_conninfo(conninfo) if conninfo else f"<pool {pool.name!r}>"
        return cls(
            pool,
            owns_pool=False,
            display=display,
            where=where,
            connect_timeout=connect_timeout,
            breaker_interval=breaker_interval,
            package=package,
        )

    @classmethod
    def of(
        cls,
        conninfo: str | None = None,
        pool: AsyncConnectionPool[Any] | PostgresPool | None = None,
        *,
        connect_timeout: float = 5.0,
        min_size: int = 0,
        max_size: int = 10,
        breaker_interval: float = 30.0,
        package: str | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> PostgresPool:
        """The pool a store was handed, or one it builds from a URL and owns.

        The one place the stores' ownership rule lives: a :class:`PostgresPool` is used as it
        is, a psycopg_pool pool is borrowed (:meth:`from_pool`), a URL builds an owned pool
        (:meth:`from_url`).

        Raises:
            InvalidConnectionStringError: ``conninfo`` cannot be parsed (the message omits it).
            ValueError: Neither or both of ``conninfo`` and ``pool``.
        """
        if (pool is None) == (not conninfo):
            raise ValueError("give a connection string or a pool, not both or neither")
        if isinstance(pool, PostgresPool):
            return pool
        if pool is not None:
            return cls.from_pool(
                pool,
                connect_timeout=connect_timeout,
                breaker_interval=breaker_interval,
                package=package,
            )
        return cls.from_url(
            conninfo or "",
            connect_timeout=connect_timeout,
            min_size=min_size,
            max_size=max_size,
            breaker_interval=breaker_interval,
            package=package,
            kwargs=kwargs,
        )

    # -- public API ---------------------------------------------------------------------------

    @property
    def owns_pool(self) -> bool:
        """Whether :meth:`aclose` closes the underlying psycopg_pool."""
        return self._owns_pool

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        """The underlying ``psycopg_pool.AsyncConnectionPool``."""
        return self._pool

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    @property
    def breaker_open(self) -> bool:
        """Whether callers are currently failing fast (the database was unreachable)."""
        return self._open_until > 0.0

    def __repr__(self) -> str:
        return f"PostgresPool({self.display!r})"

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """Borrow a connection for the ``async with`` block, then give it back.

        Raises:
            DatabaseUnavailableError: No connection within ``connect_timeout``, the server
                refused it, the connection broke inside the block, or the breaker is open
                (then at once, without touching the network).
            MissingTablesError: The block hit an undefined table or function and the pool
                was built with ``package=``.
        """
        probe = self._enter_breaker()
        try:
            conn = await self._acquire(probe)
        except BaseException:
            if probe:
                self._probing = False
            raise
        if probe:
            self._close_breaker()
        try:
            async with conn:
                yield conn
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction) as exc:
            if self.missing_tables_for is None:
                raise
            detail = self._scrub(_first_line(exc))
            raise MissingTablesError(self.missing_tables_for, detail) from exc
        except psycopg.OperationalError as exc:
            if not conn.broken:
                raise
            # Not a breaker trip: after a server restart every idle connection is dead although
            # the server is back. Drop them, so the next caller connects afresh; if the server
            # is really gone, that connect fails and trips the breaker.
            if self._owns_pool:
                with suppress(psycopg.Error, PoolClosed):
                    await self._pool.drain()
            reason = f"connection lost: {self._scrub(_reason(exc))}"
            logger.info("PostgreSQL at %s: %s", self.where, reason)
            raise DatabaseUnavailableError(
                f"PostgreSQL at {self.where} is unreachable ({reason})", where=self.where
            ) from exc
        finally:
            await self._pool.putconn(conn)

    async def aclose(self) -> None:
        """Close the pool if this object owns it; a borrowed pool stays open. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for waiter in list(self._waiters):
            if not waiter.done():
                waiter.set_result(DatabaseUnavailableError("the pool is closed"))
        if self._owns_pool:
            await self._pool.close()

    # -- internals ----------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        return self._parsed.scrub(text) if self._parsed is not None else text

    def _unavailable(self, reason: str) -> DatabaseUnavailableError:
        return DatabaseUnavailableError(
            f"PostgreSQL at {self.where} is unreachable ({reason})", where=self.where
        )

    def _enter_breaker(self) -> bool:
        """Raise while the breaker is open; return True if this caller is the probe."""
        if self._closed:
            raise DatabaseUnavailableError(
                f"the connection pool for {self.where} is closed", where=self.where
            )
        if self._open_until == 0.0:
            return False
        remaining = self._open_until - time.monotonic()
        if remaining > 0 or self._probing:
            raise DatabaseUnavailableError(
                f"PostgreSQL at {self.where} is unreachable (circuit breaker open, "
                f"retrying in {max(remaining, 0.0):.1f} s; last error: {self._last_reason})",
                where=self.where,
            )
        self._probing = True
        return True

    def _trip(self, reason: str) -> None:
        was_closed = self._open_until == 0.0
        self._open_until = time.monotonic() + self.breaker_interval
        self._probing = False
        self._last_reason = reason
        if was_closed:
            logger.warning(
                "PostgreSQL at %s is unreachable (%s); failing fast for %.1f s",
                self.where,
                reason,
                self.breaker_interval,
            )
        else:
            logger.debug("PostgreSQL at %s is still unreachable (%s)", self.where, reason)

    def _close_breaker(self) -> None:
        self._open_until = 0.0
        self._probing = False
        logger.info("PostgreSQL at %s is reachable again", self.where)

    def _connect_failed(self, exc: BaseException) -> None:
        """Called from psycopg_pool's worker when a new connection could not be made."""
        reason = self._scrub(_reason(exc))
        self._trip(reason)
        for waiter in list(self._waiters):
            if not waiter.done():
                waiter.set_result(self._unavailable(reason))

    async def _ensure_open(self) -> None:
        if self._opened:
            return
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if not self._opened:
                await self._pool.open(wait=False)
                self._opened = True

    async def _acquire(self, probe: bool) -> psycopg.AsyncConnection[Any]:
        await self._ensure_open()
        if probe and self._owns_pool:
            # Idle connections from before the outage are probably dead: replace them, or the
            # probe could fail on a stale socket although the server is back.
            with suppress(psycopg.Error, PoolClosed):
                await self._pool.drain()
        stats = self._pool.get_stats()
        errors_before = stats.get("connections_errors", 0)
        try:
            if not probe and stats.get("pool_available", 0) > 0:
                # Fast path: an idle connection is there, nothing to connect, nothing to race.
                conn: psycopg.AsyncConnection[Any] = await self._pool.getconn(
                    timeout=self.connect_timeout
                )
                return conn
            return await self._wait_for_connection()
        except PoolClosed:
            raise DatabaseUnavailableError(
                f"the connection pool for {self.where} is closed", where=self.where
            ) from None
        except PoolTimeout:
            stats = self._pool.get_stats()
            busy = stats.get("pool_size", 0) >= stats.get("pool_max", 1)
            if busy and stats.get("connections_errors", 0) == errors_before:
                # Every connection is in use by this process: the database is fine.
                raise DatabaseUnavailableError(
                    f"no free connection to PostgreSQL at {self.where} within "
                    f"{self.connect_timeout:.1f} s (all {stats.get('pool_max')} in use)",
                    where=self.where,
                ) from None
            reason = f"timed out after {self.connect_timeout:.1f} s"
            self._trip(reason)
            raise self._unavailable(reason) from None

    async def _wait_for_connection(self) -> psycopg.AsyncConnection[Any]:
        """getconn, but a failed connect attempt (reported by the pool's worker) ends the wait."""
        failed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
        self._waiters.add(failed)
        getter: asyncio.Future[psycopg.AsyncConnection[Any]] = asyncio.ensure_future(
            self._pool.getconn(timeout=self.connect_timeout)
        )
        try:
            pending: set[asyncio.Future[Any]] = {getter, failed}
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            await self._abandon(getter)
            raise
        finally:
            self._waiters.discard(failed)
        if not getter.done():
            await self._abandon(getter)
            raise failed.result()
        failed.cancel()
        return getter.result()

    async def _abandon(self, getter: asyncio.Future[psycopg.AsyncConnection[Any]]) -> None:
        """Cancel a pending getconn; a connection it obtained anyway goes back to the pool."""
        getter.cancel()
        try:
            conn = await asyncio.shield(getter)
        except BaseException:  # cancelled, timed out or failed: nothing to give back
            return
        await self._pool.putconn(conn)
