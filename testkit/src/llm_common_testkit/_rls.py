"""Connect the way PostgREST does, so row-level security applies for real.

RLS is invisible to the table owner and to superusers, so these helpers connect as the non-owner
login role ``authenticator`` (created by db/'s core migration) and, per transaction, switch to
``authenticated`` (or another API role) with the JWT claims set, exactly like PostgREST.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg import sql

from ._urls import replace_url

API_ROLES = ("anon", "authenticated", "service_role")


def rls_conninfo(url: str) -> str:
    """Return ``url`` rewritten to log in as ``authenticator`` (non-owner, no RLS bypass).

    The password comes from ``$TEST_AUTHENTICATOR_PASSWORD`` when set; the default test server
    uses trust authentication and needs none.
    """
    return replace_url(
        url, user="authenticator", password=os.environ.get("TEST_AUTHENTICATOR_PASSWORD")
    )


def jwt_claims(
    user_id: str | uuid.UUID | None, role: str = "authenticated", **extra: Any
) -> dict[str, Any]:
    """The claims PostgREST would put in ``request.jwt.claims`` for ``user_id``."""
    claims: dict[str, Any] = {"role": role, **extra}
    if user_id is not None:
        claims["sub"] = str(user_id)
    return claims


def _setup_queries(role: str, claims: Mapping[str, Any]) -> tuple[sql.Composed, str]:
    if role not in API_ROLES:
        raise ValueError(f"role must be one of {API_ROLES}, not {role!r}")
    return sql.SQL("set local role {}").format(sql.Identifier(role)), json.dumps(dict(claims))


@asynccontextmanager
async def pg_as_user(
    url: str,
    user_id: str | uuid.UUID | None,
    *,
    role: str | None = None,
    claims: Mapping[str, Any] | None = None,
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """Open a connection acting as ``user_id`` for one transaction (async).

    Yields an open transaction in which ``role`` is set (``authenticated``, or ``anon`` when
    ``user_id`` is None) and ``request.jwt.claims`` holds ``{"sub": user_id, "role": role}`` —
    so ``auth.uid()`` returns ``user_id`` and RLS policies apply. The transaction commits when
    the block exits normally, rolls back on an exception. Committing inside the block ends the
    impersonation (``SET LOCAL`` is per transaction).

    Args:
        url: Database URL (as given by the ``postgres_db`` fixture).
        user_id: The ``sub`` claim; None acts as ``anon``.
        role: Override the API role (``anon``, ``authenticated``, ``service_role``).
        claims: Extra or replacement claims.
    """
    role = role or ("anon" if user_id is None else "authenticated")
    full_claims = {**jwt_claims(user_id, role), **(claims or {})}
    set_role, claims_json = _setup_queries(role, full_claims)
    async with await psycopg.AsyncConnection.connect(
        rls_conninfo(url), prepare_threshold=None
    ) as conn:
        await conn.execute(set_role)
        await conn.execute("select set_config('request.jwt.claims', %s, true)", (claims_json,))
        yield conn


@contextmanager
def pg_as_user_sync(
    url: str,
    user_id: str | uuid.UUID | None,
    *,
    role: str | None = None,
    claims: Mapping[str, Any] | None = None,
) -> Iterator[psycopg.Connection[Any]]:
    """Blocking form of :func:`pg_as_user`."""
    role = role or ("anon" if user_id is None else "authenticated")
    full_claims = {**jwt_claims(user_id, role), **(claims or {})}
    set_role, claims_json = _setup_queries(role, full_claims)
    with psycopg.connect(rls_conninfo(url), prepare_threshold=None) as conn:
        conn.execute(set_role)
        conn.execute("select set_config('request.jwt.claims', %s, true)", (claims_json,))
        yield conn


rls_user_connection = pg_as_user
