"""The public API is exactly what __all__ lists (nothing leaks by accident)."""

import llm_common_testkit


def test_all_names_resolve() -> None:
    for name in llm_common_testkit.__all__:
        assert getattr(llm_common_testkit, name) is not None, name
