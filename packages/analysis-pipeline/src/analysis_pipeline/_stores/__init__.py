"""Run stores: where runs, steps and per-step model choices are kept.

``PostgresRunStore`` and ``SupabaseRunStore`` load their drivers lazily (optional extras).
"""

from typing import TYPE_CHECKING

from ._protocol import RunStore
from .local import LocalRunStore

if TYPE_CHECKING:
    from .postgres import PostgresRunStore
    from .supabase import SupabaseRunStore

__all__ = ["LocalRunStore", "PostgresRunStore", "RunStore", "SupabaseRunStore"]


def __getattr__(name: str) -> object:
    if name == "PostgresRunStore":
        from .postgres import PostgresRunStore

        return PostgresRunStore
    if name == "SupabaseRunStore":
        from .supabase import SupabaseRunStore

        return SupabaseRunStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
