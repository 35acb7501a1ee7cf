"""Sentinel secrets never leak: not in logs (DEBUG, every library), errors, reprs, rows or CLIs.

Every API key, the Supabase service key, a proxy password in a provider's base URL and the
password of every database URL is a sentinel string. A pipeline run, a chat with summaries, a
Supabase-backed tracker and failures of each (unreachable and malformed database URLs, a
rejected key) run in-process with the root logger at DEBUG; the CLIs run as subprocesses with
good, unreachable and malformed URLs. Then everything a person or a log shipper could see is
scanned: captured log records (with tracebacks), exception texts and reprs (whole cause
chains), every row of every table of the test database, exports and CLI output.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import time
import traceback
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.postgres

SENTINELS = {
    "openai key": "sk-SENTINEL0openai0key0a7f3",
    "zai key": "SENTINEL1zai1key1b8e4",
    "openrouter key": "sk-or-SENTINEL2router2c9d5",
    "search key": "SENTINEL3search3key3d0f6",
    "db password": "SENTINEL4dbpass4e1a7",
    "proxy password": "SENTINEL5proxypw5f2b8",
}
DB_PASSWORD = SENTINELS["db password"]
BAD_URL_DEADLINE = 12.0  # answered well past a store's 5 s connect_timeout: too slow
SLOW = 8.0


def redact(url: str) -> str:
    return url.replace(DB_PASSWORD, "***")


def _leaks(text: str, extra: dict[str, str] | None = None) -> list[str]:
    found = [name for name, value in {**SENTINELS, **(extra or {})}.items() if value in text]
    # A URL-encoded or partially printed password is still a leak.
    found += [
        f"{name} (prefix)" for name, v in SENTINELS.items() if v[:14] in text and v not in text
    ]
    return found


def _with_password(url: str) -> str:
    from llm_common_testkit import replace_url

    return replace_url(url, password=DB_PASSWORD)  # trust auth: accepted, never checked


def _unreachable(url: str) -> str:
    from llm_common_testkit import replace_url

    return replace_url(url, port=1, password=DB_PASSWORD)  # nothing listens on port 1


def _malformed(url: str) -> str:
    # libpq repeats this whole URI, password included, in its error message.
    return f"postgresql://postgres:{DB_PASSWORD}@[127.0.0.1:5432/db"


def _bad_port(url: str) -> str:
    return f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:notaport/db"


def _exception_text(exc: BaseException) -> str:
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), *map(str, getattr(current, "args", ()))]
        current = current.__cause__ or current.__context__
    parts.append("".join(traceback.format_exception(exc)))
    return "\n".join(parts)


def _dump_database(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select quote_ident(schemaname) || '.' || quote_ident(tablename) from pg_tables"
                " where schemaname not in ('pg_catalog', 'information_schema')"
            ).fetchall()
        ]
        lines = []
        for table in tables:
            rows = conn.execute(f"select row_to_json(t)::text from {table} t").fetchall()
            lines += [f"{table}: {r[0]}" for r in rows]
        return "\n".join(lines)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Any:
    """Every library's log records at DEBUG (root logger), tracebacks included."""
    caplog.set_level(logging.DEBUG)  # the root logger: every library propagates to it
    for name in logging.root.manager.loggerDict:
        logger = logging.getLogger(name)
        if logger.level > logging.DEBUG:
            logger.setLevel(logging.DEBUG)
    return caplog


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    return "\n".join(handler.format(r) for r in caplog.records)


