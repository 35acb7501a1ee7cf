"""The admin dashboard through FastAPI's test client: auth, CSRF, escaping, CSV = store figures."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from analysis_pipeline import LocalRunStore, RunRecord, RunStore, StepRecord
from analysis_pipeline._reports import RunFilter
from analysis_pipeline.dashboard import ProjectBudget, create_dashboard
from cost_tracker import CostMetrics, LocalCostStore
from fastapi import FastAPI, Header, HTTPException
from fastapi.testclient import TestClient
from llm_common_testkit.contract import ContractBackend

TOKEN = "dash-test-token-8f1c"
BEARER = {"authorization": f"Bearer {TOKEN}"}
HOSTILE_BILL = '<script>alert("bill")</script>'
HOSTILE_CRITIQUE = "<img src=x onerror=alert('critique')>"
NOW = datetime.now(UTC)


@dataclass
class Seeded:
    run_ids: list[str]
    hostile_id: str
    failed_id: str


async def _seed(store: RunStore, costs: Any, tmp: Path) -> Seeded:
    ids = []
    for i in range(7):
        model = "openai/gpt-4o-mini" if i % 2 else "openai/gpt-4.1-mini"
        run = RunRecord(
            bill_id=HOSTILE_BILL if i == 0 else f"CA-AB{100 + i}-2026",
            jurisdiction="California" if i < 5 else "US",
            status="failed" if i == 6 else "completed",
            review_passed=i % 3 != 0,
            review_score=0.5 + i / 20,
            cost=Decimal("0.0123") * (i + 1),
            started_at=NOW - timedelta(hours=i + 1),
            analysis={
                "summary": "<b>summary</b>",
                "impacts": [
                    {
                        "category": "housing",
                        "direction": "increase",
                        "description": "<svg onload=alert(3)>",
                        "cited_source_ids": ["S1"],
                    }
                ],
                "sources": [
                    {
                        "id": "S1",
                        "url": "javascript:alert(4)",
                        "title": "</td><script>alert(5)</script>",
                        "snippet": "<iframe src=//evil>",
                    }
                ],
            },
            review={"passed": True, "score": 0.8, "critique": HOSTILE_CRITIQUE},
            error="boom <i>here</i>" if i == 6 else None,
        )
        await store.save_run(run)
        await store.save_step(
            StepRecord(
                run_id=run.id,
                key="generate",
                step="generate",
                model=model,
                cost=None if i == 3 else Decimal("0.004") * (i + 1),
                latency_ms=100.0 + 10 * i,
                started_at=run.started_at,
            )
        )
        ids.append(run.id)
    if costs is not None:
        await seed_costs(costs)
    return Seeded(ids, ids[0], ids[6])


async def seed_costs(costs: Any) -> None:
    """Two apps' spend in one ledger: a priced and an unpriced call each, with their budgets."""
    from cost_tracker._stores._protocol import BudgetContext

    today = datetime.now(UTC).date()
    for project, budget in (("affordabot", "5"), ("prime-radiant", "2")):
        context = BudgetContext(
            day=today,
            month=today.replace(day=1),
            daily_limit=Decimal(budget),
            monthly_limit=Decimal("50"),
        )
        for model, cost, step in (
            ("gpt-4o-mini", Decimal("0.0042"), "generate"),
            ("mystery-model", None, "review"),
        ):
            record = CostMetrics(
                provider="openai", model=model, cost=cost, step=step, project=project
            )
            await costs.settle(None, record, context)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[TestClient, Seeded, LocalRunStore, LocalCostStore]]:
    store = LocalRunStore(tmp_path / "runs")
    costs = LocalCostStore(tmp_path / "costs")
    app = create_dashboard(run_store=store, cost_store=costs, token=TOKEN)
    with TestClient(app) as client:
        seeded = client.portal.call(_seed, store, costs, tmp_path)
        yield client, seeded, store, costs
        client.portal.call(store.aclose)
        client.portal.call(costs.aclose)


