"""``llm-common-db`` command line: apply, check, repair and roll back migrations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import psycopg
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._conninfo import ParsedConninfo, parse_conninfo
from ._errors import InvalidConnectionStringError, MigrationError
from ._migrate import (
    MigrationState,
    _run_in_thread,
    default_migrations_dir,
    migrate,
    migration_status,
    repair,
)
from ._rollback import rollback


class _OneLineErrors(typer.Typer):
    """Usage errors (typer's boxed panel, exit 2) and unexpected exceptions (a traceback)
    become one ``error:`` line and exit code 1, like every other failure of this command."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        kwargs.setdefault("prog_name", "llm-common-db")  # also under `python -m` / `python -c`
        try:
            code = typer.main.get_command(self).main(*args, **kwargs)
        except typer.TyperException as exc:
            if not exc.format_message():  # no arguments: the help was printed instead
                raise SystemExit(exc.exit_code) from None
            where = getattr(getattr(exc, "ctx", None), "command_path", None)
            _fail(exc.format_message() + (f" (see '{where} --help')" if where else ""))
            raise SystemExit(1) from None
        except typer.Abort:
            _fail("aborted")
            raise SystemExit(1) from None
        except Exception as exc:
            _fail(f"unexpected {type(exc).__name__}: {exc}")
            raise SystemExit(1) from None
        raise SystemExit(code if isinstance(code, int) else 0)


app = _OneLineErrors(
    help="Apply the llm-common SQL migrations to PostgreSQL / Supabase.",
    no_args_is_help=True,
    add_completion=False,
)
_out = Console()
_err = Console(stderr=True)
_T = TypeVar("_T")

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
Packages = Annotated[
    list[str] | None,
    typer.Option(
        "--package",
        help="Only the core files and this package's files (cost-tracker, web-search, "
        "conversation-memory, analysis-pipeline); repeat for several. Default: every file.",
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
    package: Packages = None,
    repair_drift: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Also re-apply the applied files whose tables or functions were dropped "
            "(drift, see `status`); they are idempotent.",
        ),
    ] = False,
    connect_timeout: ConnectTimeout = 10.0,
) -> None:
    """Apply every migration the database has not recorded yet (safe to run concurrently)."""

    async def run() -> tuple[list[str], dict[str, tuple[str, ...]], list[MigrationState]]:
        applied = await migrate(
            database_url, directory, connect_timeout=connect_timeout, packages=package
        )
        fixed: dict[str, tuple[str, ...]] = {}
        if repair_drift:
            fixed = await repair(
                database_url, directory, connect_timeout=connect_timeout, packages=package
            )
        # "up to date" must not hide tables dropped by hand: check the applied files' objects.
        states = await migration_status(
            database_url, directory, connect_timeout=connect_timeout, packages=package
        )
        return applied, fixed, [s for s in states if s.state == "drift"]

    applied, repaired, drifted = _against(database_url, lambda: _run_in_thread(run()))
    for name in applied:
        _out.print(f"[green]applied[/] {name}", highlight=False)
    for name, missing in repaired.items():
        why = f" (restored {', '.join(missing)})" if missing else " (re-run after the repair)"
        _out.print(f"[green]repaired[/] {name}{why}", highlight=False, soft_wrap=True)
    if drifted:
        _print_drift(drifted)
        raise _fail(_DRIFT_AFTER_REPAIR if repair_drift else _DRIFT_ERROR.format(len(drifted)))
    if not applied and not repaired:
        _out.print("database is up to date")
    elif applied:
        _out.print(f"{len(applied)} migration(s) applied")


@app.command("status")
def status_command(
    database_url: DatabaseUrl,
    directory: Directory = None,
    package: Packages = None,
    connect_timeout: ConnectTimeout = 10.0,
) -> None:
    """Show which migrations are applied, pending, changed, or drifted (objects dropped by hand).

    Exits 1 when an applied file changed on disk or drifted.
    """
    states = _against(
        database_url,
        lambda: _run_in_thread(
            migration_status(
                database_url, directory, connect_timeout=connect_timeout, packages=package
            )
        ),
    )
    table = Table("version", "name", "package", "state")
    colour = {
        "applied": "green",
        "pending": "yellow",
        "changed": "red",
        "drift": "red",
        "unknown": "magenta",
    }
    for s in states:
        table.add_row(s.version, s.name, s.package or "", f"[{colour[s.state]}]{s.state}[/]")
    _out.print(table)
    drifted = [s for s in states if s.state == "drift"]
    _print_drift(drifted)
    if drifted:
        raise _fail(_DRIFT_ERROR.format(len(drifted)))
    if any(s.state == "changed" for s in states):
        raise _fail("an applied migration file was changed on disk; never edit an applied file")


_DRIFT_ERROR = (
    "{} applied migration(s) drifted (objects dropped by hand): "
    "run `llm-common-db migrate --repair` to restore them"
)


_DRIFT_AFTER_REPAIR = (
    "re-applying the files did not restore everything (a foreign key dropped by CASCADE "
    "belongs to a table that still exists): recreate it by hand, or roll the package back "
    "(`llm-common-db rollback --package NAME`) and migrate it again"
)


def _print_drift(drifted: list[MigrationState]) -> None:
    for s in drifted:
        for obj in s.missing:
            _out.print(
                f"drift: {obj} is missing (created by {s.version}_{s.name}.sql, applied)",
                highlight=False,
                soft_wrap=True,
            )


@app.command("rollback")
def rollback_command(
    database_url: DatabaseUrl,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Roll back every applied file newer than this version (0: every file).",
        ),
    ] = None,
    package: Annotated[
        list[str] | None,
        typer.Option(
            "--package",
            help="Roll back this package's files (repeat for several; core goes last).",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Drop tables and columns even when they hold rows."),
    ] = False,
    directory: Directory = None,
    connect_timeout: ConnectTimeout = 10.0,
) -> None:
    """Undo applied migrations with their down files, newest first, each in one transaction.

    Refuses (exit 1, nothing rolled back) when a down file would drop a table holding rows,
    unless --force.
    """
    if to is None and not package:
        raise _fail("say what to roll back: --to VERSION or --package NAME")
    done = _against(
        database_url,
        lambda: _run_in_thread(
            rollback(
                database_url,
                directory,
                to=to,
                packages=package,
                force=force,
                connect_timeout=connect_timeout,
            )
        ),
    )
    for name in done:
        _out.print(f"[yellow]rolled back[/] {name}", highlight=False)
    _out.print(f"{len(done)} migration(s) rolled back" if done else "nothing to roll back")


@app.command("path")
def path_command() -> None:
    """Print the directory holding the shipped migration files (to copy into supabase/)."""
    _out.print(str(default_migrations_dir()), highlight=False, soft_wrap=True)
