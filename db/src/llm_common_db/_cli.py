"""``llm-common-db`` command line: apply migrations and show their status."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import psycopg
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._conninfo import ParsedConninfo, parse_conninfo
from ._errors import InvalidConnectionStringError, MigrationError
from ._migrate import _run_in_thread, default_migrations_dir, migrate_sync, migration_status

app = typer.Typer(
    help="Apply the llm-common SQL migrations to PostgreSQL / Supabase.",
    no_args_is_help=True,
    add_completion=False,
)
_out = Console()
_err = Console(stderr=True)
_T = TypeVar("_T")

# The packages whose tables live in these migrations (what `--package` accepts).
PACKAGES = ("cost-tracker", "web-search", "conversation-memory", "analysis-pipeline")

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


ConnectTimeout = Annotated[
    float,
    typer.Option("--connect-timeout", min=1, help="Seconds to wait for the database."),
]
Package = Annotated[
    str | None,
    typer.Option(
        "--package",
        help="The package whose tables you need (" + ", ".join(PACKAGES) + "). The files form "
        "one ordered history, so every pending file is applied.",
    ),
]


def _fail(message: str) -> typer.Exit:
    """Print exactly one ``error: ...`` line (no markup parsing, no wrapping) and exit 1."""
    line = " ".join(message.split())
    _err.print(Text.assemble(("error:", "bold red"), " ", line), soft_wrap=True)
    return typer.Exit(code=1)


def _against(database_url: str, action: Callable[[], _T]) -> _T:
    """Run ``action``; turn every failure into one redacted ``error:`` line.

    The URL is parsed before anything connects: libpq's own parse errors quote the string,
    password included, so a malformed one must never reach psycopg.
    """
    try:
        parsed = parse_conninfo(database_url)
    except InvalidConnectionStringError as exc:
        raise _fail(str(exc)) from None
    try:
        return action()
    except psycopg.OperationalError as exc:
        raise _fail(f"cannot connect to {parsed.display}: {_reason(parsed, exc)}") from None
    except (MigrationError, psycopg.Error) as exc:
        raise _fail(parsed.scrub(str(exc))) from None
    except Exception as exc:  # a CLI prints one line, never a traceback
        raise _fail(f"{type(exc).__name__}: {parsed.scrub(str(exc))}") from None


def _reason(parsed: ParsedConninfo, exc: Exception) -> str:
    # libpq: 'connection failed: connection to server at "h", port 5 failed: FATAL:  why'
    text = " ".join(str(exc).split())
    _, sep, tail = text.rpartition(" failed: ")
    return parsed.scrub((tail if sep else text).removeprefix("FATAL: ").strip())


@app.command("migrate")
def migrate_command(
    database_url: DatabaseUrl,
    directory: Directory = None,
    package: Package = None,
    connect_timeout: ConnectTimeout = 10.0,
) -> None:
    """Apply every migration the database has not recorded yet (safe to run concurrently)."""
    if package is not None and package not in PACKAGES:
        raise _fail(f"unknown package {package!r}: expected one of {', '.join(PACKAGES)}")
    applied = _against(
        database_url,
        lambda: migrate_sync(database_url, directory, connect_timeout=connect_timeout),
    )
    for name in applied:
        _out.print(f"[green]applied[/] {name}", highlight=False)
    _out.print(f"{len(applied)} migration(s) applied" if applied else "database is up to date")


@app.command("status")
def status_command(
    database_url: DatabaseUrl,
    directory: Directory = None,
    connect_timeout: ConnectTimeout = 10.0,
) -> None:
    """Show which migrations are applied, pending or changed since they were applied."""
    states = _against(
        database_url,
        lambda: _run_in_thread(
            migration_status(database_url, directory, connect_timeout=connect_timeout)
        ),
    )
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