def _csrf(client: TestClient, path: str = "/config") -> str:
    page = client.get(path, headers=BEARER)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


GETS = [
    "/",
    "/models",
    "/models.csv",
    "/spend",
    "/spend.csv",
    "/runs",
    "/runs.csv",
    "/runs/{id}",
    "/switch",
    "/switch.csv",
    "/config",
]
POSTS = ["/runs/{id}/score", "/runs/{id}/resume", "/switch/flag", "/config/generate", "/logout"]


def test_every_route_refuses_without_credentials(local: Any) -> None:
    client, seeded, _, _ = local
    for path in GETS:
        got = client.get(path.format(id=seeded.failed_id), follow_redirects=False)
        assert got.status_code == 401, path
        html = client.get(
            path.format(id=seeded.failed_id),
            follow_redirects=False,
            headers={"accept": "text/html"},
        )
        assert (html.status_code, html.headers["location"]) == (303, "/login"), path
        wrong = client.get(
            path.format(id=seeded.failed_id),
            headers={"authorization": "Bearer nope"},
            follow_redirects=False,
        )
        assert wrong.status_code == 401, path
    for path in POSTS:
        got = client.post(path.format(id=seeded.failed_id), data={"x": "1"})
        assert got.status_code == 401, path
    forged = {"llmc_dash_session": f"admin|{2**40}|{'0' * 64}"}
    client.cookies.update(forged)
    assert client.get("/models").status_code == 401
    client.cookies.clear()


def test_no_token_configured_refuses_everything(tmp_path: Path) -> None:
    store = LocalRunStore(tmp_path / "runs")
    with TestClient(create_dashboard(run_store=store)) as client:
        for path in [*GETS, "/login"]:
            got = client.get(path.format(id="x"), headers=BEARER, follow_redirects=False)
            assert got.status_code == 503, path
            assert "LLM_COMMON_DASHBOARD_TOKEN" in got.text
        for path in [*POSTS, "/login"]:
            assert client.post(path.format(id="x"), data={"token": ""}).status_code == 503
        client.portal.call(store.aclose)


def test_login_form_sets_a_session_and_logout_ends_it(local: Any) -> None:
    client, _, _, _ = local
    token = _csrf_login(client)
    bad = client.post("/login", data={"csrf_token": token, "token": "wrong", "name": "eve"})
    assert bad.status_code == 401
    good = client.post(
        "/login",
        data={"csrf_token": token, "token": TOKEN, "name": "alice"},
        follow_redirects=False,
    )
    assert good.status_code == 303
    assert "httponly" in good.headers["set-cookie"].lower()
    assert client.get("/models").status_code == 200
    page = client.get("/models")
    form_token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    assert (
        client.post("/logout", data={"csrf_token": form_token}, follow_redirects=False).status_code
        == 303
    )
    assert client.get("/models").status_code == 401


def _csrf_login(client: TestClient) -> str:
    page = client.get("/login")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def test_every_form_refuses_a_missing_or_forged_csrf_token(local: Any) -> None:
    client, seeded, store, _ = local
    good = _csrf(client)
    seed = client.cookies.get("llmc_dash_csrf")
    forged = f"{seed}.{'0' * 64}"
    bodies = {
        "/runs/{id}/score": {"quality": "0.9"},
        "/runs/{id}/resume": {},
        "/switch/flag": {"action": "off"},
        "/config/generate": {"models": "openai/gpt-4o"},
        "/login": {"token": TOKEN, "name": "x"},
    }
    for path, body in bodies.items():
        url = path.format(id=seeded.failed_id)
        for token in (None, forged, "garbage"):
            data = dict(body) if token is None else {**body, "csrf_token": token}
            got = client.post(url, data=data, headers=BEARER)
            assert got.status_code == 403, (path, token)
            assert "CSRF" in got.text
    # a valid token from another browser (other cookie) is refused too
    other = TestClient(client.app)
    with other:
        stolen = other.post(
            "/config/generate", headers=BEARER, data={"models": "openai/gpt-4o", "csrf_token": good}
        )
        assert stolen.status_code == 403
    assert client.portal.call(store.get_model_configs) == {}
    assert client.portal.call(store.get_run, seeded.failed_id).quality_score is None


