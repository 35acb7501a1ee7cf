"""The ``cost-tracker`` command: spend reports, exports and database migrations."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from cost_tracker._errors import CostTrackerError
from cost_tracker._models import BreakdownRow
from cost_tracker._stores._protocol import CostStore
from cost_tracker._tracker import CostTracker

__all__ = ["app"]

T = TypeVar("T")


class _OneLineErrors(typer.Typer):
    """Usage errors (typer's boxed panel, exit 2) and unexpected exceptions (a traceback)
    become one ``error:`` line and exit code 1, like every other failure of this command."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        kwargs.setdefault("prog_name", "cost-tracker")  # also under `python -m` / `python -c`
        try:
            code = typer.main.get_command(self).main(*args, **kwargs)
        except typer.TyperException as exc:
            if not exc.format_message():  # no arguments: the help was printed instead
                raise SystemExit(exc.exit_code) from None
            where = getattr(getattr(exc, "ctx", None), "command_path", None)
            _say(exc.format_message() + (f" (see '{where} --help')" if where else ""))
            raise SystemExit(1) from None
        except typer.Abort:
            _say("aborted")
            raise SystemExit(1) from None
        except Exception as exc:
            _say(f"unexpected {type(exc).__name__}: {exc}")
            raise SystemExit(1) from None
        raise SystemExit(code if isinstance(code, int) else 0)


app = _OneLineErrors(
    name="cost-tracker",
    help="Exact LLM and search spend: reports, exports, migrations.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema (PostgreSQL / Supabase).", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()


class GroupByChoice(StrEnum):
    """Report grouping."""

    model = "model"
    step = "step"
    project = "project"
    day = "day"


class FormatChoice(StrEnum):
    """Export format."""

    csv = "csv"
    json = "json"


DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar=["COST_TRACKER_DATABASE_URL", "DATABASE_URL"],
        help="PostgreSQL URL (default: the local store).",
        show_default=False,
    ),
]
LocalDir = Annotated[
    Path | None, typer.Option("--local-dir", help="Directory of the local store (.llm-common).")
]
Since = Annotated[str, typer.Option("--since", help="First day, YYYY-MM-DD (inclusive).")]
Until = Annotated[
    str | None, typer.Option("--until", help="Last day, YYYY-MM-DD (inclusive; default today).")
]
Project = Annotated[
    str | None, typer.Option("--project", help="Only this project (default: all projects).")
]
Zone = Annotated[str, typer.Option("--tz", help="IANA time zone days are counted in.")]
ConnectTimeout = Annotated[
    float,
    typer.Option("--connect-timeout", min=0.1, help="Seconds to wait for the database."),
]
ServerRowsOnly = Annotated[
    bool,
    typer.Option(
        "--server-rows-only",
        help="Leave out rows end users wrote through the Supabase API.",
    ),
]


def _say(message: str) -> None:
    # One plain line on stderr: no markup (paths may hold brackets), no wrapping, no traceback.
    typer.echo(f"error: {' '.join(message.split())}", err=True)


def _fail(message: str) -> NoReturn:
    _say(message)
    raise typer.Exit(code=1)


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a YYYY-MM-DD date", param_hint=option) from None


@dataclass(frozen=True)
class _Source:
    """Where a command reads costs from."""

    database_url: str | None
    local_dir: Path | None
    connect_timeout: float

    def store(self) -> CostStore:
        if self.database_url:
            from cost_tracker._stores.postgres import PostgresCostStore

            return PostgresCostStore(
                self.database_url, max_size=2, connect_timeout=self.connect_timeout
            )
        from cost_tracker._stores.local import LocalCostStore

        if self.local_dir is not None and not self.local_dir.is_dir():
            what = "is not a directory" if self.local_dir.exists() else "does not exist"
            _fail(f"--local-dir {self.local_dir} {what} (no local cost store there)")
        return LocalCostStore(self.local_dir)


def _run(
    source: _Source,
    tz: str,
    project: str | None,
    work: Callable[[CostTracker], Awaitable[T]],
) -> T:
    async def main() -> T:
        tracker = CostTracker(
            source.store(),
            tz=tz,
            project=project or os.environ.get("PROJECT_NAME") or "default",
            retry_interval=None,
        )
        async with tracker:
            return await work(tracker)

    if not logging.getLogger().handlers:
        # The error line says what went wrong; library warnings about the same outage
        # (Python's last-resort handler prints them) would only repeat it.
        logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(main())
    except typer.Exit:
        raise
    except CostTrackerError as exc:
        _fail(str(exc))


