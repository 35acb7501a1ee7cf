"""Fixtures of the chaos suite (tests/chaos): the support module and the loopback servers."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def _load_support() -> ModuleType:
    # Loaded from its path (tests are not packages); the worker subprocess does the same.
    name = "chaos_support"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("_support.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def chaos() -> ModuleType:
    """tests/chaos/_support.py: fault plans, served ledger, stack builder, resource counts."""
    return _load_support()


@pytest.fixture
def fresh_llm_server() -> Iterator[Any]:
    """A FakeLLMServer of this test's own (its handler and counters are the test's)."""
    from llm_client.testing import FakeLLMServer

    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fresh_search_server() -> Iterator[Any]:
    """A FakeZaiSearchServer of this test's own."""
    from web_search.testing import FakeZaiSearchServer

    with FakeZaiSearchServer() as server:
        yield server
