"""INSERT (and upsert), UPDATE and DELETE the way PostgREST runs them."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from psycopg import sql

from ._errors import ApiError
from ._query import parse_query, parse_select, split_top, unquote

if TYPE_CHECKING:
    from ._app import Conn, Ctx, JsonBody, Result

_PRIMARY_KEY = """
select a.attname
from pg_index i
cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
where i.indisprimary and i.indrelid = to_regclass(format('public.%%I', %s::text))
order by k.ord
"""


def _idents(names: list[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


async def _finish(
    conn: Conn,
    ctx: Ctx,
    statement: sql.Composed,
    params: list[object],
    select: str,
) -> Result:
    """Run a mutation: with RETURNING only when the client wants the rows back.

    ``return=minimal`` must not use RETURNING: it would need SELECT rights (and a SELECT
    policy) that an insert-only client does not have, exactly as with real PostgREST.
    """
    from ._app import Result, aggregate

    if ctx.prefer.get("return") != "representation":
        cur = await conn.execute(statement, params)
        return Result(rows=0, total=max(cur.rowcount, 0))
    with_ = sql.SQL("with _w as ({} returning *)").format(statement)
    inner = sql.SQL("select {} from _w").format(parse_select(select))
    result = await aggregate(conn, ctx, inner, params, with_)
    result.total = result.rows
    return result


def _conflict_clause(ctx: Ctx, columns: list[str], conflict_cols: list[str]) -> sql.Composable:
    resolution = ctx.prefer.get("resolution")
    if resolution not in ("merge-duplicates", "ignore-duplicates"):
        return sql.SQL("")
    if not conflict_cols:
        raise ApiError(400, "PGRST100", "upsert needs on_conflict or a primary key")
    target = sql.SQL(" on conflict ({})").format(_idents(conflict_cols))
    if resolution == "ignore-duplicates":
        return target + sql.SQL(" do nothing")
    updates = sql.SQL(", ").join(
        sql.SQL("{} = excluded.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in columns
    )
    return target + sql.SQL(" do update set ") + updates


async def insert_rows(
    conn: Conn, ctx: Ctx, name: str, payload: JsonBody, items: list[tuple[str, str]]
) -> Result:
    """``POST /rest/v1/<table>``: one object or an array; upsert via ``Prefer: resolution``."""
    parsed = payload.parsed
    rows: list[Any] = parsed if isinstance(parsed, list) else [parsed]
    if not all(isinstance(r, dict) for r in rows):
        raise ApiError(400, "PGRST102", "All object keys must match: send objects")
    options = dict(items)
    if "columns" in options:
        columns = [unquote(c.strip()) for c in split_top(options["columns"])]
    else:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    target = sql.SQL("public.{}").format(sql.Identifier(name))

    conflict_cols = [unquote(c.strip()) for c in split_top(options.get("on_conflict", "")) if c]
    if not conflict_cols and "resolution" in ctx.prefer:
        cur = await conn.execute(_PRIMARY_KEY, (name,))
        conflict_cols = [r[0] for r in await cur.fetchall()]

    # Raw JSON text keeps numbers exact; missing=default must split rows by the keys they carry.
    batches: list[tuple[list[str], str]]
    if ctx.prefer.get("missing") == "default":
        groups: dict[tuple[str, ...], list[Any]] = {}
        for row in json.loads(payload.raw, parse_float=Decimal) if rows else []:
            items_row = row if isinstance(row, dict) else {}
            groups.setdefault(tuple(k for k in columns if k in items_row), []).append(items_row)
        batches = [(list(k), json.dumps(v, default=str)) for k, v in groups.items()]
    else:
        raw = payload.raw if isinstance(parsed, list) else f"[{payload.raw}]"
        batches = [(columns, raw)] if rows else []

    from ._app import Result

    total = Result(array="[]", rows=0, total=0)
    arrays: list[str] = []
    for cols, raw in batches:
        if cols:
            statement = sql.SQL(
                "insert into {t} ({c})"
                " select {c} from json_populate_recordset(null::{t}, %s::json){x}"
            ).format(t=target, c=_idents(cols), x=_conflict_clause(ctx, cols, conflict_cols))
            params: list[object] = [raw]
        else:
            statement = sql.SQL("insert into {} default values").format(target)
            params = []
        repeat = 1 if cols else len(json.loads(raw))
        for _ in range(repeat):
            part = await _finish(conn, ctx, statement, params, options.get("select", "*"))
            total.rows += part.rows
            total.total = (total.total or 0) + (part.total or 0)
            total.first = total.first or part.first
            if part.array not in ("[]", ""):
                arrays.append(part.array[1:-1])
    total.array = "[" + ",".join(arrays) + "]"
    return total


async def update_rows(
    conn: Conn,
    ctx: Ctx,
    target: sql.Composable,
    payload: JsonBody,
    items: list[tuple[str, str]],
) -> Result:
    """``PATCH /rest/v1/<table>?<filters>`` with a JSON object of new values."""
    if not isinstance(payload.parsed, dict):
        raise ApiError(400, "PGRST102", "PATCH needs a JSON object")
    from ._app import Result

    columns = list(payload.parsed)
    if not columns:
        return Result()
    query = parse_query(items)
    statement = sql.SQL(
        "update {t} set ({c}) = (select {c} from json_populate_record(null::{t}, %s::json)){w}"
    ).format(t=target, c=_idents(columns), w=query.where_sql())
    return await _finish(
        conn, ctx, statement, [payload.raw, *query.params], dict(items).get("select", "*")
    )


async def delete_rows(
    conn: Conn, ctx: Ctx, target: sql.Composable, items: list[tuple[str, str]]
) -> Result:
    """``DELETE /rest/v1/<table>?<filters>``."""
    query = parse_query(items)
    statement = sql.SQL("delete from {}{}").format(target, query.where_sql())
    return await _finish(conn, ctx, statement, query.params, dict(items).get("select", "*"))