def _range(since: str, until: str | None) -> tuple[date, date]:
    first = _day(since, "--since")
    last = _day(until, "--until") if until else datetime.now(UTC).date()
    if last < first:
        raise typer.BadParameter("--until is before --since", param_hint="--until")
    return first, last + timedelta(days=1)


@app.command()
def report(
    since: Since,
    until: Until = None,
    by: Annotated[GroupByChoice, typer.Option("--by", help="Group rows by.")] = GroupByChoice.model,
    project: Project = None,
    tz: Zone = "UTC",
    database_url: DatabaseUrl = None,
    local_dir: LocalDir = None,
    connect_timeout: ConnectTimeout = 5.0,
    server_rows_only: ServerRowsOnly = False,
) -> None:
    """Print spend between two days grouped by model, step, project or day."""
    start, end = _range(since, until)
    rows: list[BreakdownRow] = _run(
        _Source(database_url, local_dir, connect_timeout),
        tz,
        project,
        lambda t: t.get_cost_breakdown(
            start,
            end,
            by.value,
            project=project,
            all_projects=project is None,
            server_rows_only=server_rows_only,
        ),
    )
    table = Table(title=f"Spend {start.isoformat()} .. {(end - timedelta(days=1)).isoformat()}")
    table.add_column(by.value)
    for name in ("calls", "unpriced", "failed", "prompt tok", "completion tok", "cost (USD)"):
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(
            row.key if row.key is not None else "—",
            str(row.calls),
            str(row.unpriced_calls),
            str(row.failed_calls),
            str(row.prompt_tokens),
            str(row.completion_tokens),
            f"{row.total_cost:f}",
        )
    total = sum((row.total_cost for row in rows), Decimal(0))
    table.add_section()
    table.add_row(
        "total",
        str(sum(row.calls for row in rows)),
        str(sum(row.unpriced_calls for row in rows)),
        str(sum(row.failed_calls for row in rows)),
        str(sum(row.prompt_tokens for row in rows)),
        str(sum(row.completion_tokens for row in rows)),
        f"{total:f}",
    )
    console.print(table)


@app.command()
def export(
    since: Since,
    until: Until = None,
    format: Annotated[FormatChoice, typer.Option("--format")] = FormatChoice.csv,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default: stdout).")
    ] = None,
    project: Project = None,
    tz: Zone = "UTC",
    database_url: DatabaseUrl = None,
    local_dir: LocalDir = None,
    connect_timeout: ConnectTimeout = 5.0,
    server_rows_only: ServerRowsOnly = False,
) -> None:
    """Export the records between two days as CSV or JSON (exact decimal money)."""
    start, end = _range(since, until)
    text: str = _run(
        _Source(database_url, local_dir, connect_timeout),
        tz,
        project,
        lambda t: t.export(
            start,
            end,
            format.value,
            project=project,
            all_projects=project is None,
            server_rows_only=server_rows_only,
        ),
    )
    if output is None:
        typer.echo(text, nl=False)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot write {output}: {exc.strerror or exc}")
        console.print(f"wrote {output}")


@db_app.command("migrate")
def migrate(database_url: DatabaseUrl = None, connect_timeout: ConnectTimeout = 5.0) -> None:
    """Apply the core and cost-tracker migrations (needs the llm-common-db package)."""
    if not database_url:
        raise typer.BadParameter(
            "give --database-url or set DATABASE_URL", param_hint="--database-url"
        )
    try:
        import llm_common_db
    except ImportError:
        _fail("migrations need llm-common-db: pip install llm-common-db")
    try:
        applied = asyncio.run(
            llm_common_db.migrate(
                database_url, packages=["cost-tracker"], connect_timeout=connect_timeout
            )
        )
    except llm_common_db.InvalidConnectionStringError as exc:
        _fail(str(exc))  # says what is wrong without repeating the string
    except Exception as exc:  # a CLI prints one line, never a traceback
        where = llm_common_db.redact_conninfo(database_url)
        _fail(f"cannot migrate {where}: {_without_password(str(exc), database_url)}")
    console.print(f"applied {len(applied)} migration(s)")


def _without_password(text: str, conninfo: str) -> str:
    # libpq's messages do not quote the password today; make sure none ever gets printed.
    from psycopg.conninfo import conninfo_to_dict

    password = conninfo_to_dict(conninfo).get("password")
    return text.replace(str(password), "***") if password else text
