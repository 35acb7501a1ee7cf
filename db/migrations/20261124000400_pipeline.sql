-- analysis-pipeline run log and per-step model choices.
--
-- These are server-side tables: only the pipeline (connecting as the table owner, or through
-- Supabase with the service key) reads and writes them. They hold no per-user data, so there is
-- no auth.uid() policy; instead RLS is ENABLED with NO policy for anon/authenticated (deny all)
-- and their privileges are revoked. Both matter on Supabase, whose default privileges grant every
-- new public table to anon and authenticated: without RLS the anon key could read the run log.
-- service_role has BYPASSRLS and gets explicit grants.

create table if not exists public.pipeline_runs (
    id uuid primary key default gen_random_uuid(),
    bill_id text,
    jurisdiction text,
    status text not null default 'running'
        constraint pipeline_runs_status_check check (status in ('running', 'completed', 'failed')),
    models jsonb not null default '{}'::jsonb,
    input_hash text,
    result jsonb,
    error text,
    rounds integer not null default 0,
    total_cost numeric not null default 0,          -- USD, unscaled: sub-micro-dollar exact
    manual_quality_score numeric,
    project text,
    started_at timestamptz not null default now(),
    finished_at timestamptz
);

create table if not exists public.pipeline_steps (
    id uuid primary key default gen_random_uuid(),
    run_id uuid not null references public.pipeline_runs (id) on delete cascade,
    step text not null,
    round integer not null default 1,
    model text,
    status text not null default 'running'
        constraint pipeline_steps_status_check
        check (status in ('running', 'completed', 'failed', 'skipped')),
    input_hash text,
    output jsonb,
    cost numeric,                                   -- USD, unscaled; null = unknown
    prompt_tokens integer,
    completion_tokens integer,
    latency_ms numeric,
    error text,
    started_at timestamptz not null default now(),
    finished_at timestamptz
);

create table if not exists public.model_configs (
    id uuid primary key default gen_random_uuid(),
    step text not null,
    priority integer not null default 0,            -- lower tries first
    model text not null,
    enabled boolean not null default true,
    updated_at timestamptz not null default now(),
    constraint model_configs_step_priority_key unique (step, priority)
);

create index if not exists pipeline_runs_bill_id_idx
    on public.pipeline_runs (bill_id, started_at desc);
create index if not exists pipeline_runs_status_idx
    on public.pipeline_runs (status, started_at desc);
create index if not exists pipeline_runs_project_idx
    on public.pipeline_runs (project, started_at desc);
create index if not exists pipeline_runs_input_hash_idx
    on public.pipeline_runs (input_hash);
create index if not exists pipeline_steps_run_id_idx
    on public.pipeline_steps (run_id, round, started_at);
create index if not exists pipeline_steps_step_model_idx
    on public.pipeline_steps (step, model, started_at desc);

create or replace function public.llm_common_touch_updated_at() returns trigger
language plpgsql
as $$
begin
    new.updated_at := now();
    return new;
end
$$;

create or replace trigger model_configs_touch_updated_at
    before update on public.model_configs
    for each row execute function public.llm_common_touch_updated_at();

alter table public.pipeline_runs enable row level security;
alter table public.pipeline_steps enable row level security;
alter table public.model_configs enable row level security;

revoke all on table public.pipeline_runs, public.pipeline_steps, public.model_configs
    from anon, authenticated;
grant select, insert, update, delete
    on table public.pipeline_runs, public.pipeline_steps, public.model_configs
    to service_role;
