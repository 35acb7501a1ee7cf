"""Errors raised by llm-common-db.

Error tree::

    MigrationError                  base of everything this package raises
    ├── MigrationFileError          a file in the migrations directory is misnamed or unreadable
    ├── ChecksumMismatchError       an already-applied file changed on disk (drift)
    └── MigrationFailedError        the database rejected a migration (its transaction rolled back)

    DatabaseUnavailableError        PostgreSQL unreachable / timed out / circuit breaker open
    MissingTablesError              a package's tables are missing: names the migrate command
    InvalidConnectionStringError    (a ValueError) a connection string libpq cannot parse

The last three come from :class:`~llm_common_db.PostgresPool`, the plumbing every package's
PostgreSQL store shares; stores translate them into their own ``StoreError`` tree. No message
of any of them contains a password.
"""

from __future__ import annotations


class MigrationError(Exception):
    """Base class of every error raised by llm-common-db."""


class MigrationFileError(MigrationError):
    """A migration file is misnamed, duplicated or unreadable."""


class ChecksumMismatchError(MigrationError):
    """An applied migration's file no longer matches the checksum recorded when it was applied.

    Attributes:
        version: The migration version (the ``YYYYMMDDHHMMSS`` prefix).
        recorded: The checksum stored in the database.
        actual: The checksum of the file on disk now.
    """

    def __init__(self, version: str, name: str, recorded: str, actual: str) -> None:
        self.version = version
        self.name = name
        self.recorded = recorded
        self.actual = actual
        super().__init__(
            f"migration {version}_{name}.sql was changed after it was applied "
            f"(recorded sha256 {recorded[:12]}…, file now {actual[:12]}…); "
            "never edit an applied migration — add a new file instead"
        )


class MigrationFailedError(MigrationError):
    """The database rejected a migration; nothing of that file was applied.

    Attributes:
        version: The migration version that failed.
        sqlstate: The PostgreSQL error code, when the server sent one.
    """

    def __init__(self, version: str, name: str, sqlstate: str | None, detail: str) -> None:
        self.version = version
        self.name = name
        self.sqlstate = sqlstate
        super().__init__(f"migration {version}_{name}.sql failed [{sqlstate}]: {detail}")


class InvalidConnectionStringError(ValueError):
    """A PostgreSQL connection string libpq cannot parse.

    The message never repeats the string: libpq's own parse errors quote it, password included.
    """


class DatabaseUnavailableError(Exception):
    """PostgreSQL cannot be reached: refused, timed out, or the circuit breaker is open.

    The message names ``host:port/dbname`` and the reason, never the password.

    Attributes:
        where: ``host:port/dbname`` of the database.
    """

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(message)
        self.where = where


class MissingTablesError(Exception):
    """A package's tables or SQL functions do not exist: its migrations were not applied.

    Attributes:
        package: The distribution whose tables are missing (e.g. ``cost-tracker``).
        command: The command that creates them.
    """

    def __init__(self, package: str, detail: str = "") -> None:
        self.package = package
        self.command = f"llm-common-db migrate --package {package} --database-url <url>"
        message = f"tables for {package} are missing: run `{self.command}`"
        if detail:
            message += f" ({detail})"
        super().__init__(message)
