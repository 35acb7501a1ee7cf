"""Errors raised by llm-common-db.

Error tree::

    MigrationError                  base of everything this package raises
    ├── MigrationFileError          a file in the migrations directory is misnamed or unreadable
    ├── ChecksumMismatchError       an already-applied file changed on disk (drift)
    └── MigrationFailedError        the database rejected a migration (its transaction rolled back)
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
