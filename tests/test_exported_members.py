"""Nothing leaks into a package's public namespace by accident (after httpx's test)."""

from __future__ import annotations

import importlib
import types

import pytest

MODULES = [
    "llm_client",
    "llm_client.testing",
    "web_search",
    "web_search.testing",
    "cost_tracker",
    "conversation_memory",
    "analysis_pipeline",
    "analysis_pipeline.testing",
    "llm_common_db",
]


@pytest.mark.parametrize("name", MODULES)
def test_public_namespace_is_exactly_all(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), "duplicates in __all__"
    for member in exported:
        assert hasattr(module, member), f"{name}.__all__ names missing {member}"
    public = {
        member
        for member, value in vars(module).items()
        if not member.startswith("_")
        and not isinstance(value, types.ModuleType)
        and member not in {"annotations", "TYPE_CHECKING"}
    }
    leaked = public - exported
    assert not leaked, f"{name} exposes names missing from __all__: {sorted(leaked)}"