async def test_library_paths_leak_no_secret(
    chaos: Any,
    postgres_db: str,
    fresh_llm_server: Any,
    fresh_search_server: Any,
    supabase_server: Any,
    debug_logs: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    from analysis_pipeline import PostgresRunStore
    from analysis_pipeline.testing import offline_handler
    from conversation_memory import ConversationMemory, LLMSummarizer, PostgresMessageStore
    from cost_tracker import CostMetrics, CostTracker, PostgresCostStore, SupabaseCostStore
    from llm_client import CostEstimate, LLMClient, LLMClientError, LLMConfig, ProviderSettings
    from llm_client.testing import Reply
    from supabase import acreate_client
    from web_search import PostgresSearchCache, SearchCache, WebSearchClient

    service_key = supabase_server.service_key
    extra = {"supabase service key": service_key, "jwt signature": service_key.split(".")[-1]}
    fresh_llm_server.handler = offline_handler
    db = _with_password(postgres_db)
    proxied = fresh_llm_server.url.replace(
        "http://", f"http://proxyuser:{SENTINELS['proxy password']}@"
    )
    texts: list[str] = []  # exception texts and reprs to scan

    # A pipeline run on PostgreSQL, keys and passwords everywhere.
    cfg = chaos.StackConfig(
        db_url=db,
        llm_url=fresh_llm_server.url,
        search_url=fresh_search_server.base_url,
        outbox=str(tmp_path / "outbox.sqlite"),
        llm_key=SENTINELS["openai key"],
        zai_key=SENTINELS["zai key"],
        search_key=SENTINELS["search key"],
    )
    bill, where = chaos.bills()[1]
    async with chaos.open_stack(cfg) as stack:
        result = await stack.pipeline.run(bill, chaos.bill_text(bill), where)
        assert result.run_id
        texts += [
            repr(x) for x in (stack.tracker, stack.llm, stack.search, stack.runs, stack.cache)
        ]
        texts += [
            repr(stack.tracker.store),
            str(stack.llm.config) if hasattr(stack.llm, "config") else "",
        ]
    assert fresh_llm_server.request_count >= 3
    sent = json.dumps([r.headers for r in fresh_llm_server.requests])
    assert SENTINELS["openai key"] not in sent  # the fake's own record redacts, as documented

    # A provider base URL carrying a proxy password: a typed error or an answer, never a leak.
    async with LLMClient(
        config=LLMConfig(providers={"openai": ProviderSettings(base_url=f"{proxied}/v1")}),
        api_keys={"openai": SENTINELS["openai key"]},
        retry=chaos.llm_retry(),
    ) as proxied_llm:
        try:
            await proxied_llm.chat("hi", model="openai/gpt-4o-mini")
        except LLMClientError as exc:
            texts.append(_exception_text(exc))
        texts.append(repr(proxied_llm))

    # A chat with summaries on PostgreSQL; the summariser calls the provider with a key.
    async with LLMClient(
        config=LLMConfig(
            providers={"openai": ProviderSettings(base_url=fresh_llm_server.base_url)},
        ),
        api_keys={"openai": SENTINELS["openai key"], "openrouter": SENTINELS["openrouter key"]},
    ) as llm:
        store = PostgresMessageStore(db)
        try:
            memory = ConversationMemory(
                store,
                uuid.uuid4(),
                summarizer=LLMSummarizer(llm, "openai/gpt-4o-mini"),
                summary_threshold=4,
                summary_batch=4,
                max_messages=4,
            )
            fresh_llm_server.handler = None
            for i in range(8):
                await memory.save_message("user" if i % 2 == 0 else "assistant", f"turn {i}")
            context = await memory.get_context()
            assert context
            texts.append(repr(store))
        finally:
            await store.aclose()

        # A provider rejecting the key: the error must not repeat it.
        fresh_llm_server.script(
            Reply.error(401, {"error": {"message": f"bad key {SENTINELS['openai key'][:3]}..."}})
        )
        with pytest.raises(LLMClientError) as rejected:
            await llm.chat("hi", model="openai/gpt-4o-mini")
        texts.append(_exception_text(rejected.value))

    # Cost rows through Supabase with the service key.
    client = await acreate_client(supabase_server.url, service_key)
    supa = CostTracker(SupabaseCostStore(client), project="secrets", retry_interval=None)
    try:
        await supa.log_cost(CostMetrics(provider="p", model="m", cost=Decimal("0.01")))
        texts += [repr(supa), repr(supa.store)]
    finally:
        await supa.aclose()
        with contextlib.suppress(Exception):
            await client.postgrest.aclose()

    # Every PostgreSQL store against an unreachable and a malformed URL: a typed error soon.
    slow: list[str] = []
    for bad in (_unreachable(postgres_db), _malformed(postgres_db), _bad_port(postgres_db)):
        attempts: list[Any] = []

        async def cost(url: str = bad) -> None:
            tracker = CostTracker(
                PostgresCostStore(url),
                daily_budget="1",
                outbox_path=tmp_path / f"o-{uuid.uuid4().hex}.sqlite",
                retry_interval=None,
            )
            try:
                await tracker.reserve(
                    CostEstimate(uuid.uuid4().hex, "openai", "gpt-4o-mini", "t", Decimal("0.01"))
                )
            finally:
                await tracker.aclose()

        async def runs(url: str = bad) -> None:
            store = PostgresRunStore(url, connect_timeout=2.0)
            await chaos.using(store, lambda s: s.get_run(str(uuid.uuid4())))

        async def messages(url: str = bad) -> None:
            store = PostgresMessageStore(url)
            await chaos.using(store, lambda s: s.export_user(str(uuid.uuid4())))

        async def search(url: str = bad) -> None:
            cache = PostgresSearchCache(url)
            async with WebSearchClient(
                "zai",
                cache=SearchCache(cache),
                api_key=SENTINELS["search key"],
                base_url=fresh_search_server.base_url,
            ) as client:
                await client.search("secrets test query")
                texts.append(repr(client))

        for attempt in (cost, runs, messages, search):
            began = time.monotonic()
            try:
                async with asyncio.timeout(BAD_URL_DEADLINE):
                    await attempt()
            except TimeoutError:
                slow.append(
                    f"{attempt.__name__} on {redact(bad)}: no answer in {BAD_URL_DEADLINE} s"
                )
            except Exception as exc:
                attempts.append(exc)
                texts.append(_exception_text(exc))
                if time.monotonic() - began > SLOW:
                    took = time.monotonic() - began
                    slow.append(f"{attempt.__name__} on {redact(bad)}: took {took:.0f} s")
        assert len(attempts) >= 3, f"bad URLs should fail the stores: {attempts}"

    rows = _dump_database(postgres_db)
    for table in ("cost_tracking", "pipeline_runs", "conversations"):
        assert table in rows
    logs = _log_text(debug_logs)
    assert len(debug_logs.records) > 50, "DEBUG capture should see the libraries talking"
    handler = logging.StreamHandler()
    leaking = sorted(
        {f"{r.name}:{r.levelname}" for r in debug_logs.records if _leaks(handler.format(r), extra)}
    )
    report = {
        "logs": _leaks(logs, extra),
        "loggers that leaked": leaking,
        "exceptions and reprs": _leaks("\n".join(texts), extra),
        "stored rows": _leaks(rows, extra),
        "slow failures on bad URLs": slow,
    }
    assert not any(report.values()), f"secrets leaked or slow failures: {report}"


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / args[0]), *args[1:]]
    options: dict[str, Any] = {"env": env, "cwd": cwd, "timeout": 120}
    return subprocess.run(command, capture_output=True, text=True, check=False, **options)


