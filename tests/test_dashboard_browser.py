"""The admin dashboard in a real browser: Debian's Chromium driven by Playwright.

The dashboard is served by uvicorn (standalone token mode) over a run store seeded with pipeline
runs over the twelve real bills (loopback LLM and search servers, real cost-tracker). The
browser logs in, loads every page (a screenshot of each lands in the test's tmp_path), changes
the generate step's model through the Configuration form and sets the rollout flag off on the
Switch-over page; then the next pipeline run must use the new model and the flag must read off.

Chromium comes from Debian's package (``.ci/run`` installs it when missing); Playwright drives
it through ``executable_path`` and never downloads a browser. A missing Chromium fails the test.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
DATA = Path(__file__).resolve().parent.parent / "../shared/data/bills"  # never copied in
BILLS = [(b["id"], b["jurisdiction"]) for b in json.loads((DATA / "manifest.json").read_text())]
TOKEN = "browser-test-token-5d2e"
NEW_MODEL = "openai/gpt-4.1"
PAGES = ("models", "spend", "runs", "switch", "config")


@asynccontextmanager
async def _serve(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` on a loopback port in this event loop; the socket listens before we yield."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections queue from now on, so no wait for uvicorn's start-up
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_dashboard_in_chromium(make_stack: Any, llm_server: Any, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)")
    from analysis_pipeline import LocalRunStore, resolve_rollout
    from analysis_pipeline.dashboard import create_dashboard
    from playwright.async_api import async_playwright

    async with LocalRunStore(tmp_path / "runs") as store:
        stack = await make_stack(store=store)
        for bill_id, jurisdiction in BILLS:
            text = (DATA / f"{bill_id}.txt").read_text(encoding="utf-8")
            await stack.pipeline.run(bill_id, text, jurisdiction)
        app = create_dashboard(
            run_store=store, cost_store=stack.tracker.store, pipeline=stack.pipeline, token=TOKEN
        )
        shots = tmp_path / "screenshots"
        shots.mkdir()
        async with _serve(app) as base, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            try:
                page = await browser.new_page()
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                await page.goto(f"{base}/models")
                assert page.url == f"{base}/login"  # not logged in: sent to the login form
                await page.screenshot(path=str(shots / "login.png"), full_page=True)
                await page.fill("input[name=name]", "browser-admin")
                await page.fill("input[name=token]", TOKEN)
                await page.click("button:has-text('Log in')")
                await page.wait_for_url(f"{base}/models")
                for name in PAGES:
                    response = await page.goto(f"{base}/{name}")
                    assert response is not None
                    assert response.status == 200, name
                    await page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
                # Models: both models of the stack, over the real bills, with a chart.
                await page.goto(f"{base}/models?step=generate")
                table = await page.inner_text("#models")
                assert "openai/gpt-4o-mini" in table
                assert str(len(BILLS)) in table
                assert await page.locator("svg.chart").count() == 1
                # Runs: every bill listed; one run's detail.
                await page.goto(f"{base}/runs")
                assert f"Runs ({len(BILLS)})" in await page.inner_text("h1")
                await page.click("#runs a >> nth=0")
                await page.wait_for_selector("#steps")
                assert "generate" in await page.inner_text("#steps")
                await page.screenshot(path=str(shots / "run.png"), full_page=True)
                # Spend: the pipeline's calls in the ledger.
                await page.goto(f"{base}/spend")
                assert "generate" in await page.inner_text("#by-step")
                # Configuration: switch the generate step's model through the form.
                await page.goto(f"{base}/config")
                await page.fill("#form-generate input[name=models]", "no-such-model-zz")
                await page.click("#form-generate button")
                assert "unknown model" in await page.inner_text("#config")
                await page.fill("#form-generate input[name=models]", NEW_MODEL)
                await page.click("#form-generate button")
                await page.wait_for_url(f"{base}/config?saved=generate")
                assert "browser-admin" in await page.inner_text("#changes")
                await page.screenshot(path=str(shots / "config-saved.png"), full_page=True)
                # Switch-over: set the flag off.
                await page.goto(f"{base}/switch")
                await page.click("#flag-off")
                await page.wait_for_url(f"{base}/switch")
                assert "OFF" in await page.inner_text("#flag-state")
                await page.screenshot(path=str(shots / "switch-off.png"), full_page=True)
                assert not [e for e in errors if "Content Security Policy" in e], errors
            finally:
                await browser.close()
        # The next run uses the model chosen in the browser, and the flag reads off.
        llm_server.reset()
        bill_id, jurisdiction = BILLS[0]
        text = (DATA / f"{bill_id}.txt").read_text(encoding="utf-8")
        result = await stack.pipeline.run(bill_id, text, jurisdiction)
        generate = next(s for s in result.steps if s.step == "generate")
        assert generate.model == NEW_MODEL
        assert "gpt-4.1" in {r.model for r in llm_server.requests}
        flag = await store.get_flag("llm-framework")
        assert flag is not None
        assert flag.enabled is False
        assert not (await resolve_rollout(store)).routes(bill_id)
    for name in (*PAGES, "login", "run", "config-saved", "switch-off"):
        assert (shots / f"{name}.png").stat().st_size > 1000
