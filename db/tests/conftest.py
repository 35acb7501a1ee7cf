"""Fixtures for llm-common-db's own tests: empty databases (the testkit ones come migrated)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_common_db import default_migrations_dir
from llm_common_testkit import create_database, new_database_name, require_postgres
from llm_common_testkit._databases import ClonePool


def _throwaway(clones: ClonePool, suffix: str) -> Iterator[str]:
    name = new_database_name(suffix)
    yield create_database(require_postgres(), name)
    clones.release(name)


@pytest.fixture
def empty_db(_llmc_clones: ClonePool) -> Iterator[str]:
    """URL of a brand-new database with no migration applied; dropped (in the background) after."""
    yield from _throwaway(_llmc_clones, "_empty")


@pytest.fixture
def other_empty_db(_llmc_clones: ClonePool) -> Iterator[str]:
    """A second brand-new database, to compare a schema with."""
    yield from _throwaway(_llmc_clones, "_empty2")


OWN_FILES = ("20261124000000_core.sql", "20261124000400_pipeline.sql")


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    """A private, editable migrations directory holding this package's own files.

    Only db/'s own files: the runner's behaviour is under test here, not the other packages'
    migrations (test_applies_all_in_order applies the full shipped set).
    """
    target = tmp_path / "migrations"
    target.mkdir()
    for name in OWN_FILES:
        shutil.copy(default_migrations_dir() / name, target / name)
    return target
