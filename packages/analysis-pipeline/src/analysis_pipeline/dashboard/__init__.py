"""The admin dashboard: compare models, watch spend, look into runs, switch models and rollout.

Needs the ``dashboard`` extra (``pip install 'analysis-pipeline[dashboard]'``). Mount it under
an app's admin router with the app's own auth dependency::

    from analysis_pipeline.dashboard import create_dashboard

    admin.mount("/dashboard", create_dashboard(
        run_store=store, cost_store=tracker, pipeline=pipeline, auth_dependency=require_admin,
    ))

or serve it standalone: ``analysis-pipeline dashboard --database-url ...`` (every request is
refused until ``LLM_COMMON_DASHBOARD_TOKEN`` is set).
"""

try:
    import fastapi  # noqa: F401
    import jinja2  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in an env without the extra
    from analysis_pipeline._errors import MissingExtraError

    raise MissingExtraError("analysis_pipeline.dashboard", "dashboard") from exc

from analysis_pipeline.dashboard._app import ProjectBudget, check_model, create_dashboard, csv_text

__all__ = ["TOKEN_ENV_VAR", "ProjectBudget", "check_model", "create_dashboard", "csv_text"]

TOKEN_ENV_VAR = "LLM_COMMON_DASHBOARD_TOKEN"  # noqa: S105 (a variable's name)
"""The environment variable the standalone server reads its token from."""
