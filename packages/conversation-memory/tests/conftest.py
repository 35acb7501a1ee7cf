"""Backends for the contract suite: local SQLite, PostgreSQL and Supabase over the same tests.

Each backend hands out stores acting as one user (per-user mode wherever the backend has one:
PostgreSQL through the non-owner ``authenticator`` role with JWT claims, Supabase with the user's
JWT) and an owner/service store, and counts a user's rows directly as the owner (RLS cannot hide
anything from that count).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conversation_memory import LocalMessageStore, MessageStore, PostgresMessageStore
from llm_common_testkit.contract import CheckEnv, ContractBackend, StoreContract

_TABLES = ("conversations", "conversation_summaries", "conversation_counters")


async def _local(tmp_path: Path, user_id: str | None = None) -> MessageStore:
    return LocalMessageStore(tmp_path / "memory.sqlite3")


async def _postgres(url: str, user_id: str | None = None) -> AsyncIterator[MessageStore]:
    if user_id is None:  # the owner: sees every user
        store = PostgresMessageStore(url, max_size=20)
        await store.open()
        yield store
        return
    # Non-owner login role; the store is a per-user view of its own pool.
    from llm_common_testkit import rls_conninfo

    root = PostgresMessageStore(rls_conninfo(url), max_size=20)
    await root.open()
    yield root.as_user(user_id)
    await root.aclose()


async def _supabase(server: Any, url: str, user_id: str | None = None) -> AsyncIterator[Any]:
    from conversation_memory import SupabaseMessageStore
    from supabase import acreate_client

    if user_id is None:
        client = await acreate_client(server.url, server.service_key)
    else:
        client = await acreate_client(server.url, server.anon_key)
        client.postgrest.auth(server.jwt_for(user_id))
    yield SupabaseMessageStore(client)
    await client.postgrest.aclose()  # the app owns Supabase clients, so the test closes them


async def _exercise(store: MessageStore) -> None:
    await store.history(str(uuid.UUID(int=0)), "contract-probe", 1, None)


CONTRACT = StoreContract(
    package="conversation-memory",
    local=_local,
    postgres=_postgres,
    supabase=_supabase,
    exercise=_exercise,
    local_file=lambda tmp_path: tmp_path / "memory.sqlite3",
    unavailable_error="conversation_memory.StoreUnavailableError",
    corrupt_error="conversation_memory.StoreCorruptError",
)
contract_backend, store_contract = CONTRACT.fixtures()


@dataclass
class Backend:
    """One backend under test, on the contract harness (which closes every store it built)."""

    handle: ContractBackend

    @property
    def name(self) -> str:
        return self.handle.kind

    @property
    def url(self) -> str | None:
        """Owner URL of the database (PostgreSQL and Supabase)."""
        return self.handle.url

    @property
    def server(self) -> Any:
        """The PostgREST-compatible server (Supabase)."""
        return self.handle.server

    async def store_for(self, user_id: str) -> MessageStore:
        """A store acting as ``user_id`` (RLS applies on PostgreSQL and Supabase)."""
        store: MessageStore = await self.handle.new_store(user_id=user_id)
        return store

    async def service_store(self) -> MessageStore:
        """An owner / service-role store (sees every user)."""
        store: MessageStore = await self.handle.new_store()
        return store

    async def rows_of(self, user_id: str) -> dict[str, int]:
        """Rows of ``user_id`` per table, counted as the database owner."""
        if self.url is None:
            return _local_count(self.handle.tmp_path / "memory.sqlite3", user_id)
        return await _owner_count(self.url, user_id)

    def child_spec(self, user_id: str) -> dict[str, Any]:
        """How a child process builds the same store (see ``_child.py``)."""
        if self.name == "local":
            return {"kind": "local", "path": str(self.handle.tmp_path / "memory.sqlite3")}
        assert self.url is not None
        if self.name == "postgres":
            from llm_common_testkit import rls_conninfo

            return {"kind": "postgres", "url": rls_conninfo(self.url)}
        return {
            "kind": "supabase",
            "url": self.server.url,
            "key": self.server.anon_key,
            "jwt": self.server.jwt_for(user_id),
        }

    async def close(self) -> None:
        await self.handle.aclose()


def new_user() -> str:
    return str(uuid.uuid4())


def _local_count(path: Path, user_id: str) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return {
            t: db.execute(f"SELECT count(*) FROM {t} WHERE user_id = ?", (user_id,)).fetchone()[0]
            for t in _TABLES
        }


async def _owner_count(url: str, user_id: str) -> dict[str, int]:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url) as conn:
        counts = {}
        for table in _TABLES:
            cursor = await conn.execute(
                f"select count(*) from {table} where user_id = %s", (user_id,)
            )
            row = await cursor.fetchone()
            assert row is not None
            counts[table] = row[0]
        return counts


@pytest.fixture
def backend(contract_backend: ContractBackend) -> Backend:
    """Each backend in turn (PostgreSQL and Supabase get a private migrated database)."""
    return Backend(contract_backend)


def _one(kind: Any, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    handle = ContractBackend(CONTRACT, kind, CheckEnv(request, tmp_path))
    handle.url  # noqa: B018 - provision the database now, during fixture setup
    return Backend(handle)


@pytest.fixture(params=["postgres", "supabase"])
async def rls_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """The backends where the database itself enforces per-user isolation."""
    chosen = _one(request.param, request, tmp_path)
    yield chosen
    await chosen.close()


# supabase-py 2.x warns about its own internals (it passes a deprecated ``timeout`` to postgrest
# when building the client); nothing in this package can change that, so exactly those are ignored.
_SUPABASE_WARNINGS = (
    "ignore:The 'timeout' parameter is deprecated:DeprecationWarning",
    "ignore:The 'verify' parameter is deprecated:DeprecationWarning",
    "ignore:The 'proxy' parameter is deprecated:DeprecationWarning",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees every collected item of the session: touch only this package's tests.
    here = Path(__file__).parent
    for item in items:
        if "supabase" in item.nodeid and item.path.is_relative_to(here):
            for spec in _SUPABASE_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.fixture
async def postgres_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Backend]:
    """The PostgreSQL backend alone."""
    chosen = _one("postgres", request, tmp_path)
    yield chosen
    await chosen.close()


@pytest.fixture
async def supabase_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Backend]:
    """The Supabase backend alone."""
    chosen = _one("supabase", request, tmp_path)
    yield chosen
    await chosen.close()
