"""SQL migrations for the llm-common packages, the command that applies them, and the
PostgreSQL plumbing every package's store shares (:class:`PostgresPool`, :func:`redact_conninfo`).

Example:
    >>> from llm_common_db import migrate
    >>> applied = await migrate("postgresql://postgres@127.0.0.1:5432/app")  # doctest: +SKIP
"""

from importlib.metadata import version as _version

from ._conninfo import redact_conninfo
from ._errors import (
    ChecksumMismatchError,
    DatabaseUnavailableError,
    InvalidConnectionStringError,
    MigrationError,
    MigrationFailedError,
    MigrationFileError,
    MissingTablesError,
)
from ._migrate import (
    Migration,
    MigrationState,
    default_migrations_dir,
    discover_migrations,
    migrate,
    migrate_sync,
    migration_status,
)
from ._pool import PostgresPool

__version__ = _version("llm-common-db")

__all__ = [
    "ChecksumMismatchError",
    "DatabaseUnavailableError",
    "InvalidConnectionStringError",
    "Migration",
    "MigrationError",
    "MigrationFailedError",
    "MigrationFileError",
    "MigrationState",
    "MissingTablesError",
    "PostgresPool",
    "__version__",
    "default_migrations_dir",
    "discover_migrations",
    "migrate",
    "migrate_sync",
    "migration_status",
    "redact_conninfo",
]
