"""PostgresPool against the real server: bounded waits, the circuit breaker, MissingTablesError,
pool ownership, and no password in any log line at DEBUG."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest
from llm_common_db import DatabaseUnavailableError, MissingTablesError, PostgresPool
from llm_common_testkit import TcpProxy, replace_url
from psycopg_pool import AsyncConnectionPool

pytestmark = pytest.mark.postgres

SECRET = "Sentinel-pool-pw-91c2"


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never answers (a hung server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


class AcceptCounter:
    """A loopback server that counts connections and closes each at once."""

    def __init__(self) -> None:
        self.accepted = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.transport.abort()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def accept_counter() -> AsyncIterator[AcceptCounter]:
    server = AcceptCounter()
    await server.start()
    yield server
    await server.aclose()


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every logger at DEBUG (psycopg sets its own logger to WARNING on import)."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="psycopg")
    caplog.set_level(logging.DEBUG, logger="psycopg.pool")
    return caplog


async def _use(pg: PostgresPool) -> Any:
    async with pg.connection() as conn:
        cur = await conn.execute("select 1")
        return (await cur.fetchone() or [None])[0]


async def _until(check: Callable[[], Awaitable[bool]], deadline: float) -> None:
    """Poll ``check`` until it is true; fail at ``deadline`` seconds from now."""
    end = time.monotonic() + deadline
    while not await check():
        assert time.monotonic() < end, "condition not reached before the deadline"
        await asyncio.sleep(0.02)


async def test_connects_and_runs_autocommit(postgres_db: str) -> None:
    pg = PostgresPool.from_url(replace_url(postgres_db, password=SECRET))
    try:
        async with pg.connection() as conn:
            assert conn.autocommit
            assert conn.prepare_threshold is None  # Supabase's transaction pooler
        assert await _use(pg) == 1
        assert not pg.breaker_open
    finally:
        await pg.aclose()


def _connection_attempts(logs: pytest.LogCaptureFixture) -> int:
    return sum("connection started" in r.getMessage() for r in logs.records)


async def test_refused_connection_fails_fast_and_opens_the_breaker(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    url = f"postgresql://app:{SECRET}@127.0.0.1:{_closed_port()}/appdb"
    pg = PostgresPool.from_url(url, connect_timeout=3.0, breaker_interval=60)
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailableError) as first:
            await _use(pg)
        # Refused: the waiting caller learns at once, it does not sit out connect_timeout.
        assert time.monotonic() - started < 1.5
        assert "PostgreSQL at 127.0.0.1:" in str(first.value)
        assert "/appdb is unreachable" in str(first.value)
        assert "refused" in str(first.value).lower()
        assert pg.breaker_open
        # While the breaker is open a caller is refused without a connection attempt (counted
        # from psycopg's own debug lines, not timed: a loaded CI machine makes timings noisy).
        attempts_before = _connection_attempts(debug_logs)
        for _ in range(20):
            with pytest.raises(DatabaseUnavailableError, match="circuit breaker open"):
                await _use(pg)
        assert _connection_attempts(debug_logs) == attempts_before
    finally:
        await pg.aclose()
    # One warning for the outage, not one per attempt or per caller.
    warnings = [r for r in debug_logs.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "failing fast for 60.0 s" in warnings[0].getMessage()
    for record in debug_logs.records:
        assert SECRET not in record.getMessage()


async def test_hung_server_times_out_within_connect_timeout(silent_server: int) -> None:
    pg = PostgresPool.from_url(
        f"postgresql://app:{SECRET}@127.0.0.1:{silent_server}/appdb", connect_timeout=1.0
    )
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailableError, match=r"timed out after 1\.0 s"):
            await _use(pg)
        elapsed = time.monotonic() - started
        assert 0.9 <= elapsed < 2.0
        assert pg.breaker_open
    finally:
        await pg.aclose()


async def test_breaker_lets_one_probe_through(accept_counter: AcceptCounter) -> None:
    pg = PostgresPool.from_url(
        f"postgresql://app:{SECRET}@127.0.0.1:{accept_counter.port}/appdb",
        connect_timeout=2.0,
        breaker_interval=0.3,
    )
    try:
        with pytest.raises(DatabaseUnavailableError):
            await _use(pg)
        after_trip = accept_counter.accepted
        assert after_trip >= 1

        async def interval_over() -> bool:
            return pg._open_until <= time.monotonic()

        await _until(interval_over, 5)
        results = await asyncio.gather(*(_use(pg) for _ in range(8)), return_exceptions=True)
        assert all(isinstance(r, DatabaseUnavailableError) for r in results)
        fast = [r for r in results if "circuit breaker open" in str(r)]
        assert len(fast) == 7  # everybody but the probe failed without touching the network
        # psycopg_pool makes one attempt and one immediate retry; nothing per caller.
        assert accept_counter.accepted - after_trip <= 2
        assert pg.breaker_open  # the failed probe re-opened it
    finally:
        await pg.aclose()


async def test_breaker_recovers_after_an_outage(postgres_db: str, tcp_proxy: TcpProxy) -> None:
    url = replace_url(tcp_proxy.url_for(postgres_db), password=SECRET)
    pg = PostgresPool.from_url(url, connect_timeout=2.0, breaker_interval=0.5)
    try:
        assert await _use(pg) == 1
        tcp_proxy.stop()  # idle connection cut, new ones refused
        with pytest.raises(DatabaseUnavailableError, match="connection lost") as lost:
            await _use(pg)  # the idle connection was dead
        assert SECRET not in str(lost.value)
        with pytest.raises(DatabaseUnavailableError, match="refused"):
            await _use(pg)  # a fresh connect is refused: that trips the breaker
        assert pg.breaker_open
        tcp_proxy.start()
        # The server is back, but the breaker holds callers off until the interval is over.
        with pytest.raises(DatabaseUnavailableError, match="circuit breaker open"):
            await _use(pg)

        waiting: list[str] = []

        async def works() -> bool:
            try:
                return bool(await _use(pg) == 1)
            except DatabaseUnavailableError as exc:
                waiting.append(str(exc))
                return False

        await _until(works, 5)
        assert all("circuit breaker open" in text for text in waiting)  # only fast-fails
        assert not pg.breaker_open
        assert await _use(pg) == 1
    finally:
        await pg.aclose()


async def test_connection_lost_inside_the_block(postgres_db: str, tcp_proxy: TcpProxy) -> None:
    pg = PostgresPool.from_url(tcp_proxy.url_for(postgres_db), breaker_interval=30)

    async def cut_midway() -> None:
        async with pg.connection() as conn:
            await conn.execute("select 1")
            tcp_proxy.stop()
            await conn.execute("select 2")

    try:
        with pytest.raises(DatabaseUnavailableError, match="connection lost"):
            await cut_midway()
        assert not pg.breaker_open  # a lost connection alone is no outage
        with pytest.raises(DatabaseUnavailableError, match="refused"):
            await _use(pg)  # the dead idle connections were dropped: this one connects
        assert pg.breaker_open
    finally:
        await pg.aclose()


async def test_server_restart_costs_one_error_not_a_breaker_interval(
    postgres_db: str, tcp_proxy: TcpProxy
) -> None:
    pg = PostgresPool.from_url(tcp_proxy.url_for(postgres_db), breaker_interval=60)

    async def hold_three() -> None:  # three idle connections in the pool afterwards
        async with pg.connection(), pg.connection(), pg.connection():
            pass

    try:
        await hold_three()
        tcp_proxy.stop()
        tcp_proxy.start()  # a restart: every idle connection is dead, the server is back
        with pytest.raises(DatabaseUnavailableError, match="connection lost"):
            await _use(pg)
        assert await _use(pg) == 1  # not three errors, not 60 s of fast-fails
        assert not pg.breaker_open
    finally:
        await pg.aclose()


async def test_a_query_error_is_not_an_outage(postgres_db: str) -> None:
    pg = PostgresPool.from_url(postgres_db)
    try:
        with pytest.raises(psycopg.errors.DivisionByZero):
            async with pg.connection() as conn:
                await conn.execute("select 1/0")
        assert not pg.breaker_open
        assert await _use(pg) == 1
    finally:
        await pg.aclose()


async def test_busy_pool_is_not_an_outage(postgres_db: str) -> None:
    pg = PostgresPool.from_url(postgres_db, max_size=1, connect_timeout=0.3)
    try:
        async with pg.connection():
            with pytest.raises(DatabaseUnavailableError, match="no free connection"):
                await _use(pg)
        assert not pg.breaker_open
        assert await _use(pg) == 1
    finally:
        await pg.aclose()


@pytest.mark.parametrize(
    ("part", "reason"),
    [("dbname", "does not exist"), ("user", "does not exist")],
)
async def test_wrong_database_or_user(
    postgres_db: str, part: str, reason: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    wrong = "llmc_no_such_thing_x"
    url = replace_url(postgres_db, password=SECRET, **{part: wrong})
    pg = PostgresPool.from_url(url, connect_timeout=2.0)
    try:
        with pytest.raises(DatabaseUnavailableError) as info:
            await _use(pg)
        assert reason in str(info.value)
        assert SECRET not in str(info.value)
    finally:
        await pg.aclose()
    for record in debug_logs.records:
        assert SECRET not in record.getMessage()


async def test_sentinel_password_never_logged_at_debug(
    postgres_db: str, tcp_proxy: TcpProxy, debug_logs: pytest.LogCaptureFixture
) -> None:
    url = replace_url(tcp_proxy.url_for(postgres_db), password=SECRET)
    pg = PostgresPool.from_url(url, connect_timeout=1.0, breaker_interval=0.2, max_size=2)
    texts: list[str] = [repr(pg), pg.display]
    try:
        assert await _use(pg) == 1
        tcp_proxy.stop()
        for _ in range(3):
            try:
                await _use(pg)
            except DatabaseUnavailableError as exc:
                texts += [str(exc), repr(exc), str(exc.__cause__)]
        tcp_proxy.start()

        async def works() -> bool:
            try:
                return bool(await _use(pg) == 1)
            except DatabaseUnavailableError as exc:
                texts.append(str(exc))
                return False

        await _until(works, 5)
    finally:
        await pg.aclose()
    texts += [r.getMessage() for r in debug_logs.records]
    texts += [str(r.exc_info[1]) for r in debug_logs.records if r.exc_info]
    assert any(r.name.startswith("psycopg") for r in debug_logs.records)  # DEBUG really on
    for text in texts:
        assert SECRET not in text


async def test_missing_tables(empty_db: str) -> None:
    pg = PostgresPool.from_url(empty_db, package="cost-tracker")
    assert pg.missing_tables_for == "cost-tracker"
    try:
        with pytest.raises(MissingTablesError) as table:
            async with pg.connection() as conn:
                await conn.execute("select * from public.cost_records")
        assert table.value.package == "cost-tracker"
        assert table.value.command == (
            "llm-common-db migrate --package cost-tracker --database-url <url>"
        )
        assert str(table.value).startswith(
            "tables for cost-tracker are missing: run "
            "`llm-common-db migrate --package cost-tracker --database-url <url>`"
        )
        with pytest.raises(MissingTablesError):
            async with pg.connection() as conn:
                await conn.execute("select public.cost_batch('[]'::jsonb)")
        assert not pg.breaker_open
    finally:
        await pg.aclose()
    plain = PostgresPool.from_url(empty_db)
    try:
        with pytest.raises(psycopg.errors.UndefinedTable):
            async with plain.connection() as conn:
                await conn.execute("select * from public.cost_records")
    finally:
        await plain.aclose()


async def test_owned_pool_is_closed_and_aclose_is_idempotent(postgres_db: str) -> None:
    pg = PostgresPool.from_url(postgres_db)
    assert await _use(pg) == 1
    await pg.aclose()
    assert pg.closed
    assert pg.pool.closed
    await pg.aclose()
    with pytest.raises(DatabaseUnavailableError, match="closed"):
        await _use(pg)


async def test_borrowed_pool_is_never_closed(postgres_db: str) -> None:
    url = replace_url(postgres_db, password=SECRET)
    async with AsyncConnectionPool(
        url, min_size=0, max_size=2, open=False, kwargs={"autocommit": True}
    ) as pool:
        pg = PostgresPool.from_pool(pool, package="cost-tracker")
        assert not pg.owns_pool
        assert SECRET not in repr(pg)
        assert await _use(pg) == 1
        await pg.aclose()
        await pg.aclose()
        assert not pool.closed
        async with pool.connection() as conn:
            await conn.execute("select 1")


async def test_of_applies_the_ownership_rule(postgres_db: str) -> None:
    owned = PostgresPool.of(postgres_db, package="cost-tracker")
    assert owned.owns_pool
    assert PostgresPool.of(pool=owned) is owned  # a PostgresPool is used as it is
    async with AsyncConnectionPool(
        postgres_db, min_size=0, max_size=1, open=False, kwargs={"autocommit": True}
    ) as pool:
        borrowed = PostgresPool.of(pool=pool)
        assert not borrowed.owns_pool
        assert await _use(borrowed) == 1
        await borrowed.aclose()
        assert not pool.closed
        with pytest.raises(ValueError, match="not both or neither"):
            PostgresPool.of(postgres_db, pool)
    with pytest.raises(ValueError, match="not both or neither"):
        PostgresPool.of()
    await owned.aclose()
    assert owned.pool.closed
