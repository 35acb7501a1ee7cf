-- analysis-pipeline: what the admin dashboard reads, and the audit trail of model switches.
--
-- model_config_changes records every change of a step's model chain (who, when, before, after).
-- pipeline_configure_step changes a chain and writes its audit row in one transaction;
-- pipeline_set_model_config (the 0.2 RPC) now goes through it too, so no path skips the audit.
-- pipeline_model_report and pipeline_run_page do the dashboard's aggregation and paging in SQL
-- (the PostgreSQL store calls them directly, Supabase as RPCs). Money leaves as text so no float
-- ever touches it. Idempotent; runs on plain PostgreSQL 15 and on Supabase.

create table if not exists public.model_config_changes (
    id bigint generated always as identity primary key,
    step text not null,
    old_models text[] not null default '{}',
    new_models text[] not null,
    changed_by text,
    changed_at timestamptz not null default now()
);

create index if not exists model_config_changes_changed_at_idx
    on public.model_config_changes (changed_at desc, id desc);

alter table public.model_config_changes enable row level security;
revoke all on table public.model_config_changes from anon, authenticated;
grant select, insert on table public.model_config_changes to service_role;

create or replace function public.pipeline_configure_step(
    p_step text, p_models text[], p_changed_by text
)
returns void
language plpgsql
as $$
declare
    v_old text[];
begin
    -- Two admins changing one step at once: the second sees the first's chain as "old".
    perform pg_advisory_xact_lock(hashtext('pipeline_configure_step:' || p_step));
    select coalesce(array_agg(model order by priority), '{}')
      into v_old
      from public.model_configs
     where step = p_step and enabled;
    delete from public.model_configs where step = p_step;
    insert into public.model_configs (step, priority, model)
    select p_step, (t.ord - 1)::integer, t.model
      from unnest(p_models) with ordinality as t(model, ord);
    insert into public.model_config_changes (step, old_models, new_models, changed_by)
    values (p_step, v_old, p_models, p_changed_by);
end
$$;

create or replace function public.pipeline_set_model_config(p_step text, p_models text[])
returns void
language sql
as $$
    select public.pipeline_configure_step(p_step, p_models, null);
$$;

create or replace function public.pipeline_model_report(
    p_step text,
    p_since timestamptz default null,
    p_until timestamptz default null,
    p_jurisdiction text default null
)
returns jsonb
language sql
stable
as $$
    with per_run as (
        select r.id, r.status, r.review_passed, r.review_score, r.manual_quality_score,
               r.total_cost,
               (r.started_at at time zone 'UTC')::date as day,
               coalesce((array_agg(s.model order by s.started_at, s.round))[1], '?') as model,
               sum(s.cost) as cost,
               sum(s.latency_ms) as latency
          from public.pipeline_runs r
          join public.pipeline_steps s on s.run_id = r.id
         where s.step = p_step
           and s.status = 'completed'
           and (p_since is null or r.started_at >= p_since)
           and (p_until is null or r.started_at < p_until)
           and (p_jurisdiction is null or r.jurisdiction = p_jurisdiction)
         group by r.id
    ),
    models as (
        select model,
               count(*) as runs,
               count(*) filter (where status = 'completed') as completed,
               avg(case when review_passed then 1.0 else 0.0 end)
                   filter (where status = 'completed') as pass_rate,
               avg(review_score) filter (where status = 'completed') as mean_review_score,
               avg(manual_quality_score) as mean_quality,
               count(manual_quality_score) as scored_runs,
               avg(cost)::text as mean_cost,
               avg(total_cost)::text as mean_run_cost,
               percentile_cont(0.5) within group (order by latency) as p50_latency_ms,
               percentile_cont(0.95) within group (order by latency) as p95_latency_ms
          from per_run
         group by model
    ),
    daily as (
        select day, model, count(*) as runs,
               avg(review_score) filter (where status = 'completed') as mean_review_score,
               avg(cost)::text as mean_cost
          from per_run
         group by day, model
    )
    select jsonb_build_object(
        'step', p_step,
        'models', coalesce(
            (select jsonb_agg(to_jsonb(m) || jsonb_build_object('step', p_step)
                              order by m.runs desc, m.model) from models m),
            '[]'::jsonb),
        'daily', coalesce(
            (select jsonb_agg(to_jsonb(d) order by d.day, d.model) from daily d), '[]'::jsonb)
    );
$$;

create or replace function public.pipeline_run_page(
    p_status text default null,
    p_bill text default null,
    p_jurisdiction text default null,
    p_model text default null,
    p_since timestamptz default null,
    p_until timestamptz default null,
    p_offset integer default 0,
    p_limit integer default 50
)
returns jsonb
language sql
stable
as $$
    with matching as (
        select r.id, r.bill_id, r.jurisdiction, r.status, r.models, r.review_passed,
               r.review_score, r.manual_quality_score as quality_score, r.rounds,
               r.total_cost::text as cost, r.latency_ms, r.error, r.started_at,
               r.finished_at as completed_at
          from public.pipeline_runs r
         where (p_status is null or r.status = p_status)
           and (p_bill is null or strpos(lower(r.bill_id), lower(p_bill)) > 0)
           and (p_jurisdiction is null or r.jurisdiction = p_jurisdiction)
           and (p_model is null or exists (
                   select 1 from public.pipeline_steps s
                    where s.run_id = r.id and s.model = p_model))
           and (p_since is null or r.started_at >= p_since)
           and (p_until is null or r.started_at < p_until)
    ),
    page as (
        select * from matching order by started_at desc, id limit p_limit offset p_offset
    )
    select jsonb_build_object(
        'total', (select count(*) from matching),
        'offset', p_offset,
        'limit', p_limit,
        'runs', coalesce(
            (select jsonb_agg(to_jsonb(p) order by p.started_at desc, p.id) from page p),
            '[]'::jsonb)
    );
$$;

revoke all on function public.pipeline_configure_step(text, text[], text)
    from public, anon, authenticated;
revoke all on function public.pipeline_model_report(text, timestamptz, timestamptz, text)
    from public, anon, authenticated;
revoke all on function public.pipeline_run_page(
    text, text, text, text, timestamptz, timestamptz, integer, integer)
    from public, anon, authenticated;
grant execute on function public.pipeline_configure_step(text, text[], text) to service_role;
grant execute on function public.pipeline_model_report(text, timestamptz, timestamptz, text)
    to service_role;
grant execute on function public.pipeline_run_page(
    text, text, text, text, timestamptz, timestamptz, integer, integer)
    to service_role;
