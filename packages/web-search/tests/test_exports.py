"""The public API is exactly what __all__ lists (nothing leaks by accident)."""

import importlib.metadata

import web_search


def test_version_comes_from_metadata() -> None:
    assert web_search.__version__ == importlib.metadata.version("web-search")


def test_all_names_resolve() -> None:
    for name in web_search.__all__:
        assert hasattr(web_search, name), name
