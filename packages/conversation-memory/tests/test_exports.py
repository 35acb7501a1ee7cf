"""The public API is exactly what __all__ lists (nothing leaks by accident)."""

import importlib.metadata

import conversation_memory


def test_version_comes_from_metadata() -> None:
    assert conversation_memory.__version__ == importlib.metadata.version("conversation-memory")


def test_all_names_resolve() -> None:
    for name in conversation_memory.__all__:
        assert hasattr(conversation_memory, name), name


def test_importing_the_package_loads_no_database_driver() -> None:
    import subprocess
    import sys

    script = """
import sys, conversation_memory
stores = ("conversation_memory._stores.postgres", "conversation_memory._stores.supabase")
drivers = ("psycopg", "psycopg_pool", "supabase", "postgrest", "llm_common_db", *stores)
print(sorted(m for m in drivers if m in sys.modules))
conversation_memory.PostgresMessageStore, conversation_memory.SupabaseMessageStore
print(sorted(m for m in stores if m in sys.modules))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.splitlines() == [
        "[]",
        "['conversation_memory._stores.postgres', 'conversation_memory._stores.supabase']",
    ]