def test_hostile_bill_and_critique_are_rendered_escaped(local: Any) -> None:
    client, seeded, _, _ = local
    for path in ("/runs", f"/runs/{seeded.hostile_id}", f"/runs/{seeded.failed_id}"):
        page = client.get(path, headers=BEARER)
        assert page.status_code == 200
        assert "<script>alert" not in page.text
        assert "<img src=x" not in page.text
        assert "<b>summary</b>" not in page.text
        assert "<i>here</i>" not in page.text
    detail = client.get(f"/runs/{seeded.hostile_id}", headers=BEARER).text
    for raw in ("<svg onload", "<script>alert(5)", "<iframe", 'href="javascript:'):
        assert raw not in detail
    assert "&lt;/td&gt;&lt;script&gt;alert(5)&lt;/script&gt;" in detail  # the source's title
    assert "&lt;script&gt;alert(&#34;bill&#34;)&lt;/script&gt;" in detail
    assert "&lt;img src=x onerror=alert(&#39;critique&#39;)&gt;" in detail
    csp = client.get("/runs", headers=BEARER).headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp  # no script may run at all


def test_models_csv_equals_the_store_report(local: Any) -> None:
    client, _, store, _ = local
    got = _rows(client.get("/models.csv?step=generate", headers=BEARER).text)
    today = datetime.now(UTC).date()
    report = client.portal.call(
        lambda: store.model_report(
            "generate",
            since=datetime.combine(today - timedelta(days=30), datetime.min.time(), UTC),
            until=datetime.combine(today + timedelta(days=1), datetime.min.time(), UTC),
        )
    )
    assert [r["model"] for r in got] == [m.model for m in report.models]
    for row, stats in zip(got, report.models, strict=True):
        assert int(row["runs"]) == stats.runs
        assert Decimal(row["mean_cost"]) == stats.mean_cost
        assert Decimal(row["mean_run_cost"]) == stats.mean_run_cost
        assert float(row["p95_latency_ms"]) == stats.p95_latency_ms
        assert float(row["pass_rate"]) == stats.pass_rate
        assert float(row["quality_per_dollar"]) == pytest.approx(stats.quality_per_dollar)
    page = client.get("/models", headers=BEARER).text
    assert "<svg" in page
    assert "openai/gpt-4o-mini" in page


def test_spend_csv_equals_the_ledger_and_unpriced_is_never_zero(local: Any) -> None:
    client, _, _, costs = local
    text = client.get("/spend.csv", headers=BEARER).text
    rows = _rows(text)
    first = date.today().replace(day=1)
    start = datetime.combine(first, datetime.min.time(), UTC)
    end = datetime.combine(
        (first.replace(day=28) + timedelta(days=4)).replace(day=1), datetime.min.time(), UTC
    )
    for group in ("model", "step", "project", "day"):
        expected = client.portal.call(costs.breakdown, start, end, group, None, "UTC")
        mine = [r for r in rows if r["group_by"] == group]
        assert [
            (r["key"], Decimal(r["total_cost"]), int(r["calls"]), int(r["unpriced_calls"]))
            for r in mine
        ] == [(e.key or "", e.total_cost, e.calls, e.unpriced_calls) for e in expected]
    page = client.get("/spend", headers=BEARER).text
    mystery = re.search(r"<td>mystery-model</td><td[^>]*>(.*?)</td>", page, re.S)
    assert mystery is not None
    assert "unpriced (2 calls)" in mystery.group(1)
    assert "$0" not in mystery.group(1)
    assert "2 unpriced calls (cost unknown, not $0)" in page
    for project in ("affordabot", "prime-radiant"):  # both apps share one ledger
        assert f"<td>{project}</td>" in page
    assert "$5.000000" in page  # affordabot's daily budget, as its tracker recorded it
    assert "$2.000000" in page


