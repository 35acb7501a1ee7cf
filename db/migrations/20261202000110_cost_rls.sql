-- cost-tracker: end users may write cost rows only for themselves AND only into projects the
-- server allows; every row says who wrote it, and reports can count server-written rows only
-- (owned by packages/cost-tracker).
--
-- Before: the insert policy checked only user_id = auth.uid(), so anyone signed in could add a
-- row of any cost to any project through the API (a forged $1,000,000 row made another
-- project's daily cost read $1,000,000).
--   * cost_allowed_projects: the projects end users may write into, managed by the service role
--     (insert/delete rows, or cost_allow_project / cost_disallow_project). Empty by default: no
--     end-user writes at all until the server allows a project.
--   * cost_tracking.written_by: 'user' for rows inserted by anon/authenticated, 'server' for
--     everything else (service role, table owner); set by a trigger, a client cannot choose it.
--   * The report functions take p_server_only (default false): true counts server rows only.
--     Budget counters never included end-user rows: only the SQL functions (service role) move
--     them.
-- Idempotent: runs twice on PostgreSQL 15 and on Supabase.

create table if not exists public.cost_allowed_projects (
    project text primary key,
    note text,
    created_at timestamptz not null default now()
);

alter table public.cost_allowed_projects enable row level security;
drop policy if exists cost_allowed_projects_service_all on public.cost_allowed_projects;
create policy cost_allowed_projects_service_all on public.cost_allowed_projects
    for all to service_role using (true) with check (true);
revoke all on public.cost_allowed_projects from anon, authenticated;
grant select, insert, update, delete on public.cost_allowed_projects to service_role;

alter table public.cost_tracking
    add column if not exists written_by text not null default 'server';

do $$
begin
    if not exists (
        select 1 from pg_catalog.pg_constraint
         where conname = 'cost_tracking_written_by_check'
           and conrelid = 'public.cost_tracking'::regclass
    ) then
        alter table public.cost_tracking add constraint cost_tracking_written_by_check
            check (written_by in ('server', 'user'));
    end if;
end
$$;

-- Stamp the writer from the role the row is written as; the client's value is ignored.
create or replace function public.cost__stamp_writer() returns trigger
language plpgsql
set search_path = public
as $$
begin
    if tg_op = 'UPDATE' then
        new.written_by := old.written_by;
    else
        new.written_by := case when current_user in ('anon', 'authenticated') then 'user'
                               else 'server' end;
    end if;
    return new;
end;
$$;

drop trigger if exists cost_tracking_stamp_writer on public.cost_tracking;
create trigger cost_tracking_stamp_writer
    before insert or update on public.cost_tracking
    for each row execute function public.cost__stamp_writer();

-- Whether end users may write into p_project (security definer: end users cannot read the list).
create or replace function public.cost_project_allows_users(p_project text) returns boolean
language sql
stable
security definer
set search_path = public
as $$
    select exists (select 1 from public.cost_allowed_projects where project = p_project)
$$;

create or replace function public.cost_allow_project(p_project text, p_note text default null)
returns void
language sql
set search_path = public
as $$
    insert into public.cost_allowed_projects (project, note) values (p_project, p_note)
    on conflict (project) do update set note = coalesce(excluded.note, cost_allowed_projects.note)
$$;

create or replace function public.cost_disallow_project(p_project text) returns void
language sql
set search_path = public
as $$
    delete from public.cost_allowed_projects where project = p_project
$$;

drop policy if exists cost_tracking_insert_own on public.cost_tracking;
create policy cost_tracking_insert_own on public.cost_tracking
    for insert to authenticated
    with check (
        user_id = (select auth.uid()) and public.cost_project_allows_users(project)
    );

-- The report functions gain p_server_only: drop the old signatures first (an overload with a
-- default would make calls ambiguous), then recreate them with their grants.
drop function if exists public.cost_breakdown_json(timestamptz, timestamptz, text, text, text);
drop function if exists public.get_cost_breakdown(timestamptz, timestamptz, text, text, text);
drop function if exists public.get_monthly_cost(text, date, text);
drop function if exists public.get_daily_cost(text, date, text);
drop function if exists public.get_cost_total(text, timestamptz, timestamptz);
drop function if exists public.cost_records_json(timestamptz, timestamptz, text, integer, bigint);

-- Exact priced spend of p_project (NULL: all projects) in [p_start, p_end).
create or replace function public.get_cost_total(
    p_project text, p_start timestamptz, p_end timestamptz, p_server_only boolean default false
) returns numeric
language sql
stable
set search_path = public
as $$
    select coalesce(sum(cost), 0) from public.cost_tracking
     where (p_project is null or project = p_project)
       and created_at >= p_start and created_at < p_end
       and (not p_server_only or written_by = 'server')
$$;

-- Spend of the local calendar day p_day in time zone p_tz (23 or 25 hours across DST).
create or replace function public.get_daily_cost(
    p_project text, p_day date, p_tz text default 'UTC', p_server_only boolean default false
) returns numeric
language sql
stable
set search_path = public
as $$
    select public.get_cost_total(
        p_project, p_day::timestamp at time zone p_tz, (p_day + 1)::timestamp at time zone p_tz,
        p_server_only
    )
$$;

-- Spend of the local calendar month containing p_month in time zone p_tz.
create or replace function public.get_monthly_cost(
    p_project text, p_month date, p_tz text default 'UTC', p_server_only boolean default false
) returns numeric
language sql
stable
set search_path = public
as $$
    select public.get_cost_total(
        p_project,
        (p_month - (extract(day from p_month)::integer - 1))::timestamp at time zone p_tz,
        ((p_month - (extract(day from p_month)::integer - 1))::timestamp + interval '1 month')
            at time zone p_tz,
        p_server_only
    )
$$;

-- Spend in [p_start, p_end) grouped by model, step, project or local day (in p_tz).
create or replace function public.get_cost_breakdown(
    p_start timestamptz, p_end timestamptz, p_group_by text default 'model',
    p_project text default null, p_tz text default 'UTC', p_server_only boolean default false
) returns table (
    group_key text, total_cost numeric, calls bigint, unpriced_calls bigint, failed_calls bigint,
    prompt_tokens bigint, completion_tokens bigint, cached_prompt_tokens bigint,
    reasoning_tokens bigint
)
language plpgsql
stable
set search_path = public
as $$
#variable_conflict use_column
begin
    if p_group_by is null or p_group_by not in ('model', 'step', 'project', 'day') then
        raise exception 'get_cost_breakdown: group_by must be model, step, project or day'
            using errcode = '22023';
    end if;
    return query
    select case p_group_by
               when 'model' then c.model
               when 'step' then c.step
               when 'project' then c.project
               else to_char((c.created_at at time zone p_tz)::date, 'YYYY-MM-DD')
           end as k,
           coalesce(sum(c.cost), 0),
           count(*),
           count(*) filter (where c.cost is null),
           count(*) filter (where not c.success),
           coalesce(sum(c.prompt_tokens), 0)::bigint,
           coalesce(sum(c.completion_tokens), 0)::bigint,
           coalesce(sum(c.cached_prompt_tokens), 0)::bigint,
           coalesce(sum(c.reasoning_tokens), 0)::bigint
      from public.cost_tracking c
     where (p_project is null or c.project = p_project)
       and c.created_at >= p_start and c.created_at < p_end
       and (not p_server_only or c.written_by = 'server')
     group by 1
     order by 1 nulls last;
end;
$$;

-- get_cost_breakdown as jsonb with money as strings (JSON numbers would lose Decimal precision
-- in API clients such as supabase-py).
create or replace function public.cost_breakdown_json(
    p_start timestamptz, p_end timestamptz, p_group_by text default 'model',
    p_project text default null, p_tz text default 'UTC', p_server_only boolean default false
) returns jsonb
language sql
stable
set search_path = public
as $$
    select coalesce(jsonb_agg(jsonb_build_object(
        'key', b.group_key, 'total_cost', b.total_cost::text, 'calls', b.calls,
        'unpriced_calls', b.unpriced_calls, 'failed_calls', b.failed_calls,
        'prompt_tokens', b.prompt_tokens, 'completion_tokens', b.completion_tokens,
        'cached_prompt_tokens', b.cached_prompt_tokens, 'reasoning_tokens', b.reasoning_tokens
    ) order by b.group_key nulls last), '[]'::jsonb)
    from public.get_cost_breakdown(p_start, p_end, p_group_by, p_project, p_tz, p_server_only) b
$$;

-- Records in [p_start, p_end) as jsonb (money as strings), oldest first, for export.
create or replace function public.cost_records_json(
    p_start timestamptz, p_end timestamptz, p_project text default null,
    p_limit integer default 1000, p_after_id bigint default 0,
    p_server_only boolean default false
) returns jsonb
language sql
stable
set search_path = public
as $$
    select coalesce(jsonb_agg(jsonb_build_object(
        'row_id', c.id, 'idempotency_id', c.idempotency_id, 'project', c.project,
        'provider', c.provider, 'model', c.model, 'step', c.step, 'cost', c.cost::text,
        'prompt_tokens', c.prompt_tokens, 'completion_tokens', c.completion_tokens,
        'cached_prompt_tokens', c.cached_prompt_tokens, 'reasoning_tokens', c.reasoning_tokens,
        'success', c.success, 'error', c.error, 'latency_ms', c.latency_ms,
        'user_id', c.user_id, 'metadata', c.metadata, 'timestamp', c.created_at
    ) order by c.id), '[]'::jsonb)
    from (
        select * from public.cost_tracking
         where (p_project is null or project = p_project)
           and created_at >= p_start and created_at < p_end and id > p_after_id
           and (not p_server_only or written_by = 'server')
         order by id
         limit p_limit
    ) c
$$;

revoke execute on function
    public.cost__stamp_writer(),
    public.cost_project_allows_users(text),
    public.cost_allow_project(text, text),
    public.cost_disallow_project(text),
    public.get_cost_total(text, timestamptz, timestamptz, boolean),
    public.get_daily_cost(text, date, text, boolean),
    public.get_monthly_cost(text, date, text, boolean),
    public.get_cost_breakdown(timestamptz, timestamptz, text, text, text, boolean),
    public.cost_breakdown_json(timestamptz, timestamptz, text, text, text, boolean),
    public.cost_records_json(timestamptz, timestamptz, text, integer, bigint, boolean)
from public, anon;
revoke execute on function
    public.cost_allow_project(text, text),
    public.cost_disallow_project(text),
    public.cost_records_json(timestamptz, timestamptz, text, integer, bigint, boolean)
from authenticated;
grant execute on function
    public.cost_allow_project(text, text),
    public.cost_disallow_project(text),
    public.cost_records_json(timestamptz, timestamptz, text, integer, bigint, boolean)
to service_role;
-- Read functions run as the caller, so an end user only ever sums their own rows; the policy
-- helper must be callable by the roles whose inserts it checks.
grant execute on function
    public.cost_project_allows_users(text),
    public.get_cost_total(text, timestamptz, timestamptz, boolean),
    public.get_daily_cost(text, date, text, boolean),
    public.get_monthly_cost(text, date, text, boolean),
    public.get_cost_breakdown(timestamptz, timestamptz, text, text, text, boolean),
    public.cost_breakdown_json(timestamptz, timestamptz, text, text, text, boolean)
to authenticated, service_role;
