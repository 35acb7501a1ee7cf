"""Helpers for llm-common-db's tests: a schema dump to compare, the CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg

# One table each package's files create, to see whether they are there.
PACKAGE_TABLES = {
    "cost-tracker": "cost_tracking",
    "web-search": "web_search_cache",
    "conversation-memory": "conversations",
    "analysis-pipeline": "pipeline_runs",
    "analysis-pipeline-batch": "pipeline_batch_items",
}

# Everything a migration defines, without what differs between two equal schemas (oids, attnums
# left behind by dropped columns) and without the runner's own bookkeeping.
_DUMP_QUERIES = {
    "tables": """
        select n.nspname, c.relname, c.relkind, c.relrowsecurity, coalesce(c.relacl::text, '')
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname in ('public', 'auth') and c.relkind in ('r', 'p', 'v', 'S')
          and c.relname not like 'llm_common_schema_%'
        order by 1, 2""",
    "columns": """
        select table_schema, table_name, column_name, data_type, is_nullable,
               coalesce(column_default, ''), is_identity
        from information_schema.columns
        where table_schema in ('public', 'auth') and table_name not like 'llm_common_schema_%'
        order by table_schema, table_name, ordinal_position""",
    "indexes": """
        select schemaname, tablename, indexname, indexdef from pg_indexes
        where schemaname in ('public', 'auth') and tablename not like 'llm_common_schema_%'
        order by 1, 2, 3""",
    "constraints": """
        select conrelid::regclass::text, conname, pg_get_constraintdef(oid) from pg_constraint
        where connamespace in ('public'::regnamespace)
          and conrelid::regclass::text not like '%llm_common_schema_%'
        order by 1, 2""",
    "functions": """
        select n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
               pg_get_functiondef(p.oid), coalesce(p.proacl::text, '')
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname in ('public', 'auth')
        order by 1, 2, 3""",
    "policies": """
        select schemaname, tablename, policyname, permissive, roles::text, cmd,
               coalesce(qual, ''), coalesce(with_check, '')
        from pg_policies where schemaname in ('public', 'auth') order by 1, 2, 3""",
    "triggers": """
        select tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) from pg_trigger
        where not tgisinternal order by 1, 2""",
}


def schema_dump(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Tables, columns, indexes, constraints, functions, policies and triggers, with grants."""
    with psycopg.connect(url) as conn:
        return {
            name: [tuple(row) for row in conn.execute(query).fetchall()]
            for name, query in _DUMP_QUERIES.items()
        }


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m llm_common_db ARGS` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "llm_common_db", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "error", **(env or {})},
        check=False,
    )
