"""The public API is exactly what __all__ lists (nothing leaks by accident)."""

import importlib.metadata

import analysis_pipeline


def test_version_comes_from_metadata() -> None:
    assert analysis_pipeline.__version__ == importlib.metadata.version("analysis-pipeline")


def test_all_names_resolve() -> None:
    for name in analysis_pipeline.__all__:
        assert hasattr(analysis_pipeline, name), name


def test_testing_module_exports_the_offline_stand_ins() -> None:
    import analysis_pipeline.testing as testing

    assert sorted(testing.__all__) == [
        "OfflineSearch", "offline_answer", "offline_handler", "offline_models",
        "structured_reply", "task_of",
    ]  # fmt: skip
    for name in testing.__all__:
        assert hasattr(testing, name), name


def test_moved_names_still_work_with_a_deprecation_warning() -> None:
    import analysis_pipeline.testing as testing
    import pytest

    for name in ("OfflineSearch", "offline_models", "offline_handler", "task_of"):
        with pytest.warns(DeprecationWarning, match="analysis_pipeline.testing"):
            assert getattr(analysis_pipeline, name) is getattr(testing, name)
        assert name not in analysis_pipeline.__all__


def test_the_core_never_imports_the_testing_package() -> None:
    import subprocess
    import sys

    code = (
        "import sys, analysis_pipeline, analysis_pipeline._pipeline, analysis_pipeline._flow;"
        "print(sorted(m for m in sys.modules if m.endswith('.testing') or '.testing.' in m))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
