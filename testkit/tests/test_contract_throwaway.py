"""A throwaway backend added the way the README's "Add a storage backend" says, and the generic
contract run against it; then deliberately broken backends that the harness must catch.

The toy protocol is a key/value store: ``get``, ``put``, ``aclose``. Its three backends are
small but real: a JSON file, a table through ``llm_common_db.PostgresPool``, and the same table
through the real supabase client and the loopback PostgREST server.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

import httpx
import psycopg
import pytest
from llm_common_db import DatabaseUnavailableError, PostgresPool, redact_conninfo
from llm_common_testkit import SupabaseServer
from llm_common_testkit.contract import (
    CheckEnv,
    ContractBackend,
    ContractViolation,
    GenericStoreContract,
    StoreContract,
    _run,
    check_aclose_idempotent,
    check_corrupt_local_file,
    check_hung_database_fails_fast,
    check_no_secret,
    check_unreachable,
)

# -- step 1: the protocol and the package's errors ---------------------------------------------


class ToyError(Exception):
    """The toy package's base error."""


class ToyStoreError(ToyError):
    """Storage failed."""


class ToyUnavailableError(ToyStoreError):
    """The database cannot be reached."""


class ToyCorruptError(ToyStoreError):
    """The local file is not a valid store."""


class KVStore(Protocol):
    async def get(self, key: str) -> str | None: ...
    async def put(self, key: str, value: str) -> None: ...
    async def aclose(self) -> None: ...


# -- step 2: the backends ----------------------------------------------------------------------


