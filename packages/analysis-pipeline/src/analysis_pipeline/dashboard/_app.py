"""The admin dashboard: a FastAPI app of server-rendered pages over the run and cost stores."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal, cast
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from analysis_pipeline._errors import (
    AnalysisPipelineError,
    ConfigurationError,
    InvalidInputError,
    RunInProgressError,
    RunNotFoundError,
    StoreUnavailableError,
)
from analysis_pipeline._records import RunStatus
from analysis_pipeline._registry import STEP_NAMES
from analysis_pipeline._reports import RunFilter, check_step
from analysis_pipeline._rollout import DEFAULT_FLAG
from analysis_pipeline._stores import RunStore
from analysis_pipeline.dashboard._charts import bar_chart, line_chart
from analysis_pipeline.dashboard._security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    SESSION_COOKIE,
    Csrf,
    TokenAuth,
    cookie_path,
    read_form,
)
from analysis_pipeline.dashboard._switch import SHADOW_CSV_FIELDS, load_switch, shadow_csv_rows

__all__ = ["ProjectBudget", "check_model", "create_dashboard"]

logger = logging.getLogger(__name__)

_STATUSES: tuple[RunStatus, ...] = ("running", "completed", "failed")
_GROUPS: tuple[Literal["model", "step", "project", "day"], ...] = (
    "model", "step", "project", "day"
)  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class ProjectBudget:
    """A project's budgets as the dashboard shows them (None: not budgeted).

    Attributes:
        daily: Daily limit in US dollars.
        monthly: Monthly limit in US dollars.
    """

    daily: Decimal | None = None
    monthly: Decimal | None = None


def check_model(model: str) -> str | None:
    """Why ``model`` may not be configured for a step, or None when it may.

    A model llm-client cannot resolve (no provider, no price) is unknown; one without a price is
    refused too: its calls could not be budgeted and would show as unpriced.

    Args:
        model: A model string or llm-client alias.

    Returns:
        The reason to refuse it, or None.
    """
    from llm_client import LLMClientError, LLMConfig, model_info

    try:
        resolved = LLMConfig.load().resolve_alias(model)
    except LLMClientError as exc:
        return f"cannot resolve {model!r}: {exc}"
    info = model_info(resolved)
    if info.provider is None and info.price is None:
        return f"unknown model {model!r}: llm-client knows no provider or price for it"
    if info.price is None:
        return f"unpriced model {model!r}: no price is known, so its cost could not be budgeted"
    return None


def _money(value: Decimal | None, places: int = 6) -> str:
    if value is None:
        return "unpriced"
    return f"${value:,.{places}f}"


def _num(value: float | None, spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


def _safe_cell(value: Any) -> Any:
    # A spreadsheet would run a text cell starting with = + - @ as a formula; numbers stay as is.
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_text(fields: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """CSV with a header; None as an empty cell, Decimal exact, formula-like text neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        cells = []
        for name in fields:
            value = row.get(name)
            if value is None:
                cells.append("")
            elif isinstance(value, Decimal):
                cells.append(format(value, "f"))
            elif isinstance(value, datetime | date):
                cells.append(value.isoformat())
            else:
                cells.append(_safe_cell(value))
        writer.writerow(cells)
    return out.getvalue()


