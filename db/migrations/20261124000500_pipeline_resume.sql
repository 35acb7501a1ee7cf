-- analysis-pipeline: what resume and model comparison need beyond 20261124000400_pipeline.sql.
--
-- pipeline_runs gains the inputs a failed run is resumed from (bill text, max rounds), the final
-- review verdict and score (for pass rates), and token and latency totals. pipeline_steps gains
-- attempt and search counts and a unique (run_id, step, round) so a step is written exactly
-- once per round (re-used on resume, upserted when retried).

alter table public.pipeline_runs
    add column if not exists inputs jsonb,
    add column if not exists review_passed boolean,
    add column if not exists review_score numeric,
    add column if not exists prompt_tokens bigint not null default 0,
    add column if not exists completion_tokens bigint not null default 0,
    add column if not exists latency_ms numeric not null default 0;

alter table public.pipeline_steps
    add column if not exists attempts integer not null default 0,
    add column if not exists searches integer not null default 0;

create unique index if not exists pipeline_steps_run_step_round_key
    on public.pipeline_steps (run_id, step, round);

create index if not exists pipeline_runs_started_at_idx
    on public.pipeline_runs (started_at desc);

-- Replace one step's model chain atomically (admins switch models without a deploy; Supabase
-- clients call it as an RPC, so a half-written chain is never visible).
create or replace function public.pipeline_set_model_config(p_step text, p_models text[])
returns void
language sql
as $$
    delete from public.model_configs where step = p_step;
    insert into public.model_configs (step, priority, model)
    select p_step, (t.ord - 1)::integer, t.model
    from unnest(p_models) with ordinality as t(model, ord);
$$;

revoke all on function public.pipeline_set_model_config(text, text[]) from public, anon, authenticated;
grant execute on function public.pipeline_set_model_config(text, text[]) to service_role;
