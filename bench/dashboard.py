# ruff: noqa: E402  (imports follow the sys.path fix below)
"""Server time per dashboard page with 10,000 runs and 100,000 cost records in PostgreSQL.

Seeds a private database (migrated with llm_common_db) with COPY-free ``generate_series``
inserts: ``--runs`` pipeline runs over the last 30 days (research, generate and review steps
each, four generate models, some failed, some scored) and ``--costs`` cost records (two
projects, five models, a share unpriced). Then requests every page in interleaved rounds
through the ASGI app in process (auth, queries, Jinja rendering, CSV writing: the server's
whole time, no network) and reports p50/p95 per page, each as a ratio to the baseline measured
in the same rounds: ``GET /`` (auth and a redirect, no query). Target: p95 < 300 ms per page.

    uv run python bench/dashboard.py [--runs 10000] [--costs 100000] [--rounds 30]

Environment: TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import asyncio
import os
import statistics
import time
import uuid

import httpx
import psycopg
from analysis_pipeline import PostgresRunStore
from analysis_pipeline.dashboard import create_dashboard
from cost_tracker import PostgresCostStore
from llm_common_db import migrate

ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TOKEN = "bench-token"

SEED_RUNS = """
insert into public.pipeline_runs (id, bill_id, jurisdiction, status, models, input_hash,
    result, review_passed, review_score, manual_quality_score, rounds, total_cost,
    prompt_tokens, completion_tokens, latency_ms, error, started_at, finished_at)
select gen_random_uuid(),
       'CA-AB' || (i %% 2000) || '-2026',
       (array['California', 'US', 'Indiana'])[1 + i %% 3],
       case when i %% 25 = 0 then 'failed' else 'completed' end,
       jsonb_build_object('generate', jsonb_build_array(
           (array['openai/gpt-4o-mini', 'openai/gpt-4.1-mini', 'zai/glm-4.6',
                  'openai/gpt-4o'])[1 + i %% 4])),
       md5(i::text),
       jsonb_build_object('analysis', jsonb_build_object('summary', 'Summary ' || i,
           'impacts', '[]'::jsonb), 'review', jsonb_build_object('critique', 'ok')),
       i %% 5 <> 0, 0.5 + (i %% 50) / 100.0,
       case when i %% 10 = 0 then (i %% 7) / 7.0 end,
       1 + i %% 2, 0.001 * (1 + i %% 9), 9000 + i %% 500, 800 + i %% 90, 4000 + i %% 900,
       case when i %% 25 = 0 then 'provider outage' end,
       now() - make_interval(secs => i * (30 * 86400.0 / %(runs)s)),
       now() - make_interval(secs => i * (30 * 86400.0 / %(runs)s)) + interval '5 seconds'
  from generate_series(1, %(runs)s) as i
"""
SEED_STEPS = """
insert into public.pipeline_steps (run_id, step, round, model, status, output, cost,
    prompt_tokens, completion_tokens, latency_ms, started_at, finished_at)
select r.id, s.step, s.round, case when s.step = 'generate'
       then r.models -> 'generate' ->> 0 else 'openai/gpt-4.1-mini' end,
       case when r.status = 'failed' and s.step = 'review' then 'failed' else 'completed' end,
       '{}'::jsonb,
       case when s.step = 'generate' and r.models -> 'generate' ->> 0 = 'openai/gpt-4o'
            and r.bill_id like '%%7-2026' then null else 0.0003 * s.round + 0.0001 end,
       3000, 300, 500 + (abs(hashtext(r.id::text)) %% 2000), r.started_at, r.finished_at
  from public.pipeline_runs r
 cross join (values ('research', 0), ('generate', 0), ('review', 1)) as s(step, round)
"""
SEED_COSTS = """
insert into public.cost_tracking (idempotency_id, project, provider, model, step, cost,
    prompt_tokens, completion_tokens, success, latency_ms, created_at, recorded_at)