async def test_clis_leak_no_secret(chaos: Any, postgres_db: str, tmp_path: Path) -> None:
    from analysis_pipeline import AnalysisPipeline, LocalRunStore
    from analysis_pipeline.testing import OfflineSearch, offline_models
    from cost_tracker import CostMetrics, CostTracker, PostgresCostStore
    from llm_client import LLMClient

    good = _with_password(postgres_db)
    async with CostTracker(
        PostgresCostStore(good), project="secrets", retry_interval=None
    ) as tracker:
        await tracker.log_cost(CostMetrics(provider="p", model="m", cost=Decimal("0.02")))
    store_dir = tmp_path / "runs"
    async with LLMClient() as llm:
        pipeline = AnalysisPipeline(llm, OfflineSearch(), store=LocalRunStore(store_dir))
        bill, where = chaos.bills()[1]
        result = await pipeline.run(bill, chaos.bill_text(bill), where, offline_models())
        await pipeline.store.aclose()

    env = {
        **{k: v for k, v in os.environ.items() if "DATABASE_URL" not in k},
        "OPENAI_API_KEY": SENTINELS["openai key"],
        "ZAI_API_KEY": SENTINELS["zai key"],
        "OPENROUTER_API_KEY": SENTINELS["openrouter key"],
        "WEB_SEARCH_API_KEY": SENTINELS["search key"],
        "LLM_COMMON_DIR": str(tmp_path / "state"),
        "COLUMNS": "200",
    }
    today = datetime.now(UTC).date()
    since = (today - timedelta(days=1)).isoformat()
    csv_out, json_out = tmp_path / "costs.csv", tmp_path / "costs.json"
    good_cases = [
        ("llm-common-db", "status", "--database-url", good),
        ("llm-common-db", "migrate", "--database-url", good),
        ("cost-tracker", "report", "--since", since, "--database-url", good),
        ("cost-tracker", "export", "--since", since, "--format", "csv", "-o", str(csv_out),
         "--database-url", good),
        ("cost-tracker", "export", "--since", since, "--format", "json", "-o", str(json_out),
         "--database-url", good),
        ("analysis-pipeline", "runs", "--store", str(store_dir), "--json"),
        ("analysis-pipeline", "show", result.run_id, "--store", str(store_dir)),
    ]  # fmt: skip
    bad_urls = [_unreachable(postgres_db), _malformed(postgres_db), _bad_port(postgres_db)]
    bad_cases = [
        case
        for url in bad_urls
        for case in (
            ("llm-common-db", "status", "--database-url", url),
            ("llm-common-db", "migrate", "--database-url", url),
            ("cost-tracker", "report", "--since", since, "--database-url", url),
        )
    ] + [
        ("analysis-pipeline", "show", str(uuid.uuid4()), "--store", str(store_dir)),
    ]
    leaked: dict[str, list[str]] = {}
    misbehaved: list[str] = []
    for case in good_cases + bad_cases:
        done = _cli(*case, env=env, cwd=tmp_path)
        shown = " ".join(case[:2])
        output = done.stdout + done.stderr
        if found := _leaks(output):
            leaked[f"{shown} -> {done.returncode}"] = found
        if case in good_cases and done.returncode != 0:
            misbehaved.append(f"{shown} failed: {output[-500:]}")
        if case in bad_cases and (
            done.returncode == 0 or "Traceback" in output or "error:" not in output.lower()
        ):
            misbehaved.append(f"{shown} (bad input) -> {done.returncode}: {output[-500:]}")
    for path in (csv_out, json_out):
        if path.exists() and (found := _leaks(path.read_text())):
            leaked[path.name] = found
    assert csv_out.exists()
    assert json_out.exists()
    problems = [f"secrets leaked by the CLIs: {leaked}"] if leaked else []
    problems += misbehaved
    assert not problems, "\n".join(problems)
