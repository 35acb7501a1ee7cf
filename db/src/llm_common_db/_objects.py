"""The schema objects a migration file creates and drops, read from its SQL, and whether they exist.

Why parse rather than snapshot the catalog while a file runs: databases migrated before this
existed have no snapshot, and a file re-run on a database that already has its objects (every
file is idempotent) creates nothing new. The statements that matter are few and written one way
in these files (``create table``, ``alter table ... add column``, ``create function``,
``create index``, ``create policy``, ``create trigger`` and their ``drop`` forms), so reading
them is reliable; statements built at run time (``execute format(...)``) are not seen, which
only makes drift detection miss those objects, never report false drift. A test checks that
every object read from every shipped file exists after ``migrate``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg

Kind = Literal["table", "column", "foreign key", "function", "index", "policy", "trigger"]

_IDENT = r"(?:[a-z_][a-z0-9_$]*\.)?[a-z_][a-z0-9_$]*"
_IF_NOT_EXISTS = r"(?:if\s+not\s+exists\s+)?"
_IF_EXISTS = r"(?:if\s+exists\s+)?"
_STATEMENTS = re.compile(
    rf"""
    \bcreate\s+(?:or\s+replace\s+)?function\s+(?P<create_function>{_IDENT})\s*\(
  | \bdrop\s+function\s+{_IF_EXISTS}(?P<drop_function>{_IDENT})\s*\(
  | \bcreate\s+(?:unlogged\s+)?table\s+{_IF_NOT_EXISTS}(?P<create_table>{_IDENT})
  | \bdrop\s+table\s+{_IF_EXISTS}(?P<drop_table>{_IDENT}(?:\s*,\s*{_IDENT})*)
  | \balter\s+table\s+{_IF_EXISTS}(?:only\s+)?(?P<alter_table>{_IDENT})(?P<alter_body>[^;]*)
  | \bcreate\s+(?:unique\s+)?index\s+(?:concurrently\s+)?{_IF_NOT_EXISTS}(?P<create_index>{_IDENT})
  | \bdrop\s+index\s+{_IF_EXISTS}(?P<drop_index>{_IDENT})
  | \bcreate\s+policy\s+(?P<create_policy>{_IDENT})\s+on\s+(?P<create_policy_on>{_IDENT})
  | \bdrop\s+policy\s+{_IF_EXISTS}(?P<drop_policy>{_IDENT})\s+on\s+(?P<drop_policy_on>{_IDENT})
  | \bcreate\s+(?:or\s+replace\s+)?(?:constraint\s+)?trigger\s+(?P<create_trigger>{_IDENT})
        \s[^;]*?\bon\s+(?P<create_trigger_on>{_IDENT})
  | \bdrop\s+trigger\s+{_IF_EXISTS}(?P<drop_trigger>{_IDENT})\s+on\s+(?P<drop_trigger_on>{_IDENT})
    """,
    re.VERBOSE,
)
_ADD_COLUMN = re.compile(rf"\badd\s+column\s+{_IF_NOT_EXISTS}([a-z_][a-z0-9_$]*)")
_DROP_COLUMN = re.compile(rf"\bdrop\s+column\s+{_IF_EXISTS}([a-z_][a-z0-9_$]*)")
_RENAME_COLUMN = re.compile(
    r"\brename\s+(?:column\s+)?([a-z_][a-z0-9_$]*)\s+to\s+([a-z_][a-z0-9_$]*)"
)
_COMMENT = re.compile(r"--[^\n]*")
_NEXT_FUNCTION = re.compile(rf"\s*,\s*({_IDENT})\s*\(")
_INLINE_FK = re.compile(r"^([a-z_][a-z0-9_$]*)\s[^,]*\breferences\s")
_TABLE_FK = re.compile(r"\bforeign\s+key\s*\(\s*([a-z_][a-z0-9_$]*)\s*\)")
_ARG_MODES = {"in", "inout", "variadic"}
# Types whose name has several words: an argument starting with one of these has no name.
_MULTIWORD_TYPES = {"double", "timestamp", "time", "character", "bit", "interval", "national"}
_TYPE_ALIASES = {
    "timestamptz": "timestamp with time zone",
    "timestamp without time zone": "timestamp",
    "timetz": "time with time zone",
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "int2": "smallint",
    "bool": "boolean",
    "float8": "double precision",
    "float4": "real",
    "decimal": "numeric",
    "varchar": "character varying",
    "char": "character",
}


@dataclass(frozen=True, order=True)
class SchemaObject:
    """One object a migration creates: ``kind`` and a qualified ``name``.

    ``name`` is ``schema.table`` for tables, ``schema.table.column`` for columns,
    ``schema.table.column`` for foreign keys (the referencing column),
    ``schema.fn(type, ...)`` for functions, ``schema.index`` for indexes and
    ``schema.table:name`` for policies and triggers.
    """

    kind: Kind
    name: str
    table: str | None = None  # the table it belongs to (columns, indexes, policies, triggers)

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def _qualify(name: str) -> str:
    return name if "." in name else f"public.{name}"


def _balanced(text: str, start: int) -> tuple[str, int]:
    """Return the text inside the parenthesis opening at ``text[start - 1]`` and the end index."""
    depth = 1
    i = start
    while i < len(text) and depth:
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
        i += 1
    return text[start : i - 1], i


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _normalise_type(text: str) -> str:
    text = re.sub(r"\([^)]*\)", "", text)  # typmods do not take part in a function's identity
    text = " ".join(text.split())
    array = ""
    while text.endswith("[]"):
        array += "[]"
        text = text[:-2].strip()
    text = _TYPE_ALIASES.get(text, text).removeprefix("public.").removeprefix("pg_catalog.")
    return text + array


def _signature(args: str) -> str:
    """The identity argument types of a ``create``/``drop function`` argument list."""
    types: list[str] = []
    for arg in _split_top_level(args):
        arg = re.split(r"\s+default\s+|\s*=\s*", arg, maxsplit=1)[0].strip()
        tokens = arg.split()
        if tokens and tokens[0] == "out":
            continue  # OUT arguments are not part of the identity
        if tokens and tokens[0] in _ARG_MODES:
            tokens = tokens[1:]
        if len(tokens) >= 2 and tokens[0] not in _MULTIWORD_TYPES and tokens[1] != "[]":
            tokens = tokens[1:]  # the argument's name
        types.append(_normalise_type(" ".join(tokens)))
    return ", ".join(types)


Event = tuple[Literal["create", "drop"], SchemaObject]


def read_events(sql: str) -> list[Event]:
    """The creations and drops in ``sql``, in the order the file runs them."""
    text = _COMMENT.sub("", sql.lower())
    events: list[Event] = []
    for match in _STATEMENTS.finditer(text):
        if match["create_function"]:
            args, _ = _balanced(text, match.end())
            name = f"{_qualify(match['create_function'])}({_signature(args)})"
            events.append(("create", SchemaObject("function", name)))
        elif match["drop_function"]:
            name, end = match["drop_function"], match.end()
            while True:  # drop function a(...), b(...)
                args, end = _balanced(text, end)
                events.append(
                    ("drop", SchemaObject("function", f"{_qualify(name)}({_signature(args)})"))
                )
                more = _NEXT_FUNCTION.match(text, end)
                if more is None:
                    break
                name, end = more[1], more.end()
        elif match["create_table"]:
            table = _qualify(match["create_table"])
            events.append(("create", SchemaObject("table", table)))
            opening = re.match(r"\s*\(", text[match.end() :])
            if opening:
                body, _ = _balanced(text, match.end() + opening.end())
                for column in _foreign_keys(body):
                    events.append(
                        ("create", SchemaObject("foreign key", f"{table}.{column}", table))
                    )
        elif match["drop_table"]:
            for name in match["drop_table"].split(","):
                events.append(("drop", SchemaObject("table", _qualify(name.strip()))))
        elif match["alter_table"]:
            table = _qualify(match["alter_table"])
            body = match["alter_body"]
            for column in _ADD_COLUMN.findall(body):
                events.append(("create", SchemaObject("column", f"{table}.{column}", table)))
            for column in _DROP_COLUMN.findall(body):
                events.append(("drop", SchemaObject("column", f"{table}.{column}", table)))
            for old, new in _RENAME_COLUMN.findall(body):
                events.append(("drop", SchemaObject("column", f"{table}.{old}", table)))
                events.append(("create", SchemaObject("column", f"{table}.{new}", table)))
        elif match["create_index"] or match["drop_index"]:
            name = _qualify(match["create_index"] or match["drop_index"])
            on = re.match(rf"\s+on\s+(?:only\s+)?({_IDENT})", text[match.end() :])
            obj = SchemaObject("index", name, _qualify(on[1]) if on else None)
            events.append(("create" if match["create_index"] else "drop", obj))
        else:
            for kind in ("policy", "trigger"):
                for verb in ("create", "drop"):
                    if match[f"{verb}_{kind}"]:
                        table = _qualify(match[f"{verb}_{kind}_on"])
                        name = f"{table}:{match[f'{verb}_{kind}']}"
                        events.append((verb, SchemaObject(kind, name, table)))
    return events


def _foreign_keys(table_body: str) -> list[str]:
    """The (single) columns of a ``create table`` body that reference another table."""
    columns: list[str] = []
    for item in _split_top_level(table_body):
        fk = _TABLE_FK.search(item) if item.startswith(("constraint", "foreign")) else None
        inline = None if fk else _INLINE_FK.match(item)
        found = fk or inline
        if found:
            columns.append(found[1])
    return columns


def expected_objects(files: Sequence[tuple[str, str]]) -> dict[SchemaObject, str]:
    """Replay ``(label, sql)`` files in order: {object that should exist: label of its file}.

    An object a later file drops (e.g. a function replaced by one with a new signature) is not
    expected; one it re-creates is attributed to the later file.
    """
    expected: dict[SchemaObject, str] = {}
    for label, sql in files:
        for verb, obj in read_events(sql):
            if verb == "create":
                expected[obj] = label
            elif obj.kind == "table":
                for other in [o for o in expected if o == obj or o.table == obj.name]:
                    del expected[other]
            else:
                expected.pop(obj, None)
    return expected


def dropped_tables_and_columns(sql: str) -> list[SchemaObject]:
    """The tables and columns ``sql`` drops (what a down file may lose data from)."""
    events = read_events(sql)
    return [obj for verb, obj in events if verb == "drop" and obj.kind in {"table", "column"}]


async def missing_objects(
    conn: psycopg.AsyncConnection[Any], objects: Iterable[SchemaObject]
) -> list[SchemaObject]:
    """The ``objects`` that do not exist in the database ``conn`` is connected to.

    An object whose table is missing is left out: the table is reported, and whatever hung off
    it went with it.
    """
    objects = sorted(set(objects))
    missing_tables: set[str] = set()
    missing: list[SchemaObject] = []
    for obj in sorted(objects, key=lambda o: o.kind != "table"):
        if obj.table is not None and obj.table in missing_tables:
            continue
        if not await _exists(conn, obj):
            missing.append(obj)
            if obj.kind == "table":
                missing_tables.add(obj.name)
    return sorted(missing)


_CHECKS: dict[str, str] = {
    "table": "select to_regclass(%s) is not null",
    "index": "select to_regclass(%s) is not null",
    "column": (
        "select exists (select 1 from pg_catalog.pg_attribute where attrelid = to_regclass(%s)"
        " and attname = %s and not attisdropped)"
    ),
    "policy": (
        "select exists (select 1 from pg_catalog.pg_policy where polrelid = to_regclass(%s)"
        " and polname = %s)"
    ),
    "trigger": (
        "select exists (select 1 from pg_catalog.pg_trigger where tgrelid = to_regclass(%s)"
        " and tgname = %s)"
    ),
    "foreign key": (
        "select exists (select 1 from pg_catalog.pg_constraint c join pg_catalog.pg_attribute a"
        " on a.attrelid = c.conrelid and a.attnum = any(c.conkey)"
        " where c.conrelid = to_regclass(%s) and c.contype = 'f' and a.attname = %s)"
    ),
}


async def _exists(conn: psycopg.AsyncConnection[Any], obj: SchemaObject) -> bool:
    if obj.kind == "function":
        try:
            async with conn.transaction():  # a savepoint: a type name we misread must not abort
                cur = await conn.execute("select to_regprocedure(%s) is not null", (obj.name,))
                row = await cur.fetchone()
        except psycopg.Error:
            return True  # cannot tell: never report drift we are unsure of
        return bool(row and row[0])
    if obj.kind in {"table", "index"}:
        params: tuple[str, ...] = (obj.name,)
    elif obj.kind in {"column", "foreign key"}:
        table, _, column = obj.name.rpartition(".")
        params = (table, column)
    else:
        table, _, name = obj.name.partition(":")
        params = (table, name)
    cur = await conn.execute(_CHECKS[obj.kind], params)
    row = await cur.fetchone()
    return bool(row and row[0])