select 'bench-' || i,
       (array['affordabot', 'prime-radiant'])[1 + i %% 2],
       'openai',
       (array['gpt-4o-mini', 'gpt-4.1-mini', 'glm-4.6', 'gpt-4o', 'mystery'])[1 + i %% 5],
       (array['research', 'generate', 'review', 'chat'])[1 + i %% 4],
       case when i %% 5 = 4 then null else 0.0001 * (1 + i %% 13) end,
       1000 + i %% 3000, 100 + i %% 400, i %% 50 <> 0, 300 + i %% 700,
       now() - make_interval(secs => i * (40 * 86400.0 / %(costs)s)),
       now() - make_interval(secs => i * (40 * 86400.0 / %(costs)s))
  from generate_series(1, %(costs)s) as i
"""


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--costs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    name = f"llmc_bench_dash_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    url = psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=name)
    try:
        await migrate(url, packages=["analysis-pipeline", "cost-tracker"])
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SEED_RUNS, {"runs": args.runs})
            conn.execute(SEED_STEPS, {})
            conn.execute(SEED_COSTS, {"costs": args.costs})
            conn.execute("analyze")
            counts = conn.execute(
                "select (select count(*) from pipeline_runs), (select count(*) from "
                "pipeline_steps), (select count(*) from cost_tracking)"
            ).fetchone()
        took = time.perf_counter() - started
        print(f"seeded {counts} (runs, steps, cost records) in {took:.1f} s")
        await measure(url, args.rounds)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


async def measure(url: str, rounds: int) -> None:
    runs = PostgresRunStore(url, max_size=4)
    costs = PostgresCostStore(url, max_size=4)
    try:
        some_run = (await runs.list_runs(limit=1))[0].id
        app = create_dashboard(run_store=runs, cost_store=costs, token=TOKEN)
        pages = {
            "baseline: GET / (auth + redirect)": "/",
            "models": "/models",
            "models.csv": "/models.csv",
            "models (step review, US)": "/models?step=review&jurisdiction=US",
            "spend": "/spend",
            "spend.csv": "/spend.csv",
            "runs": "/runs",
            "runs (page 150)": "/runs?page=150",
            "runs (failed, model filter)": "/runs?status=failed&model=zai/glm-4.6",
            "runs.csv (10,000 rows)": "/runs.csv",
            "one run": f"/runs/{some_run}",
            "switch": "/switch",
            "config": "/config",
        }
        headers = {"authorization": f"Bearer {TOKEN}"}
        transport = httpx.ASGITransport(app=app)
        times: dict[str, list[float]] = {label: [] for label in pages}
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for path in pages.values():  # warm-up: pools, templates, query plans
                await client.get(path, headers=headers)
            for _ in range(rounds):  # interleaved: every page once per round
                for label, path in pages.items():
                    t0 = time.perf_counter()
                    response = await client.get(path, headers=headers)
                    times[label].append((time.perf_counter() - t0) * 1000)
                    if response.status_code not in (200, 303):
                        raise SystemExit(f"{path}: HTTP {response.status_code}")
        base = statistics.median(times["baseline: GET / (auth + redirect)"])
        print(f"\nload average before/after: {LOAD_BEFORE} / {load_average()}; {rounds} rounds")
        print(f"{'page':40} {'p50 ms':>8} {'p95 ms':>8} {'p50 / baseline':>15}  < 300 ms p95")
        for label, values in times.items():
            ordered = sorted(values)
            p50 = statistics.median(ordered)
            p95 = ordered[max(0, round(0.95 * (len(ordered) - 1)))]
            verdict = "yes" if p95 < 300 else "NO"
            print(f"{label:40} {p50:8.1f} {p95:8.1f} {p50 / base:14.1f}x  {verdict}")
    finally:
        await runs.aclose()
        await costs.aclose()


LOAD_BEFORE = load_average()

if __name__ == "__main__":
    asyncio.run(main())
