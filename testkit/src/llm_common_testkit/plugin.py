"""Pytest plugin (pytest11 entry point): PostgreSQL and Supabase fixtures for every package.

Fixtures:
    postgres_url (session): a fresh database with every db/ migration applied; dropped at the end.
    postgres_db (function): a private clone of that migrated database for one test (~25 ms).
    pg_as_user (function): ``pg_as_user(url, user_id)`` — see :func:`llm_common_testkit.pg_as_user`.
    tcp_proxy (function): a started :class:`~llm_common_testkit.TcpProxy` in front of the server.
    supabase_server (function): a PostgREST-compatible server over a fresh ``postgres_db``.
    span_recorder (function): a :class:`~llm_common_testkit.tracing.SpanRecorder` (an
        OpenTelemetry SDK tracer provider with an in-memory exporter; needs
        ``opentelemetry-sdk``).

Policy when PostgreSQL does not answer at ``$TEST_DATABASE_URL``: the test fails if
``LLM_COMMON_REQUIRE_POSTGRES=1`` or ``CI`` is set (CI must never skip silently), else it is
skipped with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from ._databases import (
    ClonePool,
    check_server,
    create_database,
    drop_database,
    drop_template,
    mark_template,
    new_database_name,
    reap_leftover_roles,
    reap_leftovers,
)
from ._proxy import TcpProxy
from ._rls import pg_as_user as _pg_as_user
from ._urls import replace_url, test_database_url

if TYPE_CHECKING:
    from .postgrest import SupabaseServer

_unavailable: list[str | None] = []


def postgres_required() -> bool:
    """Whether a missing PostgreSQL must fail tests instead of skipping them."""
    flag = os.environ.get("LLM_COMMON_REQUIRE_POSTGRES", "").strip().lower()
    return flag not in ("", "0", "false", "no") or bool(os.environ.get("CI"))


def require_postgres() -> str:
    """Return ``$TEST_DATABASE_URL`` if the server answers; otherwise skip or fail the test."""
    url = test_database_url()
    if not _unavailable:
        _unavailable.append(check_server(url))
    reason = _unavailable[0]
    if reason is not None:
        where = replace_url(url, password=None)
        message = f"{reason} at {where}; set TEST_DATABASE_URL or start PostgreSQL"
        if postgres_required():
            pytest.fail(f"{message} (required: LLM_COMMON_REQUIRE_POSTGRES/CI is set)")
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def _llmc_template() -> Iterator[tuple[str, str]]:
    """(admin URL, name) of this session's migrated template database."""
    from llm_common_db import migrate_sync

    admin = require_postgres()
    reap_leftovers(admin)
    reap_leftover_roles(admin)
    name = new_database_name("_tpl")
    url = create_database(admin, name)
    try:
        migrate_sync(url)
        mark_template(admin, name)
        yield admin, name
    finally:
        drop_template(admin, name)


@pytest.fixture(scope="session")
def _llmc_clones(_llmc_template: tuple[str, str]) -> Iterator[ClonePool]:
    """Creates per-test clones ahead of time and drops used ones in the background."""
    pool = ClonePool(*_llmc_template)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def postgres_url(_llmc_template: tuple[str, str]) -> Iterator[str]:
    """URL of a database with every db/ migration applied, shared by the whole session.

    It is a clone of a template database nobody connects to, so tests may keep connections to it
    while ``postgres_db`` keeps cloning the template.
    """
    admin, template = _llmc_template
    name = new_database_name()
    url = create_database(admin, name, template=template)
    yield url
    drop_database(admin, name)


@pytest.fixture
def postgres_db(_llmc_clones: ClonePool) -> Iterator[str]:
    """URL of a private, freshly migrated database for this test; dropped afterwards.

    Connections still open to it when the test ends are terminated by the drop.
    """
    name = _llmc_clones.acquire()
    yield replace_url(_llmc_clones.admin_url, dbname=name)
    _llmc_clones.release(name)


@pytest.fixture
def pg_as_user() -> Callable[..., Any]:
    """The :func:`llm_common_testkit.pg_as_user` helper, as a fixture for convenience."""
    return _pg_as_user


@pytest.fixture
def tcp_proxy() -> Iterator[TcpProxy]:
    """A started TcpProxy in front of the test server; use ``tcp_proxy.url_for(postgres_db)``."""
    with TcpProxy.for_url(require_postgres()) as proxy:
        yield proxy


@pytest.fixture
def supabase_server(postgres_db: str) -> Iterator[SupabaseServer]:
    """A PostgREST-compatible server (real HTTP on 127.0.0.1) over this test's database."""
    from .postgrest import SupabaseServer

    with SupabaseServer(postgres_db) as server:
        yield server


@pytest.fixture
def span_recorder() -> Iterator[Any]:
    """An OpenTelemetry tracer provider whose finished spans stay in memory (see tracing.py)."""
    from .tracing import SpanRecorder

    recorder = SpanRecorder()
    yield recorder
    recorder.close()
