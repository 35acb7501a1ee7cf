"""The public API is exactly what __all__ lists (nothing leaks by accident)."""

import importlib.metadata

import analysis_pipeline


def test_version_comes_from_metadata() -> None:
    assert analysis_pipeline.__version__ == importlib.metadata.version("analysis-pipeline")


def test_all_names_resolve() -> None:
    for name in analysis_pipeline.__all__:
        assert hasattr(analysis_pipeline, name), name