def test_configured_budgets_win(tmp_path: Path) -> None:
    store, costs = LocalRunStore(tmp_path / "r"), LocalCostStore(tmp_path / "c")
    app = create_dashboard(
        run_store=store,
        cost_store=costs,
        token=TOKEN,
        budgets={"affordabot": ProjectBudget(Decimal("7.5"), None)},
    )
    with TestClient(app) as client:
        client.portal.call(_seed, store, costs, tmp_path)
        page = client.get("/spend", headers=BEARER).text
        assert "$7.500000" in page
        client.portal.call(store.aclose)
        client.portal.call(costs.aclose)


def test_runs_page_filters_pages_and_csv_equals_the_store(local: Any) -> None:
    client, seeded, store, _ = local
    page = client.get("/runs?status=failed", headers=BEARER).text
    assert seeded.failed_id in page
    assert seeded.hostile_id not in page
    got = _rows(client.get("/runs.csv?jurisdiction=California", headers=BEARER).text)
    expected = client.portal.call(lambda: store.run_page(RunFilter(jurisdiction="California")))
    assert [r["id"] for r in got] == [r.id for r in expected.runs]
    assert [Decimal(r["cost"]) for r in got] == [r.cost for r in expected.runs]
    assert got[0]["bill_id"] == HOSTILE_BILL  # exact value; not a formula (starts with '<')
    assert client.get("/runs?status=bogus", headers=BEARER).status_code == 400
    assert client.get("/runs?since=yesterday", headers=BEARER).status_code == 400
    assert (
        client.get("/runs/00000000-0000-4000-8000-000000000000", headers=BEARER).status_code == 404
    )


def test_manual_quality_score_through_the_form(local: Any) -> None:
    client, seeded, store, _ = local
    token = _csrf(client, f"/runs/{seeded.failed_id}")
    url = f"/runs/{seeded.failed_id}/score"
    bad = client.post(url, data={"csrf_token": token, "quality": "1.7"}, headers=BEARER)
    assert bad.status_code == 400
    ok = client.post(url, data={"csrf_token": token, "quality": "0.75"}, headers=BEARER)
    assert ok.status_code == 200
    assert "Quality score saved." in ok.text
    assert client.portal.call(store.get_run, seeded.failed_id).quality_score == 0.75


def test_config_refuses_unknown_and_unpriced_models_and_audits_changes(local: Any) -> None:
    client, _, store, _ = local
    token = _csrf(client)
    refused = client.post(
        "/config/generate",
        headers=BEARER,
        data={"csrf_token": token, "models": "no-such-model-xyz"},
    )
    assert refused.status_code == 400
    assert "unknown model &#39;no-such-model-xyz&#39;" in refused.text
    assert client.portal.call(store.get_model_configs) == {}
    saved = client.post(
        "/config/review",
        headers=BEARER,
        data={"csrf_token": token, "models": "openai/gpt-4o, zai/glm-4.6"},
    )
    assert saved.status_code == 200
    assert client.portal.call(store.get_model_configs) == {
        "review": ["openai/gpt-4o", "zai/glm-4.6"]
    }
    change = client.portal.call(store.model_config_changes)[0]
    assert (change.step, change.new_models, change.changed_by) == (
        "review",
        ["openai/gpt-4o", "zai/glm-4.6"],
        "bearer-token",
    )
    assert "bearer-token" in client.get("/config", headers=BEARER).text
    assert (
        client.post(
            "/config/summarise",
            headers=BEARER,
            data={"csrf_token": token, "models": "openai/gpt-4o"},
        ).status_code
        == 400
    )


def test_unpriced_model_is_refused_with_the_reason(tmp_path: Path) -> None:
    from llm_client import register_model

    register_model("openai/dash-unpriced-test", provider="openai", max_input_tokens=8000)
    from analysis_pipeline.dashboard import check_model

    reason = check_model("openai/dash-unpriced-test")
    assert reason is not None
    assert reason.startswith("unpriced model")
    assert check_model("openai/gpt-4o-mini") is None


