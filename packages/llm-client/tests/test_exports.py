"""The public API is exactly what __all__ lists (nothing leaks by accident)."""

import importlib.metadata

import llm_client


def test_version_comes_from_metadata() -> None:
    assert llm_client.__version__ == importlib.metadata.version("llm-client")


def test_all_names_resolve() -> None:
    for name in llm_client.__all__:
        assert hasattr(llm_client, name), name
