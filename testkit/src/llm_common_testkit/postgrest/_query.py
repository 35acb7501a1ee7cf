"""Parse PostgREST query strings (select, filters, order, limit) into safe SQL fragments.

Identifiers are always quoted with :class:`psycopg.sql.Identifier` and values always travel as
query parameters (typed ``unknown`` by psycopg, so PostgreSQL infers each from its column).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from psycopg import sql

from ._errors import ApiError

RESERVED = frozenset({"select", "order", "limit", "offset", "on_conflict", "columns"})

_COMPARE = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_ARRAY_OPS = {"cs": "@>", "cd": "<@", "ov": "&&", "sl": "<<", "sr": ">>", "nxl": "&<", "nxr": "&>"}
_ARRAY_OPS["adj"] = "-|-"
_FTS = {"fts": "to_tsquery", "plfts": "plainto_tsquery", "phfts": "phraseto_tsquery"}
_FTS["wfts"] = "websearch_to_tsquery"
_IS = {"null": "null", "not_null": "not null", "true": "true", "false": "false"}
_IS["unknown"] = "unknown"


def bad_request(message: str, details: str | None = None) -> ApiError:
    """A PostgREST parse error (PGRST100)."""
    return ApiError(400, "PGRST100", message, details)


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside parentheses and double quotes."""
    parts: list[str] = []
    depth, quoted, start = 0, False, 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and quoted:
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and ch == sep:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def unquote(value: str) -> str:
    """Strip PostgREST double quotes (``"a,b"`` → ``a,b``) and their backslash escapes."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


@dataclass
class Query:
    """A parsed read/filter request."""

    columns: sql.Composable = field(default_factory=lambda: sql.SQL("*"))
    where: list[sql.Composable] = field(default_factory=list)
    params: list[object] = field(default_factory=list)
    order: list[sql.Composable] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None

    def where_sql(self) -> sql.Composable:
        """``where ...`` (or nothing)."""
        if not self.where:
            return sql.SQL("")
        return sql.SQL(" where ") + sql.SQL(" and ").join(self.where)

    def tail_sql(self) -> sql.Composable:
        """``order by ... limit ... offset ...`` (or nothing)."""
        parts: list[sql.Composable] = []
        if self.order:
            parts.append(sql.SQL(" order by ") + sql.SQL(", ").join(self.order))
        if self.limit is not None:
            parts.append(sql.SQL(" limit {}").format(sql.Literal(self.limit)))
        if self.offset:
            parts.append(sql.SQL(" offset {}").format(sql.Literal(self.offset)))
        return sql.Composed(parts)


def column_ref(name: str) -> sql.Composable:
    """A column, optionally with a JSON path (``data->key``, ``data->>key``)."""
    name = unquote(name.strip())
    for arrow in ("->>", "->"):
        if arrow in name:
            base, _, rest = name.partition(arrow)
            return sql.SQL("{} {} {}").format(column_ref(base), sql.SQL(arrow), _json_key(rest))
    if not name:
        raise bad_request("empty column name")
    return sql.Identifier(name)


def _json_key(path: str) -> sql.Composable:
    # Only the final key is supported by this loopback server (data->a or data->>a).
    if "->" in path:
        raise bad_request("nested JSON paths are not supported by the loopback server")
    return sql.Literal(int(path)) if path.isdigit() else sql.Literal(path)


def parse_select(text: str) -> sql.Composable:
    """``*``, ``a,b``, ``alias:col``, ``col::type`` (embedded resources are not supported)."""
    items: list[sql.Composable] = []
    for raw in split_top(text or "*"):
        item = raw.strip()
        if not item:
            continue
        if item == "*":
            items.append(sql.SQL("*"))
            continue
        if "(" in item:
            raise bad_request(f"embedded resource {item!r} is not supported by the loopback server")
        alias = None
        if ":" in item.replace("::", "\0"):
            alias, _, item = item.replace("::", "\0").partition(":")
            item = item.replace("\0", "::")
        cast = None
        if "::" in item:
            item, _, cast = item.partition("::")
        expr = column_ref(item)
        if cast:
            expr = sql.SQL("{}::{}").format(expr, sql.Identifier(cast))
        label = alias or (item.split("->")[-1].lstrip(">") if "->" in item else None)
        items.append(sql.SQL("{} as {}").format(expr, sql.Identifier(label)) if label else expr)
    return sql.SQL(", ").join(items) if items else sql.SQL("*")


def parse_order(text: str) -> list[sql.Composable]:
    """``c.desc.nullsfirst,c2`` → order-by terms."""
    terms: list[sql.Composable] = []
    for raw in split_top(text):
        bits = raw.strip().split(".")
        direction, nulls = sql.SQL(""), sql.SQL("")
        while len(bits) > 1 and bits[-1] in ("asc", "desc", "nullsfirst", "nullslast"):
            word = bits.pop()
            if word in ("asc", "desc"):
                direction = sql.SQL(" " + word)
            else:
                nulls = sql.SQL(" nulls first" if word == "nullsfirst" else " nulls last")
        terms.append(sql.Composed([column_ref(".".join(bits)), direction, nulls]))
    return terms


def _int_param(name: str, value: str) -> int:
    if not value.isdigit():
        raise bad_request(f"{name} must be a non-negative integer, not {value!r}")
    return int(value)


def filter_condition(column: str, expr: str, params: list[object]) -> sql.Composable:
    """One filter ``column=[not.]op.value`` as SQL; appends its values to ``params``."""
    negate = expr.startswith("not.")
    if negate:
        expr = expr[4:]
    op, dot, value = expr.partition(".")
    modifier = None
    if op.endswith(("(any)", "(all)")):
        op, modifier = op[:-5], op[-4:-1]
    if not dot:
        raise bad_request(f'"{op}" is not a valid filter: expected operator.value')
    col = column_ref(column)
    cond: sql.Composable
    if op in _COMPARE or op in ("like", "ilike"):
        sql_op = _COMPARE.get(op) or op
        if op in ("like", "ilike"):
            value = value.replace("*", "%")
        if modifier is not None:
            values = [unquote(v) for v in split_top(value.strip("{}"))]
            params.append(values)
            cond = sql.SQL("{} {} {} (%s::text[])").format(col, sql.SQL(sql_op), sql.SQL(modifier))
        else:
            params.append(value)
            cond = sql.SQL("{} {} %s").format(col, sql.SQL(sql_op))
    elif op == "is":
        if value.lower() not in _IS:
            raise bad_request(f"is.{value}: expected null, not_null, true, false or unknown")
        cond = sql.SQL("{} is {}").format(col, sql.SQL(_IS[value.lower()]))
    elif op == "in":
        if not (value.startswith("(") and value.endswith(")")):
            raise bad_request(f"in.{value}: expected in.(a,b,...)")
        items = [unquote(v) for v in split_top(value[1:-1])] if value[1:-1] else []
        if not items:
            cond = sql.SQL("false")
        else:
            params.extend(items)
            cond = sql.SQL("{} in ({})").format(
                col, sql.SQL(", ").join(sql.SQL("%s") for _ in items)
            )
    elif op in _ARRAY_OPS:
        params.append(value)
        cond = sql.SQL("{} {} %s").format(col, sql.SQL(_ARRAY_OPS[op]))
    elif op.split("(", 1)[0] in _FTS:
        base, _, lang = op.partition("(")
        fn = sql.SQL(_FTS[base])
        if lang:
            params.extend((lang.rstrip(")"), value))
            cond = sql.SQL("{} @@ {}(%s::regconfig, %s)").format(col, fn)
        else:
            params.append(value)
            cond = sql.SQL("{} @@ {}(%s)").format(col, fn)
    else:
        raise bad_request(f'"{op}" is not a supported filter operator')
    return sql.SQL("not ({})").format(cond) if negate else cond


def logic_condition(op: str, text: str, params: list[object]) -> sql.Composable:
    """``or=(a.eq.1,and(b.gt.2,c.is.null))`` → SQL."""
    negate = op.startswith("not.")
    op = op.removeprefix("not.")
    if not (text.startswith("(") and text.endswith(")")):
        raise bad_request(f"{op}={text}: expected a parenthesised list")
    conds: list[sql.Composable] = []
    for raw in split_top(text[1:-1]):
        item = raw.strip()
        head = item.split("(", 1)[0]
        if head in ("and", "or", "not.and", "not.or"):
            conds.append(logic_condition(head, item[len(head) :], params))
        else:
            column, dot, expr = item.partition(".")
            if not dot:
                raise bad_request(f"{item!r} is not a valid filter")
            conds.append(filter_condition(column, expr, params))
    joined = sql.SQL("(") + sql.SQL(f" {op} ").join(conds) + sql.SQL(")")
    return sql.SQL("not {}").format(joined) if negate else joined


def parse_query(items: Iterable[tuple[str, str]], *, ignore: Iterable[str] = ()) -> Query:
    """Parse the query string of a table (or RPC result) request."""
    query = Query()
    skip = set(ignore)
    for key, value in items:
        if key in skip:
            continue
        if key == "select":
            query.columns = parse_select(value)
        elif key == "order":
            query.order.extend(parse_order(value))
        elif key == "limit":
            query.limit = _int_param("limit", value)
        elif key == "offset":
            query.offset = _int_param("offset", value)
        elif key in RESERVED:
            continue
        elif key in ("or", "and", "not.or", "not.and"):
            query.where.append(logic_condition(key, value, query.params))
        elif "." in key and key.split(".", 1)[1] in ("or", "and", "order", "limit", "offset"):
            raise bad_request(f"{key}: filters on embedded resources are not supported")
        else:
            query.where.append(filter_condition(key, value, query.params))
    return query
