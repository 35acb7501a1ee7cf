"""SQL migrations for the llm-common packages and the command that applies them.

Example:
    >>> from llm_common_db import migrate
    >>> applied = await migrate("postgresql://postgres@127.0.0.1:5432/app")  # doctest: +SKIP
"""

from importlib.metadata import version as _version

from ._errors import (
    ChecksumMismatchError,
    MigrationError,
    MigrationFailedError,
    MigrationFileError,
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

__version__ = _version("llm-common-db")

__all__ = [
    "ChecksumMismatchError",
    "Migration",
    "MigrationError",
    "MigrationFailedError",
    "MigrationFileError",
    "MigrationState",
    "__version__",
    "default_migrations_dir",
    "discover_migrations",
    "migrate",
    "migrate_sync",
    "migration_status",
]