def test_mounted_under_an_admin_router_with_the_apps_own_auth(tmp_path: Path) -> None:
    store = LocalRunStore(tmp_path / "runs")

    def require_admin(x_admin: str | None = Header(default=None)) -> dict[str, str]:
        if x_admin != "root@example.org":
            raise HTTPException(403, "admins only")
        return {"email": x_admin}

    admin = FastAPI(dependencies=[])
    admin.mount(
        "/admin/dashboard", create_dashboard(run_store=store, auth_dependency=require_admin)
    )
    with TestClient(admin) as client:
        client.portal.call(_seed, store, None, tmp_path)
        for path in GETS:
            url = "/admin/dashboard" + path.format(id="00000000-0000-4000-8000-000000000000")
            assert client.get(url).status_code == 403, path
        for path in POSTS[:-1]:
            assert client.post("/admin/dashboard" + path.format(id="x")).status_code == 403
        assert client.get("/admin/dashboard/login").status_code == 404  # no token login here
        me = {"x-admin": "root@example.org"}
        page = client.get("/admin/dashboard/config", headers=me)
        assert page.status_code == 200
        assert 'action="/admin/dashboard/config/generate"' in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        saved = client.post(
            "/admin/dashboard/config/generate",
            headers=me,
            data={"csrf_token": token, "models": "openai/gpt-4o-mini"},
            follow_redirects=False,
        )
        assert saved.headers["location"] == "/admin/dashboard/config?saved=generate"
        change = client.portal.call(store.model_config_changes)[0]
        assert change.changed_by == "root@example.org"
        assert client.get("/admin/dashboard/spend", headers=me).status_code == 200  # no costs
        client.portal.call(store.aclose)


async def test_every_page_on_every_backend_renders_no_secret(
    contract_backend: ContractBackend, tmp_path: Path
) -> None:
    """Local, PostgreSQL (from a URL holding a password) and Supabase: every page renders."""
    import httpx

    if contract_backend.kind == "postgres":
        from analysis_pipeline import PostgresRunStore

        assert contract_backend.url is not None
        secret_url = re.sub(r"://([^@/:]+)@", r"://\1:hunter2-dash@", contract_backend.url)
        assert "hunter2-dash" in secret_url
        from cost_tracker import PostgresCostStore

        store: RunStore = PostgresRunStore(secret_url)
        costs: Any = PostgresCostStore(secret_url)
    elif contract_backend.kind == "supabase":
        from cost_tracker import SupabaseCostStore

        server: Any = contract_backend.server
        store = await contract_backend.new_store()
        costs = await SupabaseCostStore.connect(server.url, server.service_key)
    else:
        store = await contract_backend.new_store()
        costs = LocalCostStore(tmp_path / "costs")
    seeded = await _seed(store, costs, tmp_path)
    app = create_dashboard(run_store=store, cost_store=costs, token=TOKEN)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://dash") as client:
            for path in GETS:
                got = await client.get(path.format(id=seeded.hostile_id), headers=BEARER)
                assert got.status_code in (200, 303), (path, got.text[:300])
                assert "hunter2" not in got.text
            page = await client.get("/runs?status=failed", headers=BEARER)
            assert seeded.failed_id in page.text
            spend = await client.get("/spend", headers=BEARER)
            assert "unpriced (2 calls)" in spend.text
            # The forms write through the same backend: model chain, flag, quality score.
            config = await client.get("/config", headers=BEARER)
            token = re.search(r'name="csrf_token" value="([^"]+)"', config.text).group(1)  # type: ignore[union-attr]
            form = {"csrf_token": token}
            saved = await client.post(
                "/config/generate", headers=BEARER, data={**form, "models": "openai/gpt-4o"}
            )
            assert saved.status_code == 303
            assert (await store.get_model_configs())["generate"] == ["openai/gpt-4o"]
            assert (await store.model_config_changes())[0].changed_by == "bearer-token"
            off = await client.post("/switch/flag", headers=BEARER, data={**form, "action": "off"})
            assert off.status_code == 303
            flag = await store.get_flag("llm-framework")
            assert flag is not None
            assert flag.enabled is False
            scored = await client.post(
                f"/runs/{seeded.failed_id}/score", headers=BEARER, data={**form, "quality": "0.5"}
            )
            assert scored.status_code == 303
            assert (await store.get_run(seeded.failed_id)).quality_score == 0.5
    finally:
        await costs.aclose()
        if contract_backend.kind == "postgres":
            await store.aclose()