class LocalKV:
    """A JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ToyCorruptError(
                f"{self.path} is not a valid toy store: move it aside; it will be recreated"
            ) from None
        if not isinstance(data, dict):
            raise ToyCorruptError(f"{self.path} is not a valid toy store")
        return data

    async def get(self, key: str) -> str | None:
        return (await asyncio.to_thread(self._load)).get(key)

    async def put(self, key: str, value: str) -> None:
        def write() -> None:
            data = self._load()
            data[key] = value
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(data))

        await asyncio.to_thread(write)

    async def aclose(self) -> None:
        return None


_TABLE = "create table if not exists public.toy_kv (key text primary key, value text not null)"


class PostgresKV:
    """A table, through the shared PostgresPool (which owns its pool: built from a URL)."""

    def __init__(self, url: str, *, connect_timeout: float = 2.0) -> None:
        self._pg = PostgresPool.from_url(url, connect_timeout=connect_timeout, package="toy")

    def __repr__(self) -> str:
        return f"PostgresKV({self._pg.display!r})"

    async def _run(self, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        try:
            async with self._pg.connection() as conn:
                await conn.execute(_TABLE)
                cur = await conn.execute(query, params)
                return await cur.fetchall() if cur.description else []
        except DatabaseUnavailableError as exc:
            raise ToyUnavailableError(str(exc)) from exc
        except psycopg.Error as exc:
            raise ToyStoreError(type(exc).__name__) from None

    async def get(self, key: str) -> str | None:
        rows = await self._run("select value from public.toy_kv where key = %s", (key,))
        return str(rows[0][0]) if rows else None

    async def put(self, key: str, value: str) -> None:
        await self._run(
            "insert into public.toy_kv values (%s, %s) "
            "on conflict (key) do update set value = excluded.value",
            (key, value),
        )

    async def aclose(self) -> None:
        await self._pg.aclose()


class SupabaseKV:
    """The same table through the real supabase client (the app owns the client)."""

    def __init__(self, client: Any) -> None:
        self._table = client.table("toy_kv")

    def __repr__(self) -> str:
        return "SupabaseKV()"

    async def _call(self, request: Any) -> Any:
        try:
            return (await request.execute()).data
        except httpx.TransportError as exc:
            raise ToyUnavailableError(
                f"the Supabase API is unreachable ({type(exc).__name__})"
            ) from exc
        except Exception as exc:
            raise ToyStoreError(type(exc).__name__) from None

    async def get(self, key: str) -> str | None:
        rows = await self._call(self._table.select("value").eq("key", key))
        return str(rows[0]["value"]) if rows else None

    async def put(self, key: str, value: str) -> None:
        await self._call(self._table.upsert({"key": key, "value": value}))

    async def aclose(self) -> None:
        return None


# -- step 3: register the factories once -------------------------------------------------------


def local_factory(tmp_path: Path) -> LocalKV:
    return LocalKV(tmp_path / "toy.json")


def postgres_factory(url: str) -> PostgresKV:
    return PostgresKV(url)


async def supabase_factory(server: SupabaseServer, url: str) -> AsyncIterator[SupabaseKV]:
    from supabase import AsyncClientOptions, acreate_client

    with psycopg.connect(url, autocommit=True) as conn:  # as the owner: table + grants
        conn.execute(_TABLE)
        conn.execute("grant all on public.toy_kv to service_role")
    async with httpx.AsyncClient(timeout=2.0) as http:
        options = AsyncClientOptions(httpx_client=http)
        client = await acreate_client(server.url, server.service_key, options=options)
        yield SupabaseKV(client)


async def exercise(store: KVStore) -> None:
    await store.put("probe", "1")
    assert await store.get("probe") == "1"


TOY = StoreContract(
    package="toy",
    local=local_factory,
    postgres=postgres_factory,
    supabase=supabase_factory,
    exercise=exercise,
    local_file=lambda tmp_path: tmp_path / "toy.json",
    unavailable_error=ToyUnavailableError,
    corrupt_error=ToyCorruptError,
    connect_timeout=2.0,
)
contract_backend, store_contract = TOY.fixtures()


# -- step 4: the package's own contract tests use the fixture; the generic ones come free ------


async def test_round_trip_on_every_backend(contract_backend: ContractBackend) -> None:
    store = await contract_backend.new_store()
    assert await store.get("a") is None
    await store.put("a", "1")
    await store.put("a", "2")
    other = await contract_backend.new_store()  # a second handle on the same storage
    assert await other.get("a") == "2"


class TestToyContract(GenericStoreContract):
    """aclose, secrets, unreachable database, corrupt local file: all against the toy."""


# -- broken backends: the harness must catch each -----------------------------------------------


class LeakyPostgresKV(PostgresKV):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._url = url

    def __repr__(self) -> str:
        return f"LeakyPostgresKV({self._url!r})"


class RawCorruptLocalKV(LocalKV):
    def _load(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        data: dict[str, str] = json.loads(self.path.read_bytes())  # raw JSONDecodeError escapes
        return data


class UnwrappedPostgresKV(PostgresKV):
    async def _run(self, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        async with self._pg.connection() as conn:  # DatabaseUnavailableError escapes as is
            await conn.execute(_TABLE)
            cur = await conn.execute(query, params)
            return await cur.fetchall() if cur.description else []


class CloseOnceLocalKV(LocalKV):
    closed = False

    async def aclose(self) -> None:
        if self.closed:
            raise RuntimeError("already closed")
        self.closed = True


@pytest.fixture
async def variant(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[..., ContractBackend]]:
    """``variant(kind, **overrides)``: the toy registration with some fields swapped."""
    made: list[ContractBackend] = []

    def make(kind: Any, **over: Any) -> ContractBackend:
        contract = StoreContract(**{**TOY.__dict__, **over})
        backend = ContractBackend(contract, kind, CheckEnv(request, tmp_path / str(len(made))))
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.aclose()


class LeakyErrors(PostgresKV):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._url = url

    async def _run(self, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return await super()._run(query, params)
        except ToyUnavailableError:
            raise ToyUnavailableError(f"cannot reach {self._url}") from None


class VagueLocalKV(LocalKV):
    def _load(self) -> dict[str, str]:
        try:
            return super()._load()
        except ToyCorruptError:
            raise ToyCorruptError("corrupt") from None


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (LeakyPostgresKV, r"toy \(postgres\): the database password appears in repr\(store\)"),
        (LeakyErrors, r"the database password appears in the ToyUnavailableError"),
    ],
)
async def test_harness_catches_a_leaked_password(
    variant: Callable[..., ContractBackend], factory: Any, message: str
) -> None:
    with pytest.raises(ContractViolation, match=message):
        await check_no_secret(variant("postgres", postgres=factory))


@pytest.mark.parametrize(
    ("local", "message"),
    [
        (RawCorruptLocalKV, r"raised json\.decoder\.JSONDecodeError"),
        (VagueLocalKV, "ToyCorruptError does not name the file"),
    ],
)
async def test_harness_catches_a_bad_corrupt_file_error(
    variant: Callable[..., ContractBackend], local: Any, message: str
) -> None:
    backend = variant("local", local=lambda p: local(p / "toy.json"))
    with pytest.raises(ContractViolation, match=message):
        await check_corrupt_local_file(backend)


class RecoveringLocalKV(LocalKV):
    """Recovers from a corrupt file: moves it aside (nothing lost) and warns, or not."""

    keep, warn = True, True

    def _load(self) -> dict[str, str]:
        try:
            return super()._load()
        except ToyCorruptError:
            aside = self.path.with_name(self.path.name + ".corrupt")
            if self.keep:
                self.path.rename(aside)
            else:
                self.path.unlink()
            if self.warn:
                logging.getLogger("toy").warning("%s was corrupt: moved to %s", self.path, aside)
            return {}


class OverwritingLocalKV(RecoveringLocalKV):
    keep = False


class SilentLocalKV(RecoveringLocalKV):
    warn = False


async def test_a_recovery_that_keeps_the_file_and_warns_passes(
    variant: Callable[..., ContractBackend],
) -> None:
    await check_corrupt_local_file(
        variant("local", local=lambda p: RecoveringLocalKV(p / "toy.json"))
    )


@pytest.mark.parametrize(
    ("local", "message"),
    [
        (OverwritingLocalKV, "not kept aside either"),
        (SilentLocalKV, "without a warning naming the file"),
    ],
)
async def test_harness_catches_a_lossy_or_silent_recovery(
    variant: Callable[..., ContractBackend], local: Any, message: str
) -> None:
    backend = variant("local", local=lambda p: local(p / "toy.json"))
    with pytest.raises(ContractViolation, match=message):
        await check_corrupt_local_file(backend)


@pytest.mark.postgres
async def test_harness_catches_an_untranslated_outage(
    variant: Callable[..., ContractBackend],
) -> None:
    with pytest.raises(
        ContractViolation, match=r"expected .*ToyUnavailableError, got llm_common_db\."
    ):
        await check_unreachable(variant("postgres", postgres=UnwrappedPostgresKV))


class NoBreakerPostgresKV(PostgresKV):
    """A fresh pool per call: every call to a hung server waits the whole timeout again."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._url = url

    async def _run(self, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        await self._pg.aclose()
        self._pg = PostgresPool.from_url(self._url, connect_timeout=2.0, package="toy")
        return await super()._run(query, params)


@pytest.mark.postgres
async def test_harness_catches_a_missing_circuit_breaker(
    variant: Callable[..., ContractBackend],
) -> None:
    backend = variant("postgres", postgres=NoBreakerPostgresKV)
    with pytest.raises(ContractViolation, match=r"call 2 to a hung server took [12]\.\d s"):
        await check_hung_database_fails_fast(backend)


async def test_harness_catches_a_second_aclose_that_raises(
    variant: Callable[..., ContractBackend],
) -> None:
    backend = variant("local", local=lambda p: CloseOnceLocalKV(p / "t.json"))
    with pytest.raises(ContractViolation, match="the second aclose"):
        await check_aclose_idempotent(backend)


async def test_missing_error_class_is_reported_by_name(
    variant: Callable[..., ContractBackend],
) -> None:
    backend = variant("local", corrupt_error="toy_pkg.StoreCorruptError")
    with pytest.raises(ContractViolation, match=r"toy_pkg\.StoreCorruptError does not exist yet"):
        await check_corrupt_local_file(backend)


async def test_known_gaps_are_strict(variant: Callable[..., ContractBackend]) -> None:
    gap = {"corrupt_local_file": "raw JSON errors until the toy wraps them"}
    local = lambda p: RawCorruptLocalKV(p / "toy.json")  # noqa: E731
    broken = variant("local", local=local, known_gaps=gap)
    with pytest.raises(pytest.xfail.Exception, match="known gap in toy: raw JSON errors"):
        await _run(broken.contract, "corrupt_local_file", None, check_corrupt_local_file(broken))
    fixed = variant("local", known_gaps=gap)
    with pytest.raises(pytest.fail.Exception, match="remove it from the known_gaps"):
        await _run(fixed.contract, "corrupt_local_file", None, check_corrupt_local_file(fixed))


def test_redacted_display_is_what_the_toy_shows() -> None:
    store = PostgresKV("postgresql://toy:pw-123456@127.0.0.1:1/toy")
    assert (
        repr(store)
        == f"PostgresKV({redact_conninfo('postgresql://toy:pw-123456@127.0.0.1:1/toy')!r})"
    )
    assert "pw-123456" not in repr(store)
