-- analysis-pipeline: what the admin dashboard reads, and the audit trail of model switches.
--
-- model_config_changes records every change of a step's model chain (who, when, before, after).
-- pipeline_configure_step changes a chain and writes its audit row in one transaction;
-- pipeline_set_model_config (the 0.2 RPC) now goes through it too, so no path skips the audit.
-- pipeline_model_report and pipeline_run_page do the dashboard's aggregation and paging in SQL
-- (the PostgreSQL store calls them directly, Supabase as RPCs) and answer JSON. Money leaves as
-- text so no float ever touches it. Idempotent; runs on plain PostgreSQL 15 and on Supabase.

create table if not exists public.model_config_changes (
    id bigint generated always as identity primary key,
    step text not null,
    old_models text[] not null default '{}',
    new_models text[] not null,
    changed_by text,
    changed_at timestamptz not null default now()
);

create index if not exists pipeline_runs_started_at_id_idx
    on public.pipeline_runs (started_at desc, id desc);

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

-- The report and the run page build their SQL from the filters actually given (EXECUTE ...
-- USING, values never spliced into the text): each call is planned with only its own
-- predicates, so an unfiltered page walks the started_at index and stops at its last row.
create or replace function public.pipeline_model_report(
    p_step text,
    p_since timestamptz default null,
    p_until timestamptz default null,
    p_jurisdiction text default null
)
returns json
language plpgsql
stable
as $$
declare
    v_where text := 's.step = $1 and s.status = ''completed''';
    v_report json;
begin
    if p_since is not null then
        v_where := v_where || ' and r.started_at >= $2';
    end if;
    if p_until is not null then
        v_where := v_where || ' and r.started_at < $3';
    end if;
    if p_jurisdiction is not null then
        v_where := v_where || ' and r.jurisdiction = $4';
    end if;
    execute format($q$
        with steps as (
            select s.run_id, s.model, s.cost, s.latency_ms, s.started_at, s.round
              from public.pipeline_steps s
              join public.pipeline_runs r on r.id = s.run_id
             where %s
        ),
        -- A run counts for the model that first answered the step: one sort for all runs
        -- (distinct on), not one ordered aggregate per run.
        firsts as (
            select distinct on (run_id) run_id, model
              from steps
             order by run_id, started_at, round
        ),
        sums as (
            select run_id, sum(cost) as cost, sum(latency_ms) as latency
              from steps
             group by run_id
        ),
        per_run as (
            select r.id, r.status, r.review_passed, r.review_score, r.manual_quality_score,
                   r.total_cost,
                   (r.started_at at time zone 'UTC')::date as day,
                   coalesce(f.model, '?') as model,
                   m.cost,
                   m.latency
              from sums m
              join firsts f on f.run_id = m.run_id
              join public.pipeline_runs r on r.id = m.run_id
        ),
        models as (
            select model, $1 as step,
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
        select json_build_object(
            'step', $1,
            'models', coalesce(
                (select json_agg(m order by m.runs desc, m.model) from models m), '[]'::json),
            'daily', coalesce(
                (select json_agg(d order by d.day, d.model) from daily d), '[]'::json))
    $q$, v_where)
    into v_report
    using p_step, p_since, p_until, p_jurisdiction;
    return v_report;
end
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
returns json
language plpgsql
stable
as $$
declare
    v_where text := 'true';
    v_total bigint;
    v_runs json;
begin
    if p_status is not null then
        v_where := v_where || ' and r.status = $1';
    end if;
    if p_bill is not null then
        v_where := v_where || ' and strpos(lower(r.bill_id), lower($2)) > 0';
    end if;
    if p_jurisdiction is not null then
        v_where := v_where || ' and r.jurisdiction = $3';
    end if;
    if p_model is not null then
        v_where := v_where || ' and exists (select 1 from public.pipeline_steps s'
            || ' where s.run_id = r.id and s.model = $4)';
    end if;
    if p_since is not null then
        v_where := v_where || ' and r.started_at >= $5';
    end if;
    if p_until is not null then
        v_where := v_where || ' and r.started_at < $6';
    end if;
    execute 'select count(*) from public.pipeline_runs r where ' || v_where
    into v_total
    using p_status, p_bill, p_jurisdiction, p_model, p_since, p_until;
    execute format($q$
        select coalesce(json_agg(p order by p.started_at desc, p.id desc), '[]'::json)
          from (
            select r.id, r.bill_id, r.jurisdiction, r.status, r.review_passed, r.review_score,
                   r.manual_quality_score as quality_score, r.rounds,
                   r.total_cost::text as cost, r.latency_ms, r.error, r.started_at,
                   r.finished_at as completed_at
              from public.pipeline_runs r
             where %s
             order by r.started_at desc, r.id desc
             limit $7 offset $8
          ) p
    $q$, v_where)
    into v_runs
    using p_status, p_bill, p_jurisdiction, p_model, p_since, p_until, p_limit, p_offset;
    return json_build_object(
        'total', v_total, 'offset', p_offset, 'limit', p_limit, 'runs', v_runs
    );
end
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
