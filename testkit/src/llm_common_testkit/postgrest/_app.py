"""The ASGI app: PostgREST's table and RPC endpoints over a real PostgreSQL database.

Every request runs in ONE transaction that first does ``SET LOCAL ROLE <jwt role>`` and
``set_config('request.jwt.claims', ...)`` — as PostgREST does — on a pool connected as the
non-owner ``authenticator`` role, so grants, row-level security and ``auth.uid()`` apply for real.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._errors import ApiError, from_database
from ._mutations import delete_rows, insert_rows, update_rows
from ._query import parse_query
from ._rpc import call_function

API_ROLES = ("anon", "authenticated", "service_role")
OBJECT_MEDIA = "application/vnd.pgrst.object+json"
Conn = psycopg.AsyncConnection[Any]


@dataclass
class Ctx:
    """What a handler needs to know about the request beyond the SQL."""

    request: Request
    role: str
    prefer: dict[str, str] = field(default_factory=dict)

    @property
    def single(self) -> bool:
        """The client asked for one object (``.single()``)."""
        return self.request.headers.get("accept", "").startswith(OBJECT_MEDIA)

    @property
    def strip_nulls(self) -> bool:
        """``Accept: ...;nulls=stripped``."""
        return "nulls=stripped" in self.request.headers.get("accept", "")

    @property
    def wants_count(self) -> bool:
        """``Prefer: count=exact|planned|estimated`` (all answered exactly here)."""
        return "count" in self.prefer


@dataclass
class Result:
    """Rows produced by a statement, as JSON text straight from PostgreSQL."""

    array: str = "[]"
    first: str | None = None
    rows: int = 0
    total: int | None = None
    offset: int = 0


def parse_prefer(header: str) -> dict[str, str]:
    """``Prefer: return=representation,count=exact`` → dict."""
    prefs: dict[str, str] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key:
            prefs[key] = value
    return prefs


def respond(ctx: Ctx, result: Result | None, status: int = 200, *, body: bool = True) -> Response:
    """Shape a result like PostgREST: a JSON array, one object (``.single()``) or no body."""
    headers: dict[str, str] = {}
    if result is not None and (ctx.wants_count or ctx.request.method in ("GET", "HEAD")):
        total = "*" if result.total is None else str(result.total)
        span = f"{result.offset}-{result.offset + result.rows - 1}" if result.rows else "*"
        headers["Content-Range"] = f"{span}/{total}"
    if result is None or not body:
        return Response(status_code=204 if status == 200 else status, headers=headers)
    content = result.array
    media = "application/json"
    if ctx.single:
        if result.rows != 1:
            raise ApiError(
                406,
                "PGRST116",
                "JSON object requested, multiple (or no) rows returned",
                f"The result contains {result.rows} rows",
            )
        content, media = result.first or "null", OBJECT_MEDIA
    if ctx.request.method == "HEAD":
        content = ""
    return Response(content, status_code=status, headers=headers, media_type=media)


class PostgrestApp:
    """PostgREST-compatible endpoints under ``/rest/v1`` (see TESTING.md for what is covered)."""

    def __init__(self, conninfo: str, jwt_secret: str, on_ready: Callable[[], None]) -> None:
        self._secret = jwt_secret
        self._on_ready = on_ready
        self.pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=10,
            open=False,
            kwargs={"prepare_threshold": None},
            name="postgrest-loopback",
        )
        self.asgi = Starlette(
            routes=[
                Route("/rest/v1/rpc/{name}", self.rpc, methods=["GET", "HEAD", "POST"]),
                Route(
                    "/rest/v1/{name}",
                    self.table,
                    methods=["GET", "HEAD", "POST", "PATCH", "DELETE"],
                ),
            ],
            lifespan=self._lifespan,
        )

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.pool.open(wait=True, timeout=30)
        self._on_ready()
        try:
            yield
        finally:
            await self.pool.close()

    def _claims(self, request: Request) -> dict[str, Any]:
        """Verify the bearer JWT (or the apikey when no Authorization is sent), like PostgREST."""
        token = request.headers.get("apikey", "")
        auth = request.headers.get("authorization")
        if auth:
            scheme, _, bearer = auth.partition(" ")
            if scheme.lower() != "bearer" or not bearer.strip():
                raise ApiError(401, "PGRST301", "Expected 'Authorization: Bearer <JWT>'")
            token = bearer.strip()
        if not token:
            raise ApiError(401, "PGRST302", "Anonymous access is disabled: no JWT was sent")
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=["HS256"], options={"verify_aud": False}
            )
        except jwt.ExpiredSignatureError:
            raise ApiError(401, "PGRST303", "JWT expired") from None
        except jwt.InvalidTokenError as exc:
            raise ApiError(401, "PGRST301", f"JWT invalid: {exc}") from None
        if claims.get("role") not in API_ROLES:
            raise ApiError(401, "PGRST301", f"JWT role must be one of {', '.join(API_ROLES)}")
        return claims

    async def _handle(
        self, request: Request, work: Callable[[Conn, Ctx], Awaitable[Response]]
    ) -> Response:
        role = "anon"
        try:
            claims = self._claims(request)
            role = str(claims["role"])
            header = (
                "content-profile"
                if request.method in ("POST", "PATCH", "DELETE")
                else ("accept-profile")
            )
            if request.headers.get(header, "public") != "public":
                raise ApiError(406, "PGRST106", "The schema must be one of the following: public")
            ctx = Ctx(request, role, parse_prefer(request.headers.get("prefer", "")))
            async with self.pool.connection() as conn, conn.transaction():
                if request.method in ("GET", "HEAD"):
                    await conn.execute("set transaction read only")
                await conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
                await conn.execute(
                    "select set_config('request.jwt.claims', %s, true),"
                    " set_config('request.method', %s, true),"
                    " set_config('request.path', %s, true)",
                    (json.dumps(claims), request.method, request.url.path),
                )
                return await work(conn, ctx)
        except ApiError as exc:
            return Response(
                json.dumps(exc.body), status_code=exc.status, media_type="application/json"
            )
        except psycopg.Error as exc:
            err = from_database(exc, role)
            return Response(
                json.dumps(err.body), status_code=err.status, media_type="application/json"
            )

    async def table(self, request: Request) -> Response:
        """``/rest/v1/<table>``: read, insert/upsert, update, delete."""
        name = request.path_params["name"]
        target = sql.SQL("public.{}").format(sql.Identifier(name))

        async def work(conn: Conn, ctx: Ctx) -> Response:
            items = request.query_params.multi_items()
            if request.method in ("GET", "HEAD"):
                return respond(ctx, await select_rows(conn, ctx, target, items))
            wanted = ctx.prefer.get("return") == "representation"
            if request.method == "POST":
                payload = await _json_body(request)
                result = await insert_rows(conn, ctx, name, payload, items)
                return respond(ctx, result, 201, body=wanted)
            if request.method == "PATCH":
                payload = await _json_body(request)
                result = await update_rows(conn, ctx, target, payload, items)
            else:
                result = await delete_rows(conn, ctx, target, items)
            return respond(ctx, result, body=wanted)

        return await self._handle(request, work)

    async def rpc(self, request: Request) -> Response:
        """``/rest/v1/rpc/<function>``: named arguments as a JSON object (or the query)."""
        name = request.path_params["name"]

        async def work(conn: Conn, ctx: Ctx) -> Response:
            items = request.query_params.multi_items()
            if request.method == "POST":
                payload = await _json_body(request)
                if payload.parsed is None:
                    payload = JsonBody("{}", {})
                if not isinstance(payload.parsed, dict):
                    raise ApiError(400, "PGRST102", "RPC arguments must be a JSON object")
                raw, args, filters = payload.raw, payload.parsed, items
            else:
                args = dict(items)
                raw, filters = json.dumps(args), []
            result = await call_function(conn, ctx, name, raw, args, filters)
            return respond(ctx, result)

        return await self._handle(request, work)


@dataclass
class JsonBody:
    """The request body: raw JSON text (exact numbers kept) and its parsed form."""

    raw: str
    parsed: Any


async def _json_body(request: Request) -> JsonBody:
    raw = (await request.body()).decode("utf-8")
    if not raw.strip():
        return JsonBody("null", None)
    try:
        return JsonBody(raw, json.loads(raw))
    except json.JSONDecodeError as exc:
        raise ApiError(400, "PGRST102", f"Empty or invalid json: {exc}") from None


async def select_rows(
    conn: Conn,
    ctx: Ctx,
    source: sql.Composable,
    items: list[tuple[str, str]],
    leading_params: list[object] | None = None,
) -> Result:
    """``GET /rest/v1/<table>`` (also used for set-returning RPC results).

    ``leading_params`` are values for placeholders inside ``source`` (they come first).
    """
    query = parse_query(items)
    params = [*(leading_params or []), *query.params]
    rng = ctx.request.headers.get("range")
    if rng and query.limit is None and "-" in rng:
        first, _, last = rng.partition("-")
        if first.isdigit():
            query.offset = int(first)
            if last.isdigit():
                query.limit = int(last) - int(first) + 1
    inner = sql.SQL("select {} from {} as _r{}{}").format(
        query.columns, source, query.where_sql(), query.tail_sql()
    )
    result = await aggregate(conn, ctx, inner, params)
    result.offset = query.offset or 0
    if ctx.wants_count:
        count_sql = sql.SQL("select count(*) from {} as _r{}").format(source, query.where_sql())
        row = await (await conn.execute(count_sql, params)).fetchone()
        result.total = int(row[0]) if row else 0
    return result


async def aggregate(
    conn: Conn,
    ctx: Ctx,
    inner: sql.Composable,
    params: list[object],
    with_: sql.Composable | None = None,
) -> Result:
    """Run ``[with_] select ... from (inner)``: all rows as one JSON array, the first, the count.

    The JSON is produced by PostgreSQL and passed through untouched, so numerics stay exact.
    """
    item = sql.SQL("json_strip_nulls(to_json(_t))" if ctx.strip_nulls else "_t")
    wrapped = sql.SQL(
        "{} select coalesce(json_agg({}), '[]')::text, (json_agg({}) -> 0)::text, count(*)"
        " from ({}) as _t"
    ).format(with_ or sql.SQL(""), item, item, inner)
    row = await (await conn.execute(wrapped, params)).fetchone()
    if row is None:
        return Result()
    return Result(array=row[0], first=row[1], rows=int(row[2]))
