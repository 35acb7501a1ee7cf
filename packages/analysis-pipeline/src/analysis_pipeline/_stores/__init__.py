"""Run stores: where runs, steps and per-step model choices are kept."""

from ._base import RunStore
from .local import LocalRunStore

__all__ = ["LocalRunStore", "RunStore"]
