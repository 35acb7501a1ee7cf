"""``llm-common-db`` command line: apply migrations and show their status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from ._errors import MigrationError
from ._migrate import _run_in_thread, default_migrations_dir, migrate_sync, migration_status

app = typer.Typer(
    help="Apply the llm-common SQL migrations to PostgreSQL / Supabase.",
    no_args_is_help=True,
    add_completion=False,
)
_out = Console()
_err = Console(stderr=True)

DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        help="PostgreSQL URL (or $DATABASE_URL). Supabase: the direct or pooler connection string.",
        show_envvar=True,
    ),
]
Directory = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Migrations directory (default: the files shipped with llm-common-db).",
        exists=True,
        file_okay=False,
    ),
]


def _fail(exc: Exception) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(code=1)


@app.command("migrate")
def migrate_command(database_url: DatabaseUrl, directory: Directory = None) -> None:
    """Apply every migration the database has not recorded yet (safe to run concurrently)."""
    try:
        applied = migrate_sync(database_url, directory)
    except (MigrationError, psycopg.Error) as exc:
        raise _fail(exc) from None
    for name in applied:
        _out.print(f"[green]applied[/] {name}", highlight=False)
    _out.print(f"{len(applied)} migration(s) applied" if applied else "database is up to date")


@app.command("status")
def status_command(database_url: DatabaseUrl, directory: Directory = None) -> None:
    """Show which migrations are applied, pending or changed since they were applied."""
    try:
        states = _run_in_thread(migration_status(database_url, directory))
    except (MigrationError, psycopg.Error) as exc:
        raise _fail(exc) from None
    table = Table("version", "name", "state")
    colour = {"applied": "green", "pending": "yellow", "changed": "red", "unknown": "magenta"}
    for s in states:
        table.add_row(s.version, s.name, f"[{colour[s.state]}]{s.state}[/]")
    _out.print(table)
    if any(s.state == "changed" for s in states):
        raise typer.Exit(code=1)


@app.command("path")
def path_command() -> None:
    """Print the directory holding the shipped migration files (to copy into supabase/)."""
    _out.print(str(default_migrations_dir()), highlight=False, soft_wrap=True)
