"""affordabot's admin API on llm-common: analyses behind the rollout flag, model comparison.

Run it (offline with no API keys; real providers with OPENROUTER_API_KEY / ZAI_API_KEY)::

    USE_NEW_LLM_FRAMEWORK_PERCENTAGE=50 uv run uvicorn examples.affordabot_admin:app

Endpoints (all under ``/admin``):

- ``POST /admin/analyze``: ``{bill_id, bill_text, jurisdiction, models?}``. Bills in the rollout's
  new arm (sticky by bill id) run the pipeline; the rest go to the legacy analyzer.
- ``POST /admin/runs/{run_id}/resume`` and ``POST /admin/runs/{run_id}/score`` (``{quality}``).
- ``GET /admin/runs``, ``GET /admin/models/compare?step=generate&days=30&format=json|csv``.
- ``PUT /admin/models/{step}`` (``{models: [...]}``): switch a step's models without a deploy.
- ``/admin/dashboard/``: the admin dashboard (``analysis-pipeline[dashboard]``), mounted behind
  this app's own admin check: ``X-Admin-Token`` must equal ``AFFORDABOT_ADMIN_TOKEN`` (unset:
  every dashboard request is refused).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from analysis_pipeline import (
    AnalysisPipeline,
    BudgetRefusedError,
    InvalidInputError,
    LocalRunStore,
    PipelineRunError,
    RolloutFlag,
    RunNotFoundError,
    comparison_csv,
    resolve_rollout,
)
from analysis_pipeline.testing import OfflineSearch, offline_models
from fastapi import APIRouter, FastAPI, Header, HTTPException
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

LegacyAnalyzer = Callable[["AnalyzeRequest"], Awaitable[dict[str, Any]]]


class AnalyzeRequest(BaseModel):
    """An analysis request from the admin dashboard."""

    bill_id: str
    bill_text: str
    jurisdiction: str
    models: dict[str, str | list[str]] | None = None
    max_rounds: int = Field(default=2, ge=1, le=5)


class ScoreRequest(BaseModel):
    """A manual quality score."""

    quality: float = Field(ge=0, le=1)


class ModelsRequest(BaseModel):
    """A step's new model chain."""

    models: list[str] = Field(min_length=1)


async def legacy_analyzer(request: AnalyzeRequest) -> dict[str, Any]:
    """Stand-in for affordabot's old DualModelAnalyzer (the control arm of the rollout)."""
    return {"framework": "legacy", "bill_id": request.bill_id, "analysis": None}


