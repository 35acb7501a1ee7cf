"""The public API is exactly what __all__ lists (nothing leaks by accident)."""

import importlib.metadata

import analysis_pipeline
import pytest


def test_version_comes_from_metadata() -> None:
    assert analysis_pipeline.__version__ == importlib.metadata.version("analysis-pipeline")


def test_all_names_resolve() -> None:
    for name in analysis_pipeline.__all__:
        assert hasattr(analysis_pipeline, name), name


def test_testing_module_exports_the_offline_stand_ins() -> None:
    import analysis_pipeline.testing as testing

    assert sorted(testing.__all__) == [
        "OfflineSearch", "offline_answer", "offline_handler", "offline_legacy_analyser",
        "offline_models",
        "structured_reply", "task_of",
    ]  # fmt: skip
    for name in testing.__all__:
        assert hasattr(testing, name), name


def test_dashboard_module_exports() -> None:
    import analysis_pipeline.dashboard as dashboard

    assert sorted(dashboard.__all__) == [
        "ProjectBudget", "TOKEN_ENV_VAR", "check_model", "create_dashboard", "csv_text"
    ]  # fmt: skip


def test_moved_names_still_work_with_a_deprecation_warning() -> None:
    import analysis_pipeline.testing as testing

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


@pytest.mark.parametrize(
    ("name", "blocked", "extra"),
    [("PostgresRunStore", "psycopg", "postgres"), ("SupabaseRunStore", "supabase", "supabase")],
)
def test_a_missing_extra_names_what_to_install(name: str, blocked: str, extra: str) -> None:
    import subprocess
    import sys

    code = (
        f"import sys; sys.modules[{blocked!r}] = None\n"
        "import analysis_pipeline as ap\n"
        "try:\n"
        f"    ap.{name}\n"
        "except ap.MissingExtraError as exc:\n"
        "    assert isinstance(exc, ImportError)\n"
        "    print(exc.package, exc.extra, exc, sep='|')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    package, got_extra, message = done.stdout.strip().split("|")
    assert (package, got_extra) == ("analysis-pipeline", extra)
    assert message == f"{name} needs the {extra!r} extra: pip install 'analysis-pipeline[{extra}]'"