def _csv_response(text: str, name: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


def _parse_day(value: str, name: str) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise HTTPException(400, f"{name} must be a date like 2026-12-01") from None


def _midnight(day: date) -> datetime:
    """The start of ``day`` in UTC (the Models and Runs filters' days are UTC days)."""
    return datetime.combine(day, time(), UTC)


def _parse_month(value: str, today: date) -> date:
    if not value.strip():
        return today.replace(day=1)
    try:
        return date.fromisoformat(value.strip() + "-01")
    except ValueError:
        raise HTTPException(400, "month must look like 2026-12") from None


def _name_of(user: Any) -> str:
    if isinstance(user, str) and user:
        return user
    for attr in ("email", "username", "name", "id"):
        value = user.get(attr) if isinstance(user, Mapping) else getattr(user, attr, None)
        if value:
            return str(value)
    return "admin"


CostSource = Any
"""A cost-tracker ``CostStore`` or ``CostTracker`` (its ``store`` is used)."""


def create_dashboard(
    *,
    run_store: RunStore,
    cost_store: CostSource | None = None,
    pipeline: Any | None = None,
    resume_models: Mapping[str, Any] | None = None,
    auth_dependency: Callable[..., Any] | None = None,
    token: str | None = None,
    budgets: Mapping[str, ProjectBudget] | None = None,
    flag_store: RunStore | None = None,
    flag_name: str = DEFAULT_FLAG,
    model_check: Callable[[str], str | None] = check_model,
    tz: str = "UTC",
    title: str = "LLM admin",
    page_size: int = 50,
) -> FastAPI:
    """Build the admin dashboard app (mount it under an admin router, or serve it standalone).

    Every route is behind ``auth_dependency`` when given (its return value, a string or an
    object with ``email``/``username``/``name``, names the admin in the audit trail); otherwise
    behind ``token`` (``Authorization: Bearer`` or the login form). With neither, every request
    is refused with 503.

    Args:
        run_store: The pipeline's run store (runs, steps, model configs, reports).
        cost_store: Cost-tracker's store (or a ``CostTracker``) for the Spend page.
        pipeline: An ``AnalysisPipeline`` on ``run_store``, to resume failed runs.
        resume_models: The ``models`` argument of ``pipeline.resume`` (None: its own).
        auth_dependency: The mounting app's FastAPI dependency that authenticates an admin.
        token: The standalone server's shared token.
        budgets: Budgets per project; a project not listed shows the last limits its tracker
            recorded in the store.
        flag_store: Store of the rollout flag and shadow runs (default ``run_store``).
        flag_name: Name of the rollout flag.
        model_check: Why a model may not be configured (default :func:`check_model`).
        tz: Time zone of the Spend page's days and months.
        title: Page title.
        page_size: Runs per page.

    Returns:
        The FastAPI app.

    Raises:
        ConfigurationError: An unknown time zone or a page size out of range.
    """
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"unknown time zone {tz!r}") from None
    if not 1 <= page_size <= 1000:
        raise ConfigurationError("page_size must be between 1 and 1000")
    costs: Any = getattr(cost_store, "store", cost_store)
    flags: RunStore = flag_store if flag_store is not None else run_store
    fixed_budgets = dict(budgets or {})
    env = Environment(
        loader=PackageLoader("analysis_pipeline.dashboard", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
    )
    env.filters["money"] = _money
    env.filters["num"] = _num
    token_auth = TokenAuth(token) if auth_dependency is None else None
    # The CSRF key outlives logins and restarts when a token is set (it is derived from it).
    csrf = Csrf(
        hashlib.sha256(b"llm-common-dashboard-csrf:" + token.encode()).digest()
        if token and auth_dependency is None
        else secrets.token_bytes(32)
    )

    principal: Callable[..., Awaitable[str]]
    if auth_dependency is not None:
        dependency = auth_dependency

        async def app_principal(user: Any = Depends(dependency)) -> str:  # noqa: B008
            return _name_of(user)

        principal = app_principal
    else:
        auth = cast(TokenAuth, token_auth)

        async def token_principal(request: Request) -> str:
            who = auth.principal(request)
            if who is not None:
                return who
            if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                login = f"{request.scope.get('root_path', '')}/login"
                raise HTTPException(303, "log in first", headers={"location": login})
            raise HTTPException(401, "not authenticated", headers={"www-authenticate": "Bearer"})

        principal = token_principal

    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    pages = APIRouter(dependencies=[Depends(principal)])

    def base_of(request: Request) -> str:
        return str(request.scope.get("root_path") or "")

    def render(
        request: Request, template: str, context: Mapping[str, Any], status: int = 200
    ) -> HTMLResponse:
        form_token, fresh = csrf.token_for(request)
        nonce = secrets.token_urlsafe(16)
        html = env.get_template(template).render(
            base=base_of(request),
            title=title,
            csrf_field=CSRF_FIELD,
            csrf_token=form_token,
            nonce=nonce,
            standalone=auth_dependency is None,
            step_names=STEP_NAMES,
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        response.headers["content-security-policy"] = (
            f"default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
        response.headers["x-content-type-options"] = "nosniff"
        response.headers["referrer-policy"] = "same-origin"
        response.headers["cache-control"] = "no-store"
        if fresh is not None:
            response.set_cookie(
                CSRF_COOKIE,
                fresh,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path=cookie_path(request),
            )
        return response

    async def checked_form(request: Request) -> dict[str, str]:
        form = await read_form(request)
        csrf.check(request, form)
        return form

    def redirect(request: Request, path: str, **query: str) -> RedirectResponse:
        suffix = f"?{urlencode(query)}" if query else ""
        return RedirectResponse(f"{base_of(request)}{path}{suffix}", status_code=303)

    @app.exception_handler(AnalysisPipelineError)
    async def _pipeline_error(request: Request, exc: AnalysisPipelineError) -> Response:
        status = 500
        if isinstance(exc, InvalidInputError):
            status = 400
        elif isinstance(exc, RunNotFoundError):
            status = 404
        elif isinstance(exc, RunInProgressError):
            status = 409
        elif isinstance(exc, StoreUnavailableError):
            status = 503
        logger.warning("dashboard: %s: %s", type(exc).__name__, exc)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    # --- login (standalone token only) -------------------------------------------------------
    if token_auth is not None:
        login_auth = token_auth

        @app.get("/login", response_class=HTMLResponse, name="login")
        async def login_page(request: Request) -> HTMLResponse:
            login_auth.require_configured()
            return render(request, "login.html", {"error": None, "page": "login"})

        @app.post("/login", name="login_submit")
        async def login_submit(request: Request) -> Response:
            login_auth.require_configured()
            form = await checked_form(request)
            if not login_auth.token_matches(form.get("token", "")):
                context = {"error": "wrong token", "page": "login"}
                return render(request, "login.html", context, status=401)
            name = (form.get("name") or "admin").strip()[:80] or "admin"
            response = redirect(request, "/models")
            response.set_cookie(
                SESSION_COOKIE,
                login_auth.session_cookie(name.replace("|", "/")),
                max_age=login_auth.session_seconds,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path=cookie_path(request),
            )
            return response

    # --- Models ------------------------------------------------------------------------------
    async def model_data(
        step: str, since: str, until: str, jurisdiction: str
    ) -> tuple[Any, date, date]:
        today = datetime.now(UTC).date()
        low = _parse_day(since, "since") or today - timedelta(days=30)
        high = _parse_day(until, "until") or today
        report = await run_store.model_report(
            check_step(step),
            since=_midnight(low),
            until=_midnight(high + timedelta(days=1)),
            jurisdiction=jurisdiction.strip() or None,
        )
        return report, low, high

    if token_auth is not None:

        @pages.post("/logout", name="logout")
        async def logout(request: Request) -> Response:
            await checked_form(request)
            response = redirect(request, "/login")
            response.delete_cookie(SESSION_COOKIE, path=cookie_path(request))
            return response

    @pages.get("/", name="home")
    async def home(request: Request) -> Response:
        return redirect(request, "/models")

    @pages.get("/models", response_class=HTMLResponse, name="models")
    async def models_page(
        request: Request,
        step: str = "generate",
        since: str = "",
        until: str = "",
        jurisdiction: str = "",
    ) -> HTMLResponse:
        report, low, high = await model_data(step, since, until, jurisdiction)
        series: dict[str, list[tuple[date, float]]] = {}
        for day in report.daily:
            if day.mean_review_score is not None:
                series.setdefault(day.model, []).append((day.day, day.mean_review_score))
        chart = line_chart(series, title=f"Mean review score per day, step {step}")
        query = urlencode({"step": step, "since": low, "until": high, "jurisdiction": jurisdiction})
        return render(
            request,
            "models.html",
            {
                "page": "models",
                "report": report,
                "chart": chart,
                "step": step,
                "since": low.isoformat(),
                "until": high.isoformat(),
                "jurisdiction": jurisdiction,
                "query": query,
            },
        )

    @pages.get("/models.csv", name="models_csv")
    async def models_csv(
        step: str = "generate", since: str = "", until: str = "", jurisdiction: str = ""
    ) -> Response:
        report, _, _ = await model_data(step, since, until, jurisdiction)
        fields = [*report.models[0].model_dump().keys()] if report.models else []
        fields = fields or ["model", "step", "runs"]
        rows = [
            {**m.model_dump(), "quality_per_dollar": m.quality_per_dollar} for m in report.models
        ]
        return _csv_response(csv_text([*fields, "quality_per_dollar"], rows), f"models-{step}.csv")

    # --- Spend -------------------------------------------------------------------------------
    async def spend_data(month: str, project: str) -> dict[str, Any]:
        if costs is None:
            return {"configured": False}
        now_local = datetime.now(zone)
        today = now_local.date()
        first = _parse_month(month, today)
        following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)

        def at(day: date) -> datetime:
            return datetime.combine(day, time(), zone).astimezone(UTC)

        scope = project.strip() or None
        month_start, month_end = at(first), at(following)
        groups = {
            group: await costs.breakdown(month_start, month_end, group, scope, tz)
            for group in _GROUPS
        }
        today_rows = await costs.breakdown(
            at(today), at(today + timedelta(days=1)), "project", None, tz
        )
        this_month = today.replace(day=1)
        month_rows = (
            groups["project"]
            if first == this_month and scope is None
            else await costs.breakdown(
                at(this_month),
                at((this_month.replace(day=28) + timedelta(days=4)).replace(day=1)),
                "project",
                None,
                tz,
            )
        )
        by_today = {r.key: r for r in today_rows}
        projects = []
        for row in month_rows:
            name = row.key or "(none)"
            budget = fixed_budgets.get(name)
            if budget is None and row.key is not None:
                daily = await costs.budget_status(row.key, "daily", today)
                monthly = await costs.budget_status(row.key, "monthly", this_month)
                budget = ProjectBudget(daily.budget, monthly.budget)
            budget = budget or ProjectBudget()
            day_row = by_today.get(row.key)
            projects.append(
                {
                    "project": name,
                    "today": day_row.total_cost if day_row else Decimal(0),
                    "today_unpriced": day_row.unpriced_calls if day_row else 0,
                    "month": row.total_cost,
                    "month_unpriced": row.unpriced_calls,
                    "daily_budget": budget.daily,
                    "monthly_budget": budget.monthly,
                    "over_daily": budget.daily is not None
                    and day_row is not None
                    and day_row.total_cost > budget.daily,
                    "over_monthly": budget.monthly is not None and row.total_cost > budget.monthly,
                }
            )
        bars = [
            (r.key or "?", float(r.total_cost), r.unpriced_calls > 0)
            for r in sorted(groups["day"], key=lambda r: r.key or "")
        ]
        return {
            "configured": True,
            "month": first.strftime("%Y-%m"),
            "project": project,
            "today": today.isoformat(),
            "projects": projects,
            "groups": groups,
            "chart": bar_chart(bars, title=f"Spend per day, {first:%Y-%m}"),
            "total": sum((r.total_cost for r in groups["day"]), Decimal(0)),
            "unpriced": sum(r.unpriced_calls for r in groups["day"]),
            "calls": sum(r.calls for r in groups["day"]),
        }

    @pages.get("/spend", response_class=HTMLResponse, name="spend")
    async def spend_page(request: Request, month: str = "", project: str = "") -> HTMLResponse:
        data = await spend_data(month, project)
        query = urlencode({"month": data.get("month", ""), "project": project})
        return render(request, "spend.html", {"page": "spend", "query": query, **data})

    @pages.get("/spend.csv", name="spend_csv")
    async def spend_csv(month: str = "", project: str = "") -> Response:
        data = await spend_data(month, project)
        if not data["configured"]:
            raise HTTPException(404, "no cost store configured")
        fields = ["group_by", "key", "total_cost", "calls", "unpriced_calls", "failed_calls",
                  "prompt_tokens", "completion_tokens"]  # fmt: skip
        rows = [
            {"group_by": group, **{f: getattr(row, f) for f in fields[1:]}}
            for group in _GROUPS
            for row in data["groups"][group]
        ]
        return _csv_response(csv_text(fields, rows), f"spend-{data['month']}.csv")

    # --- Runs --------------------------------------------------------------------------------
    def run_filter(
        status: str, bill: str, jurisdiction: str, model: str, since: str, until: str
    ) -> RunFilter:
        if status and status not in _STATUSES:
            raise HTTPException(400, f"status must be one of {', '.join(_STATUSES)}")
        low, high = _parse_day(since, "since"), _parse_day(until, "until")
        return RunFilter(
            status=status if status else None,
            bill=bill.strip() or None,
            jurisdiction=jurisdiction.strip() or None,
            model=model.strip() or None,
            since=None if low is None else _midnight(low),
            until=None if high is None else _midnight(high + timedelta(days=1)),
        )

    @pages.get("/runs", response_class=HTMLResponse, name="runs")
    async def runs_page(
        request: Request,
        status: str = "",
        bill: str = "",
        jurisdiction: str = "",
        model: str = "",
        since: str = "",
        until: str = "",
        page: int = 1,
    ) -> HTMLResponse:
        if page < 1:
            raise HTTPException(400, "page must be 1 or more")
        found = await run_store.run_page(
            run_filter(status, bill, jurisdiction, model, since, until),
            offset=(page - 1) * page_size,
            limit=page_size,
        )
        filters = {"status": status, "bill": bill, "jurisdiction": jurisdiction,
                   "model": model, "since": since, "until": until}  # fmt: skip
        pages_total = max(1, -(-found.total // page_size))
        return render(
            request,
            "runs.html",
            {
                "page": "runs",
                "found": found,
                "filters": filters,
                "statuses": _STATUSES,
                "page_no": page,
                "pages_total": pages_total,
                "query": urlencode(filters),
            },
        )

    @pages.get("/runs.csv", name="runs_csv")
    async def runs_csv(
        status: str = "",
        bill: str = "",
        jurisdiction: str = "",
        model: str = "",
        since: str = "",
        until: str = "",
    ) -> Response:
        found = await run_store.run_page(
            run_filter(status, bill, jurisdiction, model, since, until), limit=10_000
        )
        fields = ["id", "bill_id", "jurisdiction", "status", "review_passed", "review_score",
                  "quality_score", "rounds", "cost", "latency_ms", "error", "started_at",
                  "completed_at"]  # fmt: skip
        rows = [{name: getattr(run, name) for name in fields} for run in found.runs]
        return _csv_response(csv_text(fields, rows), "runs.csv")

    async def run_detail(
        request: Request, run_id: str, notice: str | None = None, status: int = 200
    ) -> HTMLResponse:
        run = await run_store.get_run(run_id)
        steps = await run_store.list_steps(run_id)
        sources: list[Mapping[str, Any]] = []
        for step in steps:
            if step.step == "research" and step.output:
                sources = list(step.output.get("sources") or [])
        if run.analysis and run.analysis.get("sources"):
            sources = list(run.analysis["sources"])
        return render(
            request,
            "run.html",
            {
                "page": "runs",
                "run": run,
                "steps": steps,
                "sources": sources,
                "analysis": run.analysis or {},
                "review": run.review or {},
                "can_resume": pipeline is not None and run.status != "completed",
                "notice": notice,
            },
            status=status,
        )

    @pages.get("/runs/{run_id}", response_class=HTMLResponse, name="run")
    async def run_page(request: Request, run_id: str, done: str = "") -> HTMLResponse:
        notices = {"scored": "Quality score saved.", "resumed": "Run resumed and finished."}
        return await run_detail(request, run_id, notices.get(done))

    @pages.post("/runs/{run_id}/score", name="run_score")
    async def run_score(request: Request, run_id: str) -> Response:
        form = await checked_form(request)
        try:
            quality = float(form.get("quality", ""))
        except ValueError:
            return await run_detail(request, run_id, "Quality must be a number 0..1.", 400)
        try:
            await run_store.set_quality(run_id, quality)
        except InvalidInputError as exc:
            return await run_detail(request, run_id, str(exc), 400)
        return redirect(request, f"/runs/{run_id}", done="scored")

    @pages.post("/runs/{run_id}/resume", name="run_resume")
    async def run_resume(request: Request, run_id: str) -> Response:
        await checked_form(request)
        if pipeline is None:
            raise HTTPException(404, "resume needs the dashboard to be given a pipeline")
        try:
            await pipeline.resume(run_id, dict(resume_models) if resume_models else None)
        except RunNotFoundError:
            raise
        except AnalysisPipelineError as exc:
            return await run_detail(request, run_id, f"Resume failed: {exc}", 409)
        return redirect(request, f"/runs/{run_id}", done="resumed")

    # --- Switch-over -------------------------------------------------------------------------
    @pages.get("/switch", response_class=HTMLResponse, name="switch")
    async def switch_page(request: Request) -> HTMLResponse:
        view = await load_switch(flags, flag_name)
        return render(request, "switch.html", {"page": "switch", "view": view})

    @pages.get("/switch.csv", name="switch_csv")
    async def switch_csv() -> Response:
        records = await flags.shadow_results(limit=None)
        return _csv_response(
            csv_text(SHADOW_CSV_FIELDS, shadow_csv_rows(records)), "switch-over.csv"
        )

    @pages.post("/switch/flag", name="switch_flag")
    async def switch_flag(
        request: Request,
        actor: str = Depends(principal),
    ) -> Response:
        form = await checked_form(request)
        action = form.get("action", "")
        if action == "off":
            await flags.set_flag(flag_name, enabled=False, percent=None, changed_by=actor)
        elif action == "on":
            await flags.set_flag(flag_name, enabled=True, percent=None, changed_by=actor)
        elif action == "percent":
            try:
                percent = float(form.get("percent", ""))
            except ValueError:
                raise HTTPException(400, "percent must be a number 0..100") from None
            # enabled=None: the percentage decides (this also lifts a kill switch).
            await flags.set_flag(flag_name, enabled=None, percent=percent, changed_by=actor)
        else:
            raise HTTPException(400, "action must be off, on or percent")
        return redirect(request, "/switch")

    # --- Configuration -----------------------------------------------------------------------
    async def config_view(
        request: Request,
        errors: Mapping[str, list[str]] | None = None,
        drafts: Mapping[str, str] | None = None,
        saved: str = "",
        status: int = 200,
    ) -> HTMLResponse:
        configs = await run_store.get_model_configs()
        changes = await run_store.model_config_changes(limit=50)
        return render(
            request,
            "config.html",
            {
                "page": "config",
                "configs": configs,
                "changes": changes,
                "errors": errors or {},
                "drafts": drafts or {},
                "saved": saved if saved in STEP_NAMES else "",
            },
            status=status,
        )

    @pages.get("/config", response_class=HTMLResponse, name="config")
    async def config_page(request: Request, saved: str = "") -> HTMLResponse:
        return await config_view(request, saved=saved)

    @pages.post("/config/{step}", name="config_step")
    async def config_step(
        request: Request,
        step: str,
        actor: str = Depends(principal),
    ) -> Response:
        form = await checked_form(request)
        check_step(step)
        raw = form.get("models", "")
        models = [m.strip() for m in raw.replace("\n", ",").split(",") if m.strip()]
        reasons = [] if models else ["give at least one model (a comma separates fallbacks)"]
        reasons += [r for r in (model_check(m) for m in models) if r]
        if len(set(models)) != len(models):
            reasons.append("a model appears twice in the chain")
        if reasons:
            return await config_view(request, {step: reasons}, {step: raw}, status=400)
        await run_store.set_model_config(step, models, changed_by=actor)
        return redirect(request, "/config", saved=step)

    app.include_router(pages)
    return app
