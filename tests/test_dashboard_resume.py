"""Resume a failed run from the dashboard's Runs page: nothing paid twice (loopback servers)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from analysis_pipeline import PipelineRunError
from analysis_pipeline.dashboard import create_dashboard
from analysis_pipeline.testing import offline_handler
from llm_client.testing import RecordedRequest, Reply

DATA = Path(__file__).resolve().parent.parent / "../shared/data/bills"  # never copied in
TOKEN = "resume-test-token"
BEARER = {"authorization": f"Bearer {TOKEN}"}


async def test_resume_button_finishes_a_failed_run_without_paying_twice(
    make_stack: Any, llm_server: Any, search_server: Any
) -> None:
    def outage(request: RecordedRequest) -> Reply | None:
        return Reply.error(500) if request.model == "gpt-4.1-mini" else offline_handler(request)

    llm_server.handler = outage
    stack = await make_stack()
    text = (DATA / "CA-SB1020-2022.txt").read_text(encoding="utf-8")
    with pytest.raises(PipelineRunError) as failed:
        await stack.pipeline.run("CA-SB1020-2022", text, "California")
    run_id = failed.value.run_id
    before = await stack.step_costs()
    analyst_calls = sum(r.model == "gpt-4o-mini" for r in llm_server.requests)
    searches = search_server.calls

    app = create_dashboard(
        run_store=stack.pipeline.store, cost_store=stack.tracker, pipeline=stack.pipeline,
        token=TOKEN,
    )  # fmt: skip
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dash") as client:
        page = await client.get(f"/runs/{run_id}", headers=BEARER)
        assert "Resume this run" in page.text
        assert "ServerError" in page.text  # the failed step's error is shown
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        still_down = await client.post(f"/runs/{run_id}/resume", headers=BEARER,
                                       data={"csrf_token": token})  # fmt: skip
        assert still_down.status_code == 409
        assert "Resume failed" in still_down.text
        llm_server.handler = offline_handler  # the provider is back
        done = await client.post(f"/runs/{run_id}/resume", headers=BEARER,
                                 data={"csrf_token": token}, follow_redirects=True)  # fmt: skip
        assert done.status_code == 200
        assert "Run resumed and finished." in done.text
        assert "Resume this run" not in done.text
    assert (await stack.pipeline.store.get_run(run_id)).status == "completed"
    after = await stack.step_costs()
    assert sum(r.model == "gpt-4o-mini" for r in llm_server.requests) == analyst_calls
    assert search_server.calls == searches
    for step in ("research", "generate"):
        assert after[step].calls == before[step].calls
        assert after[step].total_cost == before[step].total_cost
