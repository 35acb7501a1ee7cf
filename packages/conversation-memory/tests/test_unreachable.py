"""An unreachable database: a typed error within connect_timeout, and no secret anywhere.

Every key, token and password here is a sentinel; after each failure the captured logs (DEBUG,
every library's), the exception and its causes, and the store's repr are scanned for it.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conversation_memory import (
    ConfigurationError,
    ConversationMemory,
    ConversationMemoryError,
    PostgresMessageStore,
    StoreError,
    StoreUnavailableError,
    SupabaseMessageStore,
)

SENTINEL = "Sentinel-Secret-7f3a9c"


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A loopback port whose connection attempts hang: its accept queue is full, SYNs drop."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    probe = socket.socket()
    probe.settimeout(0.2)
    with pytest.raises(TimeoutError):  # the premise of every test using this fixture
        probe.connect(("127.0.0.1", port))
    probe.close()
    yield port
    for filler in fillers:
        filler.close()
    server.close()


def _texts(error: BaseException) -> str:
    """The message of an exception and of everything in its cause/context chain."""
    seen: list[str] = []
    current: BaseException | None = error
    while current is not None and len(seen) < 20:
        seen.append(f"{type(current).__name__}: {current} {current!r}")
        current = current.__cause__ or current.__context__
    return "\n".join(seen)


def _assert_no_secret(*texts: Any) -> None:
    for text in texts:
        assert SENTINEL not in str(text), text


async def test_unreachable_supabase_is_unavailable_within_connect_timeout_and_leaks_nothing(
    blackhole: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records
    store = SupabaseMessageStore.from_url(
        f"http://127.0.0.1:{blackhole}",
        f"service-key-{SENTINEL}",
        access_token=f"jwt-{SENTINEL}",
        connect_timeout=0.5,
    )
    memory = ConversationMemory(store, uuid.uuid4())
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as raised:
        await memory.save_message("user", "hello")
    with pytest.raises(StoreUnavailableError) as again:
        await memory.history()
    elapsed = time.monotonic() - started
    await store.aclose()
    assert elapsed < 3.0  # two operations, each bounded by connect_timeout (no retries)
    _assert_no_secret(
        _texts(raised.value), _texts(again.value), repr(store), repr(memory), caplog.text
    )
    assert "unavailable" in str(raised.value)


async def test_a_store_from_url_owns_its_client_and_a_given_client_is_left_open(
    supabase_server: Any,
) -> None:
    from supabase import acreate_client

    user = str(uuid.uuid4())
    owned = SupabaseMessageStore.from_url(
        supabase_server.url, supabase_server.anon_key, access_token=supabase_server.jwt_for(user)
    )
    async with owned:
        saved = await ConversationMemory(owned, user).save_message("user", "through from_url")
    assert saved.seq == 1
    assert repr(owned) == f"SupabaseMessageStore.from_url({supabase_server.url!r})"
    with pytest.raises(StoreUnavailableError, match="closed"):  # closed means closed
        await ConversationMemory(owned, user).history()

    client = await acreate_client(supabase_server.url, supabase_server.anon_key)
    client.postgrest.auth(supabase_server.jwt_for(user))
    try:
        async with SupabaseMessageStore(client) as borrowed:
            await ConversationMemory(borrowed, user).save_message("user", "borrowed client")
        # Closing the store left the app's client working.
        after = SupabaseMessageStore(client)
        history = await ConversationMemory(after, user).history()
        assert [m.content for m in history] == ["through from_url", "borrowed client"]
    finally:
        await client.postgrest.aclose()

    client = await acreate_client(supabase_server.url, supabase_server.anon_key)
    client.postgrest.auth(supabase_server.jwt_for(user))
    handed_over = SupabaseMessageStore(client, owns_client=True)
    assert len(await ConversationMemory(handed_over, user).history()) == 2
    await handed_over.aclose()
    assert client.postgrest.session.is_closed


async def test_unreachable_postgres_is_unavailable_within_connect_timeout_and_leaks_nothing(
    blackhole: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = PostgresMessageStore.from_url(
        f"postgresql://app:{SENTINEL}@127.0.0.1:{blackhole}/chat", connect_timeout=1.0
    )
    memory = ConversationMemory(store, uuid.uuid4())
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as raised:
        await memory.save_message("user", "hello")
    first = time.monotonic() - started
    # The circuit breaker is open now: the next call fails at once, without a second wait.
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as again:
        await memory.get_context()
    second = time.monotonic() - started
    await store.aclose()
    assert 0.9 <= first < 3.0
    assert second < 0.5
    assert "unreachable" in str(raised.value)
    _assert_no_secret(
        _texts(raised.value), _texts(again.value), repr(store), repr(memory), caplog.text
    )
    # One warning per outage, not one per attempt.
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) <= 2


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://app:{SENTINEL}@127.0.0.1:5432/db?sslmode=nonsense",
        f"host=127.0.0.1 password={SENTINEL} dbname",  # libpq's own error repeats the string
        f"postgresql://app:{SENTINEL}@[::1:5432/db",
    ],
)
async def test_a_malformed_connection_string_is_a_configuration_error_without_the_password(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    try:
        store = PostgresMessageStore(url, connect_timeout=1.0)
    except ConfigurationError as exc:
        error: BaseException = exc
    else:  # parsed, but the server refuses it: then a typed store error, still redacted
        with pytest.raises(StoreError) as raised:
            await store.open()
        error = raised.value
        _assert_no_secret(repr(store))
        await store.aclose()
    assert isinstance(error, ConversationMemoryError)
    _assert_no_secret(_texts(error), caplog.text)


async def test_a_missing_database_names_no_password(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from llm_common_testkit import replace_url

    caplog.set_level(logging.DEBUG)
    url = replace_url(postgres_url, user="postgres", password=SENTINEL, dbname="no_such_db_cm")
    store = PostgresMessageStore.from_url(url, connect_timeout=2.0)
    with pytest.raises(StoreUnavailableError) as raised:
        await store.open()
    await store.aclose()
    _assert_no_secret(_texts(raised.value), repr(store), caplog.text)


async def test_a_store_given_a_pool_never_closes_it_and_a_url_store_closes_its_own(
    postgres_db: str,
) -> None:
    from psycopg_pool import AsyncConnectionPool

    user = str(uuid.uuid4())
    async with AsyncConnectionPool(
        postgres_db, kwargs={"autocommit": True}, min_size=1, max_size=2, open=False
    ) as pool:
        async with PostgresMessageStore(pool=pool) as borrowed:
            await ConversationMemory(borrowed, user).save_message("user", "on the app's pool")
        assert not pool.closed
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "select count(*) from conversations where user_id = %s", (user,)
            )
            assert await cursor.fetchone() == (1,)

    owned = PostgresMessageStore.from_url(postgres_db)
    assert len(await ConversationMemory(owned, user).history()) == 1
    await owned.aclose()
    await owned.aclose()  # idempotent
    with pytest.raises(StoreUnavailableError, match="closed"):
        await ConversationMemory(owned, user).history()


def test_timeout_is_a_deprecated_alias_of_connect_timeout() -> None:
    with pytest.warns(DeprecationWarning, match="connect_timeout"):
        store = PostgresMessageStore("postgresql://app@127.0.0.1:1/x", timeout=1.5)
    assert store.connect_timeout == 1.5


async def test_a_database_without_the_migrations_says_which_command_creates_the_tables() -> None:
    from llm_common_testkit import (
        create_database,
        drop_database,
        new_database_name,
        require_postgres,
    )

    admin = require_postgres()
    name = new_database_name("cm_bare")
    url = create_database(admin, name)
    try:
        store = PostgresMessageStore.from_url(url)
        with pytest.raises(StoreError) as raised:
            await ConversationMemory(store, uuid.uuid4()).save_message("user", "hello")
        await store.aclose()
    finally:
        drop_database(admin, name)
    assert not isinstance(raised.value, StoreUnavailableError)
    assert "llm-common-db migrate --package conversation-memory" in str(raised.value)


async def test_an_app_client_pointed_at_a_dead_port_fails_at_once_without_retry_sleeps(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from supabase import acreate_client

    with socket.socket() as sock:  # a port nobody listens on: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    caplog.set_level(logging.DEBUG)
    client = await acreate_client(f"http://127.0.0.1:{port}", f"anon-{SENTINEL}")
    client.postgrest.auth(f"jwt-{SENTINEL}")
    store = SupabaseMessageStore(client)
    memory = ConversationMemory(store, uuid.uuid4())
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailableError) as raised:
            await memory.history()  # a GET: postgrest-py would retry it after 1, 2, 4 s sleeps
    finally:
        await client.postgrest.aclose()
    assert time.monotonic() - started < 1.0
    _assert_no_secret(_texts(raised.value), repr(store), caplog.text)


def test_a_supabase_url_with_credentials_is_shown_without_them() -> None:
    store = SupabaseMessageStore.from_url(
        f"https://admin:{SENTINEL}@project.supabase.co", f"key-{SENTINEL}"
    )
    assert repr(store) == "SupabaseMessageStore.from_url('https://***@project.supabase.co')"


async def test_a_supabase_write_cut_after_it_was_sent_says_it_may_have_been_stored() -> None:
    import asyncio

    async def read_then_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)  # the request arrived...
        writer.close()  # ...and the answer never comes

    server = await asyncio.start_server(read_then_hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    cut = SupabaseMessageStore.from_url(f"http://127.0.0.1:{port}", "anon", access_token="jwt")
    refused = SupabaseMessageStore.from_url(f"http://127.0.0.1:{closed}", "anon")
    try:
        with pytest.raises(StoreUnavailableError) as sent:
            await ConversationMemory(cut, uuid.uuid4()).save_message("user", "hello")
        with pytest.raises(StoreUnavailableError) as read:
            await ConversationMemory(cut, uuid.uuid4()).history()
        with pytest.raises(StoreUnavailableError) as never:
            await ConversationMemory(refused, uuid.uuid4()).save_message("user", "hello")
    finally:
        await cut.aclose()
        await refused.aclose()
        server.close()
        await server.wait_closed()
    assert sent.value.maybe_stored
    assert not read.value.maybe_stored  # a read stores nothing
    assert not never.value.maybe_stored
