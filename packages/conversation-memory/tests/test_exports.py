"""The public API is exactly what __all__ lists (nothing leaks by accident)."""

import importlib.metadata

import conversation_memory


def test_version_comes_from_metadata() -> None:
    assert conversation_memory.__version__ == importlib.metadata.version("conversation-memory")


def test_all_names_resolve() -> None:
    for name in conversation_memory.__all__:
        assert hasattr(conversation_memory, name), name
