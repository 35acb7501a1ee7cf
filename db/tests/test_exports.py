"""The public API is exactly what __all__ lists (nothing leaks by accident)."""

import importlib.metadata

import llm_common_db


def test_version_comes_from_metadata() -> None:
    assert llm_common_db.__version__ == importlib.metadata.version("llm-common-db")


def test_all_names_resolve() -> None:
    for name in llm_common_db.__all__:
        assert hasattr(llm_common_db, name), name


def test_postgres_plumbing_is_public() -> None:
    plumbing = {
        "DatabaseUnavailableError",
        "InvalidConnectionStringError",
        "MissingTablesError",
        "PostgresPool",
        "redact_conninfo",
    }
    assert plumbing <= set(llm_common_db.__all__)
    assert issubclass(llm_common_db.InvalidConnectionStringError, ValueError)
    assert issubclass(llm_common_db.DatabaseUnavailableError, Exception)
    assert issubclass(llm_common_db.MissingTablesError, Exception)
