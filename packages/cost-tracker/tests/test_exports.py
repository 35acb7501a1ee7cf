"""The public API is exactly what __all__ lists (nothing leaks by accident)."""

import importlib.metadata

import cost_tracker


def test_version_comes_from_metadata() -> None:
    assert cost_tracker.__version__ == importlib.metadata.version("cost-tracker")


def test_all_names_resolve() -> None:
    for name in cost_tracker.__all__:
        assert hasattr(cost_tracker, name), name