def _shadow(bill: str, new: Any, legacy: Any, served: str = "new") -> Any:
    from analysis_pipeline import ShadowRecord

    return ShadowRecord(bill_id=bill, jurisdiction="California", served=served, new=new,
                        legacy=legacy)  # fmt: skip


def _arm(*impacts: tuple[str, str], **fields: Any) -> Any:
    from analysis_pipeline import ShadowArm, ShadowImpact

    found = [ShadowImpact(name=n, direction=d) for n, d in impacts]  # type: ignore[arg-type]
    return ShadowArm(status=fields.pop("status", "ok"), impacts=found, **fields)


def test_switch_over_page_flag_form_and_csv_equal_the_shadow_records(local: Any) -> None:
    from analysis_pipeline import ShadowArm, shadow_comparison

    client, _, store, _ = local
    records = [
        _shadow("A", _arm(("housing", "increase"), ("energy", "decrease"), cost=Decimal("0.01"),
                          latency_ms=120.0),
                _arm(("The Housing", "increase"), ("Energy", "increase"), latency_ms=15.0)),
        _shadow("<b>B</b>", _arm(("=cmd|' /C calc'!A0", "increase"), cost=None, latency_ms=90.0),
                ShadowArm(status="error", error="legacy <script>x</script>", latency_ms=5.0),
                served="legacy"),
    ]  # fmt: skip
    for record in records:
        client.portal.call(store.record_shadow, record)
    page = client.get("/switch", headers=BEARER).text
    assert "from the environment" in page  # no admin has set the flag yet
    expected = shadow_comparison(client.portal.call(lambda: store.shadow_results(limit=None)))
    arms = re.search(r'<table id="arms">(.*?)</table>', page, re.S).group(1)  # type: ignore[union-attr]
    assert "50.0%" in arms  # the legacy arm: one error in two runs
    assert "<script>" not in page
    assert f"{expected.agreement:.1%}" in page
    rows = _rows(client.get("/switch.csv", headers=BEARER).text)
    assert [r["bill_id"] for r in rows] == [r.bill_id for r in reversed(records)]
    assert rows[0]["new_impacts"].startswith("'=cmd")  # a formula is neutralised, not run
    assert rows[0]["new_cost"] == ""  # unknown cost: empty, never 0
    assert rows[1]["new_cost"] == "0.01"
    assert (rows[1]["impacts_both"], rows[1]["direction_disagreements"]) == ("2", "1")
    assert rows[0]["legacy_status"] == "error"

    token = _csrf(client, "/switch")
    bad = client.post(
        "/switch/flag",
        headers=BEARER,
        data={"csrf_token": token, "action": "percent", "percent": "150"},
    )
    assert bad.status_code == 400
    ten = client.post(
        "/switch/flag",
        headers=BEARER,
        data={"csrf_token": token, "action": "percent", "percent": "10"},
    )
    assert "10% of keys on the new framework (set by an admin)" in ten.text
    off = client.post("/switch/flag", headers=BEARER, data={"csrf_token": token, "action": "off"})
    assert "OFF (kill switch)" in off.text
    flag = client.portal.call(store.get_flag, "llm-framework")
    assert (flag.enabled, flag.percent, flag.updated_by) == (False, 10.0, "bearer-token")
    changes = client.portal.call(store.flag_changes, "llm-framework")
    assert [(c.new_enabled, c.new_percent, c.changed_by) for c in changes] == [
        (False, 10.0, "bearer-token"), (None, 10.0, "bearer-token")]  # fmt: skip
    assert "bearer-token" in client.get("/switch", headers=BEARER).text
