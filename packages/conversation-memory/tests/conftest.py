"""Backends for the contract suite: local SQLite, PostgreSQL and Supabase over the same tests.

Each backend hands out stores acting as one user (per-user mode wherever the backend has one:
PostgreSQL through the non-owner ``authenticator`` role with JWT claims, Supabase with the user's
JWT) and an owner/service store, and counts a user's rows directly as the owner (RLS cannot hide
anything from that count).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conversation_memory import LocalMessageStore, MessageStore, PostgresMessageStore

_TABLES = ("conversations", "conversation_summaries", "conversation_counters")


@dataclass
class Backend:
    """One backend under test."""

    name: str
    _make: Callable[[str | None], Awaitable[MessageStore]]
    _count: Callable[[str], Awaitable[dict[str, int]]]
    child_spec: Callable[[str], dict[str, Any]]
    _stores: list[MessageStore] = field(default_factory=list)
    _clients: list[Any] = field(default_factory=list)
    _roots: list[MessageStore] = field(default_factory=list)
    url: str | None = None  # owner URL of the database (PostgreSQL and Supabase)
    server: Any = None  # the PostgREST-compatible server (Supabase)

    async def store_for(self, user_id: str) -> MessageStore:
        """A store acting as ``user_id`` (RLS applies on PostgreSQL and Supabase)."""
        store = await self._make(user_id)
        self._stores.append(store)
        return store

    async def service_store(self) -> MessageStore:
        """An owner / service-role store (sees every user)."""
        store = await self._make(None)
        self._stores.append(store)
        return store

    async def rows_of(self, user_id: str) -> dict[str, int]:
        """Rows of ``user_id`` per table, counted as the database owner."""
        return await self._count(user_id)

    async def close(self) -> None:
        for store in [*self._stores, *self._roots]:
            await store.aclose()
        for client in self._clients:  # the app owns Supabase clients, so the test closes them
            await client.postgrest.aclose()


def new_user() -> str:
    return str(uuid.uuid4())


def _local(tmp_path: Path) -> Backend:
    path = tmp_path / "memory.sqlite3"

    async def make(user_id: str | None) -> MessageStore:
        return LocalMessageStore(path)

    async def count(user_id: str) -> dict[str, int]:
        with sqlite3.connect(path) as db:
            return {
                t: db.execute(f"SELECT count(*) FROM {t} WHERE user_id = ?", (user_id,)).fetchone()[
                    0
                ]
                for t in _TABLES
            }

    return Backend("local", make, count, lambda user_id: {"kind": "local", "path": str(path)})


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


def _postgres(url: str) -> Backend:
    from llm_common_testkit import rls_conninfo

    roots: list[PostgresMessageStore] = []

    async def make(user_id: str | None) -> MessageStore:
        if user_id is None:
            store = PostgresMessageStore(url, max_size=20)
            await store.open()
            return store
        # Non-owner login role; each store below is a per-user view of its own pool.
        root = PostgresMessageStore(rls_conninfo(url), max_size=20)
        await root.open()
        roots.append(root)
        return root.as_user(user_id)

    def spec(user_id: str) -> dict[str, Any]:
        return {"kind": "postgres", "url": rls_conninfo(url)}

    return Backend(
        "postgres", make, lambda user_id: _owner_count(url, user_id), spec, url=url, _roots=roots
    )


def _supabase(server: Any, url: str) -> Backend:
    from conversation_memory import SupabaseMessageStore

    clients: list[Any] = []

    async def make(user_id: str | None) -> MessageStore:
        from supabase import acreate_client

        if user_id is None:
            client = await acreate_client(server.url, server.service_key)
        else:
            client = await acreate_client(server.url, server.anon_key)
            client.postgrest.auth(server.jwt_for(user_id))
        clients.append(client)
        return SupabaseMessageStore(client)

    def spec(user_id: str) -> dict[str, Any]:
        return {
            "kind": "supabase",
            "url": server.url,
            "key": server.anon_key,
            "jwt": server.jwt_for(user_id),
        }

    return Backend(
        "supabase",
        make,
        lambda user_id: _owner_count(url, user_id),
        spec,
        _clients=clients,
        url=url,
        server=server,
    )


@pytest.fixture(params=["local", "postgres", "supabase"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each backend in turn (PostgreSQL and Supabase get a private migrated database)."""
    if request.param == "local":
        chosen = _local(tmp_path)
    elif request.param == "postgres":
        chosen = _postgres(request.getfixturevalue("postgres_db"))
    else:
        server = request.getfixturevalue("supabase_server")
        chosen = _supabase(server, request.getfixturevalue("postgres_db"))
    yield chosen
    await chosen.close()


@pytest.fixture(params=["postgres", "supabase"])
async def rls_backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """The backends where the database itself enforces per-user isolation."""
    url = request.getfixturevalue("postgres_db")
    if request.param == "postgres":
        chosen = _postgres(url)
    else:
        chosen = _supabase(request.getfixturevalue("supabase_server"), url)
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
async def postgres_backend(postgres_db: str) -> AsyncIterator[Backend]:
    """The PostgreSQL backend alone."""
    chosen = _postgres(postgres_db)
    yield chosen
    await chosen.close()


@pytest.fixture
async def supabase_backend(postgres_db: str, supabase_server: Any) -> AsyncIterator[Backend]:
    """The Supabase backend alone."""
    chosen = _supabase(supabase_server, postgres_db)
    yield chosen
    await chosen.close()
