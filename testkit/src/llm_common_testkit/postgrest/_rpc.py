"""``/rest/v1/rpc/<fn>``: call a function in schema public with named arguments."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from psycopg import sql

from ._errors import ApiError

if TYPE_CHECKING:
    from ._app import Conn, Ctx, Result

_LOOKUP = """
select p.proretset, t.typtype = 'c' or p.prorettype = 'record'::regtype,
       p.prorettype = 'void'::regtype, p.pronargs, p.pronargdefaults,
       coalesce(p.proargnames, '{}'), coalesce(p.proargmodes::text[], '{}'),
       array(select format_type(u.x, null)
             from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]))
                  with ordinality as u(x, n) order by u.n)
from pg_proc p join pg_type t on t.oid = p.prorettype
where p.pronamespace = 'public'::regnamespace and p.proname = %s and p.prokind = 'f'
"""


class _Function:
    def __init__(self, row: tuple[Any, ...]) -> None:
        self.returns_set: bool = row[0]
        self.composite: bool = row[1]
        self.void: bool = row[2]
        nargs, ndefaults, names, modes, types = row[3], row[4], row[5], row[6], row[7]
        modes = modes or ["i"] * len(types)
        names = names or [""] * len(types)
        self.inputs = [
            (n, t) for n, m, t in zip(names, modes, types, strict=True) if m in ("i", "b", "v")
        ]
        self.required = {n for n, _ in self.inputs[: nargs - ndefaults]}

    def accepts(self, args: set[str]) -> bool:
        return args <= {n for n, _ in self.inputs} and self.required <= args


async def call_function(
    conn: Conn,
    ctx: Ctx,
    name: str,
    raw_args: str,
    args: dict[str, Any],
    filters: list[tuple[str, str]],
) -> Result | None:
    """Resolve ``public.<name>`` by argument names, call it, shape the result like PostgREST.

    Scalar → the JSON value; composite → an object; set-returning → an array (filters, order
    and limit apply); void → no body.
    """
    from ._app import Result, select_rows

    rows = await (await conn.execute(_LOOKUP, (name,))).fetchall()
    candidates = [_Function(r) for r in rows]
    if ctx.request.method != "POST":
        # GET/HEAD: query keys naming an argument are arguments, the rest are filters.
        names = {n for f in candidates for n, _ in f.inputs}
        filters = [(k, v) for k, v in ctx.request.query_params.multi_items() if k not in names]
        args = {k: v for k, v in args.items() if k in names}
        raw_args = json.dumps(args)
    fn = next((f for f in candidates if f.accepts(set(args))), None)
    if fn is None:
        listed = ", ".join(sorted(args))
        raise ApiError(
            404,
            "PGRST202",
            f"Could not find the function public.{name}({listed}) in the schema cache",
        )
    used = [(n, t) for n, t in fn.inputs if n in args]
    call = sql.SQL("public.{}({})").format(
        sql.Identifier(name),
        sql.SQL(", ").join(
            sql.SQL("{} => _a.{}").format(sql.Identifier(n), sql.Identifier(n)) for n, _ in used
        ),
    )
    params: list[object] = []
    from_item: sql.Composable = sql.SQL("{} as _f").format(call)
    if used:
        # Typed like the function's parameters, as PostgREST does: json_to_record(args).
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in used
        )
        from_item = sql.SQL("json_to_record(%s::json) as _a({}) cross join lateral {}").format(
            columns, from_item
        )
        params.append(raw_args)

    if fn.void:
        await conn.execute(sql.SQL("select 1 from {}").format(from_item), params)
        return None
    if not fn.returns_set:
        query = sql.SQL("select to_json(_f)::text from {}").format(from_item)
        row = await (await conn.execute(query, params)).fetchone()
        value = row[0] if row and row[0] is not None else "null"
        return Result(array=value, first=value, rows=1)
    if not fn.composite:
        # Set of scalars: a plain JSON array of values, not of one-key objects.
        query = sql.SQL(
            "select coalesce(json_agg(_f), '[]')::text, (json_agg(_f) -> 0)::text, count(*) from {}"
        ).format(from_item)
        row = await (await conn.execute(query, params)).fetchone()
        if row is None:
            return Result()
        return Result(array=row[0], first=row[1], rows=int(row[2]), total=int(row[2]))
    source = sql.SQL("(select _f.* from {})").format(from_item)
    return await select_rows(conn, ctx, source, filters, leading_params=params)
