"""Reading the objects a migration file creates and drops (no database needed)."""

from __future__ import annotations

from llm_common_db._objects import (
    SchemaObject,
    dropped_tables_and_columns,
    expected_objects,
    read_events,
)

SQL = """
-- create table commented_out (id int);
create table if not exists public.parent (id uuid primary key);
CREATE TABLE child (
    id bigint generated always as identity primary key,
    parent_id uuid not null references public.parent (id) on delete cascade,
    other uuid,
    amount numeric(12, 4) default 0,
    constraint child_other_fkey foreign key (other) references parent (id)
);
create unique index if not exists child_parent_key on public.child (parent_id, id);
alter table public.child add column if not exists note text, add column flag boolean;
alter table child rename column note to remark;
create or replace function public.f(
    p_a text, p_b timestamptz default now(), out p_c integer, p_d double precision = 1,
    variadic p_e int[] default '{}'
) returns integer language sql as $$ select 1 $$;
create function g() returns trigger language plpgsql as $$ begin return new; end $$;
create or replace trigger child_touch before update on public.child
    for each row execute function g();
drop policy if exists child_own on child;
create policy child_own on public.child for select using (true);
do $$ begin execute format('create table %I (id int)', 'dynamic'); end $$;
"""


def test_reads_every_kind_in_file_order() -> None:
    created = [str(obj) for verb, obj in read_events(SQL) if verb == "create"]
    assert created == [
        "table public.parent",
        "table public.child",
        "foreign key public.child.parent_id",
        "foreign key public.child.other",
        "index public.child_parent_key",
        "column public.child.note",
        "column public.child.flag",
        "column public.child.remark",
        "function public.f(text, timestamp with time zone, double precision, integer[])",
        "function public.g()",
        "trigger public.child:child_touch",
        "policy public.child:child_own",
    ]


def test_later_drops_and_renames_are_not_expected() -> None:
    later = """
    drop function if exists f(text, timestamptz, float8, int4[]), public.g();
    alter table public.child drop column if exists flag;
    drop table if exists public.parent;
    """
    expected = expected_objects([("a", SQL), ("b", later)])
    names = {str(o) for o in expected}
    assert "column public.child.note" not in names  # renamed
    assert "column public.child.remark" in names
    assert "column public.child.flag" not in names
    assert not any(n.startswith("function") for n in names)
    assert "table public.parent" not in names
    assert "foreign key public.child.parent_id" in names  # on child: kept (child still exists)


def test_dropped_tables_and_columns() -> None:
    down = "alter table t drop column if exists a, drop column b;\ndrop table x, public.y;"
    assert dropped_tables_and_columns(down) == [
        SchemaObject("column", "public.t.a", "public.t"),
        SchemaObject("column", "public.t.b", "public.t"),
        SchemaObject("table", "public.x"),
        SchemaObject("table", "public.y"),
    ]