def create_router(
    pipeline: AnalysisPipeline,
    flag: RolloutFlag | None = None,
    *,
    legacy: LegacyAnalyzer = legacy_analyzer,
    default_models: dict[str, Any] | None = None,
) -> APIRouter:
    """The admin router.

    Args:
        pipeline: The analysis pipeline (its store serves runs and comparisons).
        flag: Which bills use the new framework (sticky by bill id); None reads it per
            request with ``resolve_rollout`` (the run store's row, which an admin flips with
            ``analysis-pipeline flag set`` without a restart, else the environment).
        legacy: The old analyzer, for bills outside the rollout.
        default_models: Models used when a request names none (e.g. offline test models).
    """
    router = APIRouter(prefix="/admin")

    @router.post("/analyze")
    async def analyze(body: AnalyzeRequest) -> dict[str, Any]:
        in_force = flag if flag is not None else await resolve_rollout(pipeline.store)
        if not in_force.routes(body.bill_id):
            return await legacy(body)
        models = {**(default_models or {}), **(body.models or {})}
        try:
            result = await pipeline.run(
                body.bill_id, body.bill_text, body.jurisdiction, models, body.max_rounds
            )
        except InvalidInputError as exc:
            raise HTTPException(422, str(exc)) from None
        except BudgetRefusedError as exc:
            raise HTTPException(402, {"run_id": exc.run_id, "error": exc.reason}) from None
        except PipelineRunError as exc:
            raise HTTPException(502, {"run_id": exc.run_id, "error": exc.reason}) from None
        return {"framework": "new", **result.model_dump(mode="json")}

    @router.post("/runs/{run_id}/resume")
    async def resume(run_id: str) -> dict[str, Any]:
        try:
            result = await pipeline.resume(run_id, default_models or None)
        except RunNotFoundError:
            raise HTTPException(404, f"no run {run_id}") from None
        except PipelineRunError as exc:
            raise HTTPException(502, {"run_id": exc.run_id, "error": exc.reason}) from None
        return result.model_dump(mode="json")

    @router.post("/runs/{run_id}/score")
    async def score(run_id: str, body: ScoreRequest) -> dict[str, Any]:
        try:
            await pipeline.score(run_id, body.quality)
        except RunNotFoundError:
            raise HTTPException(404, f"no run {run_id}") from None
        return {"run_id": run_id, "quality": body.quality}

    @router.get("/runs")
    async def runs(limit: int = 20) -> list[dict[str, Any]]:
        found = await pipeline.store.list_runs(limit=limit)
        return [r.model_dump(mode="json", exclude={"inputs"}) for r in found]

    @router.get("/models/compare", response_model=None)
    async def compare(
        step: str = "generate", days: int = 30, format: str = "json"
    ) -> list[dict[str, Any]] | PlainTextResponse:
        since = datetime.now(UTC) - timedelta(days=days)
        try:
            rows = await pipeline.compare_models(since, None, step)
        except InvalidInputError as exc:
            raise HTTPException(422, str(exc)) from None
        if format == "csv":
            return PlainTextResponse(comparison_csv(rows), media_type="text/csv")
        return [r.model_dump(mode="json") for r in rows]

    @router.put("/models/{step}")
    async def set_models(step: str, body: ModelsRequest) -> dict[str, Any]:
        if step not in {"research", "condense", "generate", "review", "refine"}:
            raise HTTPException(422, f"unknown step {step!r}")
        await pipeline.store.set_model_config(step, body.models)
        return {"step": step, "models": body.models}

    return router


def require_admin(x_admin_token: str | None = Header(default=None)) -> str:
    """The app's own admin check (a stand-in for its real auth): the name of the admin."""
    import hmac

    expected = os.environ.get("AFFORDABOT_ADMIN_TOKEN", "")
    if not expected or not hmac.compare_digest((x_admin_token or "").encode(), expected.encode()):
        raise HTTPException(403, "admins only")
    return "affordabot-admin"


def create_app(*, tune_process: bool = True) -> FastAPI:
    """The admin app; the pipeline is built in the lifespan, on the server's event loop.

    ``tune_process`` calls ``llm_client.prepare_for_serving()`` once the clients are built (the
    garbage collector stops re-walking the SDKs' start-up objects); tests that share their
    process with other tests turn it off.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from llm_client import LLMClient, prepare_for_serving

        offline = not (os.environ.get("OPENROUTER_API_KEY") or os.environ.get("ZAI_API_KEY"))
        store = LocalRunStore(Path(os.environ.get("LLM_COMMON_DIR") or ".llm-common"))
        async with aclosing(store), LLMClient() as llm:
            pipeline = AnalysisPipeline(llm, OfflineSearch(), store=store)
            models = dict(offline_models()) if offline else None
            app.include_router(create_router(pipeline, default_models=models))
            from analysis_pipeline.dashboard import create_dashboard

            dashboard = create_dashboard(
                run_store=store, pipeline=pipeline, resume_models=models,
                auth_dependency=require_admin,
            )  # fmt: skip
            app.mount("/admin/dashboard", dashboard)
            if tune_process:
                prepare_for_serving()
            yield

    return FastAPI(title="affordabot admin (llm-common example)", lifespan=lifespan)


app = create_app()
