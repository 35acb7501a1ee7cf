"""The two FastAPI examples, driven through FastAPI's test client (offline, in a temp dir)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_BILL = (ROOT / "examples/bills/EX-AB0042-2026.txt").read_text()


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", ROOT / f"examples/{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("OPENROUTER_API_KEY", "ZAI_API_KEY", "LLM_CLIENT_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LLM_COMMON_DIR", str(tmp_path / "project"))


def _admin(monkeypatch: pytest.MonkeyPatch, percent: str) -> TestClient:
    monkeypatch.setenv("USE_NEW_LLM_FRAMEWORK_PERCENTAGE", percent)
    monkeypatch.delenv("USE_NEW_LLM_FRAMEWORK", raising=False)
    app: FastAPI = _load("affordabot_admin").create_app(tune_process=False)
    return TestClient(app)


def _analyze(client: TestClient, bill_id: str) -> Any:
    body = {"bill_id": bill_id, "bill_text": EXAMPLE_BILL, "jurisdiction": "Exampleland"}
    return client.post("/admin/analyze", json=body)


def test_admin_mounts_the_dashboard_behind_its_own_admin_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AFFORDABOT_ADMIN_TOKEN", "example-admin-token")
    with _admin(monkeypatch, "100") as client:
        run_id = _analyze(client, "EX-AB0042-2026").json()["run_id"]
        assert client.get("/admin/dashboard/runs").status_code == 403
        wrong = {"x-admin-token": "guess"}
        assert client.get(f"/admin/dashboard/runs/{run_id}", headers=wrong).status_code == 403
        admin = {"x-admin-token": "example-admin-token"}
        page = client.get("/admin/dashboard/runs", headers=admin)
        assert page.status_code == 200
        assert "EX-AB0042-2026" in page.text
        assert 'href="/admin/dashboard/runs/' in page.text
        assert client.get(f"/admin/dashboard/runs/{run_id}", headers=admin).status_code == 200


def test_admin_runs_the_pipeline_in_the_new_arm_and_reports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _admin(monkeypatch, "100") as client:
        done = _analyze(client, "EX-AB0042-2026")
        assert done.status_code == 200, done.text
        data = done.json()
        assert data["framework"] == "new"
        assert data["passed"] is True
        amounts = {i["magnitude"]["amount"] for i in data["analysis"]["impacts"] if i["magnitude"]}
        assert "500" in amounts
        run_id = data["run_id"]
        assert client.post(f"/admin/runs/{run_id}/score", json={"quality": 0.9}).status_code == 200
        assert client.get("/admin/runs").json()[0]["quality_score"] == 0.9
        report = client.get("/admin/models/compare", params={"step": "generate"}).json()
        assert report[0]["model"] == "offline-analyst"
        assert report[0]["mean_quality"] == 0.9
        csv = client.get("/admin/models/compare", params={"format": "csv"})
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[1].startswith("offline-analyst,generate,1,")
        switched = client.put("/admin/models/review", json={"models": ["zai/glm-4.6"]})
        assert switched.status_code == 200
        assert client.put("/admin/models/summarise", json={"models": ["x"]}).status_code == 422
        assert (
            client.post(f"/admin/runs/{uuid.uuid4()}/score", json={"quality": 1}).status_code == 404
        )


def test_admin_rollout_is_sticky_per_bill(monkeypatch: pytest.MonkeyPatch) -> None:
    with _admin(monkeypatch, "0") as client:
        legacy = _analyze(client, "EX-AB0042-2026").json()
        assert legacy["framework"] == "legacy"
    with _admin(monkeypatch, "50") as client:
        arms = {b: _analyze(client, b).json()["framework"] for b in ("A-1", "B-2", "C-3", "D-4")}
        again = {b: _analyze(client, b).json()["framework"] for b in arms}
        assert arms == again


def test_admin_follows_the_store_flag_without_a_restart(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import asyncio

    from analysis_pipeline import LocalRunStore

    async def flip(enabled: bool | None) -> None:
        async with LocalRunStore(tmp_path / "project") as store:  # the app's store file
            await store.set_flag("llm-framework", enabled=enabled, percent=None, changed_by="ops")

    with _admin(monkeypatch, "100") as client:
        assert _analyze(client, "EX-AB0042-2026").json()["framework"] == "new"
        asyncio.run(flip(False))  # the kill switch, flipped while the app runs
        assert _analyze(client, "EX-AB0042-2026").json()["framework"] == "legacy"


def test_chat_keeps_history_and_injects_page_context(monkeypatch: pytest.MonkeyPatch) -> None:
    chat = _load("prime_radiant_chat")
    user, other = str(uuid.uuid4()), str(uuid.uuid4())
    chat.PORTFOLIOS[user] = "Holdings: 10 VTI, 5 BND; cash $2,000."
    with TestClient(chat.create_app(tune_process=False)) as client:
        first = client.post("/chat", json={"user_id": user, "message": "How am I doing?",
                                           "page": "portfolio"})  # fmt: skip
        assert first.status_code == 200, first.text
        context = first.json()["context"]
        assert context[0]["role"] == "system"
        assert any("10 VTI" in m["content"] for m in context)
        second = client.post("/chat", json={"user_id": user, "message": "And taxes?"})
        texts = [m["content"] for m in second.json()["context"]]
        assert "How am I doing?" in texts
        assert "And taxes?" in texts
        assert not any("10 VTI" in t for t in texts)  # no page, no page context
        history = client.get("/chat/history", params={"user_id": user}).json()
        assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
        assert client.get("/chat/history", params={"user_id": other}).json() == []
        bad = client.post("/chat", json={"user_id": "not-a-uuid", "message": "hi"})
        assert bad.status_code == 422
        streamed = client.post("/chat/stream", json={"user_id": user, "message": "Summarise"})
        assert streamed.status_code == 200
        assert streamed.headers["content-type"].startswith("text/plain")
        assert streamed.text
        history = client.get("/chat/history", params={"user_id": user}).json()
        assert history[-2:] == [
            {"role": "user", "content": "Summarise", "page": None},
            {"role": "assistant", "content": streamed.text, "page": None},
        ]


@pytest.mark.parametrize("name", ["affordabot_admin", "prime_radiant_chat"])
def test_served_apps_tune_the_process_at_start_up(name: str, tmp_path: Path) -> None:
    # In a process of its own: freezing the collector's objects would outlive this test.
    path = str(ROOT / "examples" / f"{name}.py")
    code = (
        "import gc, importlib.util, sys\n"
        "from fastapi.testclient import TestClient\n"
        f"spec = importlib.util.spec_from_file_location('ex', {path!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "assert gc.get_freeze_count() == 0\n"
        "with TestClient(module.app):\n"
        "    assert gc.get_freeze_count() > 50_000, gc.get_freeze_count()\n"
        "    assert gc.get_threshold()[0] == 10_000\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["LLM_COMMON_DIR"] = str(tmp_path / "project")
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=240, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
