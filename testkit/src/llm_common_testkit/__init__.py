"""Shared test fixtures for the llm-common workspace (never published).

The pytest plugin (:mod:`llm_common_testkit.plugin`) loads automatically and provides the
``postgres_url``, ``postgres_db``, ``pg_as_user``, ``tcp_proxy`` and ``supabase_server`` fixtures;
the helpers below are importable for tests that need them directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._databases import create_database, drop_database, new_database_name
from ._proxy import TcpProxy
from ._rls import jwt_claims, pg_as_user, pg_as_user_sync, rls_conninfo, rls_user_connection
from ._urls import replace_url, test_database_url
from .plugin import postgres_required, require_postgres

if TYPE_CHECKING:
    from .postgrest import SupabaseServer

__all__ = [
    "SupabaseServer",
    "TcpProxy",
    "create_database",
    "drop_database",
    "jwt_claims",
    "new_database_name",
    "pg_as_user",
    "pg_as_user_sync",
    "postgres_required",
    "replace_url",
    "require_postgres",
    "rls_conninfo",
    "rls_user_connection",
    "test_database_url",
]


def __getattr__(name: str) -> Any:
    # The PostgREST server pulls in starlette/uvicorn: import it only when asked for.
    if name == "SupabaseServer":
        from .postgrest import SupabaseServer

        return SupabaseServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
