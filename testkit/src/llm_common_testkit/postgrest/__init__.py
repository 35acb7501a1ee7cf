"""A PostgREST-compatible loopback server so the real ``supabase`` client can reach real Postgres.

No PostgREST binary can be installed here, so this small ASGI app implements the part of
PostgREST's API that supabase-py sends (see /work/shared/TESTING.md): table reads with filters,
order, limit/offset and ``count=exact``; inserts, upserts, updates and deletes with
``Prefer: return=...``; ``rpc`` calls with named arguments; ``.single()``; HS256 JWT auth with
``SET LOCAL ROLE`` + ``request.jwt.claims`` per request, so RLS and SQL functions run for real.
"""

from ._server import SupabaseServer

__all__ = ["SupabaseServer"]
