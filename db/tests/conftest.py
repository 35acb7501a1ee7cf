"""Fixtures for llm-common-db's own tests: empty databases (the testkit ones come migrated)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_common_db import default_migrations_dir
from llm_common_testkit import create_database, new_database_name, require_postgres
from llm_common_testkit._databases import ClonePool


@pytest.fixture
def empty_db(_llmc_clones: ClonePool) -> Iterator[str]:
    """URL of a brand-new database with no migration applied; dropped (in the background) after."""
    admin = require_postgres()
    name = new_database_name("_empty")
    url = create_database(admin, name)
    yield url
    _llmc_clones.release(name)


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    """A private copy of the shipped migrations directory, safe to edit."""
    target = tmp_path / "migrations"
    shutil.copytree(default_migrations_dir(), target)
    return target
