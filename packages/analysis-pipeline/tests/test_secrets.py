"""Connection secrets never show; an unreachable database fails fast, once per outage."""

from __future__ import annotations

import logging
import time

import pytest
from analysis_pipeline import (
    ConfigurationError,
    PostgresRunStore,
    RunStoreError,
    StoreUnavailableError,
)

SECRET = "s3cret-pw"


async def test_unreachable_database_is_a_quick_redacted_typed_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    store = PostgresRunStore(
        f"postgresql://app:{SECRET}@127.0.0.1:1/db", connect_timeout=0.5, breaker_interval=60
    )
    assert SECRET not in repr(store)
    assert store.owns_pool
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as failed:
        await store.list_runs()
    assert time.monotonic() - started < 3
    assert isinstance(failed.value, RunStoreError)  # the 0.1 name still catches it
    second = time.monotonic()
    for _ in range(5):  # the breaker is open: at once, no new connect attempts or log lines
        with pytest.raises(StoreUnavailableError):
            await store.get_run("00000000-0000-4000-8000-000000000000")
    assert time.monotonic() - second < 0.5
    await store.aclose()
    chain: list[BaseException] = []
    err: BaseException | None = failed.value
    while err is not None:
        chain.append(err)
        err = err.__cause__ or err.__context__
    assert all(SECRET not in str(e) for e in chain)
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) <= 1, [r.getMessage() for r in warnings]


def test_a_malformed_connection_string_is_a_configuration_error_without_it() -> None:
    with pytest.raises(ConfigurationError) as failed:
        PostgresRunStore(f"host=db user=app password={SECRET} port")
    assert SECRET not in str(failed.value)


async def test_a_given_pool_is_never_closed(postgres_db: str) -> None:
    from psycopg_pool import AsyncConnectionPool

    async with AsyncConnectionPool(
        postgres_db, min_size=1, open=False, kwargs={"autocommit": True}
    ) as pool:
        store = PostgresRunStore(pool=pool)
        assert not store.owns_pool
        assert await store.list_runs() == []
        await store.aclose()
        assert not pool.closed
        owned = PostgresRunStore.from_url(postgres_db)
        assert owned.owns_pool
        assert await owned.list_runs() == []
        await owned.aclose()


async def test_supabase_store_unreachable_is_a_quick_typed_error() -> None:
    import socket
    import warnings

    from analysis_pipeline import SupabaseRunStore

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"supabase.*")
        store = await SupabaseRunStore.connect(
            f"http://127.0.0.1:{port}", f"key-{SECRET}", connect_timeout=1.0
        )
    assert store.owns_client
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as failed:
        await store.list_runs()
    assert time.monotonic() - started < 3
    assert SECRET not in str(failed.value)
    await store.aclose()


async def test_supabase_store_bounds_a_client_that_retries() -> None:
    import socket
    import warnings

    from analysis_pipeline import SupabaseRunStore
    from supabase import acreate_client

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with warnings.catch_warnings():  # the app's client, with postgrest-py's default retries
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"supabase.*")
        client = await acreate_client(f"http://127.0.0.1:{port}", "service-key")
    store = SupabaseRunStore(client, connect_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        await store.get_model_configs()
    assert time.monotonic() - started < 2.5
    await store.aclose()
    await client.postgrest.aclose()
