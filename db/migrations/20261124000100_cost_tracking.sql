-- cost-tracker: cost records, budget counters, reservations, alerts and the SQL functions that do
-- every atomic step (owned by packages/cost-tracker).
--
-- Money is unconstrained numeric: exact at any scale, so a $0.0000002 call is never rounded away.
-- NULL cost means "unpriced" and is counted separately, never as zero.
--
-- Budgets use the conditional-UPDATE pattern: one UPDATE ... WHERE spent + reserved + amount <=
-- limit per counter row, under READ COMMITTED. Row locks are always taken in the order
-- (kind, project, period_start) with daily before monthly, so concurrent reserve, settle, release
-- and expiry never deadlock.

create table if not exists public.cost_tracking (
    id bigint generated always as identity primary key,
    idempotency_id text not null,
    project text not null default 'default',
    provider text not null,
    model text,
    step text,
    cost numeric check (cost is null or cost >= 0),
    prompt_tokens bigint not null default 0,
    completion_tokens bigint not null default 0,
    cached_prompt_tokens bigint not null default 0,
    reasoning_tokens bigint not null default 0,
    success boolean not null default true,
    error text,
    latency_ms double precision not null default 0,
    user_id uuid,
    metadata jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now(),
    recorded_at timestamptz not null default now()
);

create unique index if not exists cost_tracking_idempotency_id_key
    on public.cost_tracking (idempotency_id);
create index if not exists cost_tracking_project_created_at_idx
    on public.cost_tracking (project, created_at);
create index if not exists cost_tracking_created_at_idx
    on public.cost_tracking (created_at);
create index if not exists cost_tracking_user_id_created_at_idx
    on public.cost_tracking (user_id, created_at) where user_id is not null;

create table if not exists public.cost_budget_periods (
    project text not null,
    kind text not null check (kind in ('daily', 'monthly')),
    period_start date not null,
    limit_amount numeric,
    reserved numeric not null default 0 check (reserved >= 0),
    spent numeric not null default 0,
    unpriced_calls bigint not null default 0,
    updated_at timestamptz not null default now(),
    primary key (project, kind, period_start)
);

create table if not exists public.cost_reservations (
    id text primary key,
    idempotency_id text,
    project text not null,
    day date not null,
    month date not null,
    amount numeric not null check (amount >= 0),
    provider text,
    model text,
    step text,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null
);

create index if not exists cost_reservations_project_expires_at_idx
    on public.cost_reservations (project, expires_at);

create table if not exists public.cost_budget_alerts (
    project text not null,
    kind text not null check (kind in ('daily', 'monthly')),
    period_start date not null,
    threshold numeric not null,
    spent numeric not null,
    limit_amount numeric not null,
    fired_at timestamptz not null default now(),
    primary key (project, kind, period_start)
);

-- Hold p_amount on one counter row if it fits under p_limit (NULL limit: always fits).
create or replace function public.cost__hold(
    p_project text, p_kind text, p_period date, p_amount numeric, p_limit numeric
) returns boolean
language plpgsql
set search_path = public
as $$
begin
    update public.cost_budget_periods
       set reserved = reserved + p_amount,
           limit_amount = coalesce(p_limit, limit_amount),
           updated_at = now()
     where project = p_project and kind = p_kind and period_start = p_period
       and (p_limit is null or spent + reserved + p_amount <= p_limit);
    if found then
        return true;
    end if;
    -- First use of the period (or no room): create the row if missing, then try once more; the
    -- insert waits for a concurrent creator, so the retry sees its committed row.
    insert into public.cost_budget_periods (project, kind, period_start, limit_amount)
    values (p_project, p_kind, p_period, p_limit)
    on conflict do nothing;
    update public.cost_budget_periods
       set reserved = reserved + p_amount,
           limit_amount = coalesce(p_limit, limit_amount),
           updated_at = now()
     where project = p_project and kind = p_kind and period_start = p_period
       and (p_limit is null or spent + reserved + p_amount <= p_limit);
    return found;
end;
$$;

-- Release p_release held money and add p_spend settled money on one counter row; returns the
-- alert (as jsonb) when this call is the one that first crossed p_threshold * p_limit.
create or replace function public.cost__adjust(
    p_project text, p_kind text, p_period date, p_release numeric, p_spend numeric,
    p_unpriced integer, p_limit numeric, p_threshold numeric
) returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_spent numeric;
begin
    update public.cost_budget_periods
       set reserved = reserved - p_release,
           spent = spent + p_spend,
           unpriced_calls = unpriced_calls + p_unpriced,
           updated_at = now()
     where project = p_project and kind = p_kind and period_start = p_period
    returning spent into v_spent;
    if not found then
        insert into public.cost_budget_periods
            (project, kind, period_start, limit_amount, spent, unpriced_calls)
        values (p_project, p_kind, p_period, p_limit, p_spend, p_unpriced)
        on conflict (project, kind, period_start) do update
           set reserved = public.cost_budget_periods.reserved - p_release,
               spent = public.cost_budget_periods.spent + p_spend,
               unpriced_calls = public.cost_budget_periods.unpriced_calls + p_unpriced,
               updated_at = now()
        returning spent into v_spent;
    end if;
    if p_limit is null or p_threshold is null or v_spent < p_limit * p_threshold then
        return null;
    end if;
    insert into public.cost_budget_alerts
        (project, kind, period_start, threshold, spent, limit_amount)
    values (p_project, p_kind, p_period, p_threshold, v_spent, p_limit)
    on conflict do nothing;
    if not found then
        return null;  -- another caller (process, replica) already fired this period's alert
    end if;
    return jsonb_build_object(
        'kind', p_kind, 'period', p_period, 'spent', v_spent::text,
        'budget', p_limit::text, 'threshold', p_threshold::text
    );
end;
$$;

-- Insert one record (jsonb in CostMetrics' JSON shape) unless its idempotency_id exists.
create or replace function public.cost__insert_record(p_record jsonb) returns boolean
language plpgsql
set search_path = public
as $$
begin
    insert into public.cost_tracking (
        idempotency_id, project, provider, model, step, cost,
        prompt_tokens, completion_tokens, cached_prompt_tokens, reasoning_tokens,
        success, error, latency_ms, user_id, metadata, created_at
    ) values (
        p_record ->> 'idempotency_id',
        coalesce(p_record ->> 'project', 'default'),
        p_record ->> 'provider',
        p_record ->> 'model',
        p_record ->> 'step',
        (p_record ->> 'cost')::numeric,
        coalesce((p_record ->> 'prompt_tokens')::bigint, 0),
        coalesce((p_record ->> 'completion_tokens')::bigint, 0),
        coalesce((p_record ->> 'cached_prompt_tokens')::bigint, 0),
        coalesce((p_record ->> 'reasoning_tokens')::bigint, 0),
        coalesce((p_record ->> 'success')::boolean, true),
        p_record ->> 'error',
        coalesce((p_record ->> 'latency_ms')::double precision, 0),
        (p_record ->> 'user_id')::uuid,
        coalesce(p_record -> 'metadata', '{}'::jsonb),
        coalesce((p_record ->> 'timestamp')::timestamptz, now())
    )
    on conflict (idempotency_id) do nothing;
    return found;
end;
$$;

-- Reserve p_amount against the daily and monthly counters of p_project. Idempotent by p_id.
-- Returns {"granted": true} or {"granted": false, "kind", "period", "budget", "spent", "reserved"}.
create or replace function public.cost_reserve(
    p_id text, p_project text, p_amount numeric, p_day date, p_month date,
    p_daily_limit numeric default null, p_monthly_limit numeric default null,
    p_ttl_seconds double precision default 3600, p_idempotency_id text default null,
    p_provider text default null, p_model text default null, p_step text default null
) returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_kind text;
    v_period date;
    v_limit numeric;
    v_row public.cost_budget_periods%rowtype;
begin
    if p_amount is null or p_amount < 0 then
        raise exception 'cost_reserve: amount must be a non-negative number' using errcode = '22023';
    end if;
    if exists (select 1 from public.cost_reservations where id = p_id) then
        return jsonb_build_object('granted', true);
    end if;
    if not public.cost__hold(p_project, 'daily', p_day, p_amount, p_daily_limit) then
        v_kind := 'daily'; v_period := p_day; v_limit := p_daily_limit;
    elsif not public.cost__hold(p_project, 'monthly', p_month, p_amount, p_monthly_limit) then
        perform public.cost__adjust(p_project, 'daily', p_day, p_amount, 0, 0, null, null);
        v_kind := 'monthly'; v_period := p_month; v_limit := p_monthly_limit;
    end if;
    if v_kind is not null then
        select * into v_row from public.cost_budget_periods
         where project = p_project and kind = v_kind and period_start = v_period;
        return jsonb_build_object(
            'granted', false, 'kind', v_kind, 'period', v_period, 'budget', v_limit::text,
            'spent', coalesce(v_row.spent, 0)::text, 'reserved', coalesce(v_row.reserved, 0)::text
        );
    end if;
    insert into public.cost_reservations
        (id, idempotency_id, project, day, month, amount, provider, model, step, expires_at)
    values (
        p_id, p_idempotency_id, p_project, p_day, p_month, p_amount, p_provider, p_model, p_step,
        now() + make_interval(secs => p_ttl_seconds)
    );
    return jsonb_build_object('granted', true);
end;
$$;

-- Store p_record once and replace reservation p_reservation_id (if still open) by its cost.
-- The spend goes to the reservation's periods when it is open, else to p_day / p_month.
-- Returns {"stored": bool, "released": bool, "alerts": [...]}.
create or replace function public.cost_settle(
    p_reservation_id text, p_record jsonb, p_day date, p_month date,
    p_daily_limit numeric default null, p_monthly_limit numeric default null,
    p_threshold numeric default null
) returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_res public.cost_reservations%rowtype;
    v_released boolean := false;
    v_stored boolean;
    v_cost numeric := (p_record ->> 'cost')::numeric;
    v_project text := coalesce(p_record ->> 'project', 'default');
    v_release numeric := 0;
    v_spend numeric := 0;
    v_unpriced integer := 0;
    v_alerts jsonb := '[]'::jsonb;
    v_alert jsonb;
begin
    if p_reservation_id is not null then
        delete from public.cost_reservations where id = p_reservation_id returning * into v_res;
        v_released := found;
    end if;
    v_stored := public.cost__insert_record(p_record);
    if v_released then
        v_project := v_res.project; p_day := v_res.day; p_month := v_res.month;
        v_release := v_res.amount;
    end if;
    if v_stored then
        v_spend := coalesce(v_cost, 0);
        v_unpriced := (v_cost is null)::integer;
    end if;
    if v_released or v_stored then
        v_alert := public.cost__adjust(v_project, 'daily', p_day, v_release, v_spend, v_unpriced,
                                       p_daily_limit, p_threshold);
        if v_alert is not null then v_alerts := v_alerts || jsonb_build_array(v_alert); end if;
        v_alert := public.cost__adjust(v_project, 'monthly', p_month, v_release, v_spend,
                                       v_unpriced, p_monthly_limit, p_threshold);
        if v_alert is not null then v_alerts := v_alerts || jsonb_build_array(v_alert); end if;
    end if;
    return jsonb_build_object('stored', v_stored, 'released', v_released, 'alerts', v_alerts);
end;
$$;

-- Store p_record once (no reservation) and count its cost; same result shape as cost_settle.
create or replace function public.cost_log(
    p_record jsonb, p_day date, p_month date,
    p_daily_limit numeric default null, p_monthly_limit numeric default null,
    p_threshold numeric default null
) returns jsonb
language sql
set search_path = public
as $$
    select public.cost_settle(null, p_record, p_day, p_month, p_daily_limit, p_monthly_limit,
                              p_threshold)
$$;

-- Give reservation p_reservation_id back; false when it was already settled or released.
create or replace function public.cost_release(p_reservation_id text) returns boolean
language plpgsql
set search_path = public
as $$
declare
    v_res public.cost_reservations%rowtype;
begin
    delete from public.cost_reservations where id = p_reservation_id returning * into v_res;
    if not found then
        return false;
    end if;
    perform public.cost__adjust(v_res.project, 'daily', v_res.day, v_res.amount, 0, 0, null, null);
    perform public.cost__adjust(v_res.project, 'monthly', v_res.month, v_res.amount, 0, 0, null,
                                null);
    return true;
end;
$$;

-- Release every reservation past its expiry (crashed callers); returns how many.
create or replace function public.cost_expire_reservations(p_project text default null)
returns integer
language plpgsql
set search_path = public
as $$
declare
    v_count integer := 0;
    v_row record;
begin
    for v_row in
        with gone as (
            delete from public.cost_reservations
             where id in (
                select id from public.cost_reservations
                 where (p_project is null or project = p_project) and expires_at <= now()
                 for update skip locked
             )
            returning project, day, month, amount
        )
        select 'daily' as kind, project, day as period, sum(amount) as amount, count(*) as n
          from gone group by project, day
        union all
        select 'monthly', project, month, sum(amount), 0 from gone group by project, month
        order by 1, 2, 3
    loop
        perform public.cost__adjust(v_row.project, v_row.kind, v_row.period, v_row.amount, 0, 0,
                                    null, null);
        v_count := v_count + v_row.n;
    end loop;
    return v_count;
end;
$$;

-- Apply many reserve/settle/release operations in one transaction, in order (group commit for
-- hot counter rows); returns one result per operation, shaped like the single functions'.
create or replace function public.cost_batch(p_ops jsonb) returns jsonb
language plpgsql
set search_path = public
as $$
declare
    v_op jsonb;
    v_out jsonb := '[]'::jsonb;
    v_result jsonb;
begin
    for v_op in select value from jsonb_array_elements(p_ops) loop
        case v_op ->> 'op'
            when 'reserve' then
                v_result := public.cost_reserve(
                    v_op ->> 'id', v_op ->> 'project', (v_op ->> 'amount')::numeric,
                    (v_op ->> 'day')::date, (v_op ->> 'month')::date,
                    (v_op ->> 'daily_limit')::numeric, (v_op ->> 'monthly_limit')::numeric,
                    (v_op ->> 'ttl_seconds')::double precision, v_op ->> 'idempotency_id',
                    v_op ->> 'provider', v_op ->> 'model', v_op ->> 'step');
            when 'settle' then
                v_result := public.cost_settle(
                    v_op ->> 'reservation_id', v_op -> 'record', (v_op ->> 'day')::date,
                    (v_op ->> 'month')::date, (v_op ->> 'daily_limit')::numeric,
                    (v_op ->> 'monthly_limit')::numeric, (v_op ->> 'threshold')::numeric);
            when 'release' then
                v_result := to_jsonb(public.cost_release(v_op ->> 'reservation_id'));
            else
                raise exception 'cost_batch: unknown op %', v_op ->> 'op' using errcode = '22023';
        end case;
        v_out := v_out || jsonb_build_array(v_result);
    end loop;
    return v_out;
end;
$$;

-- Counters of one period: {"spent", "reserved", "budget", "unpriced_calls", "open_reservations"}.
create or replace function public.cost_budget_status(p_project text, p_kind text, p_period date)
returns jsonb
language sql
stable
set search_path = public
as $$
    select jsonb_build_object(
        'spent', coalesce(max(b.spent), 0)::text,
        'reserved', coalesce(max(b.reserved), 0)::text,
        'budget', max(b.limit_amount)::text,
        'unpriced_calls', coalesce(max(b.unpriced_calls), 0),
        'open_reservations', (
            select count(*) from public.cost_reservations r
             where r.project = p_project
               and (case p_kind when 'daily' then r.day else r.month end) = p_period
        )
    )
    from public.cost_budget_periods b
    where b.project = p_project and b.kind = p_kind and b.period_start = p_period
$$;

-- Exact priced spend of p_project (NULL: all projects) in [p_start, p_end).
create or replace function public.get_cost_total(
    p_project text, p_start timestamptz, p_end timestamptz
) returns numeric
language sql
stable
set search_path = public
as $$
    select coalesce(sum(cost), 0) from public.cost_tracking
     where (p_project is null or project = p_project)
       and created_at >= p_start and created_at < p_end
$$;

-- Spend of the local calendar day p_day in time zone p_tz (23 or 25 hours across DST).
create or replace function public.get_daily_cost(
    p_project text, p_day date, p_tz text default 'UTC'
) returns numeric
language sql
stable
set search_path = public
as $$
    select public.get_cost_total(
        p_project, p_day::timestamp at time zone p_tz, (p_day + 1)::timestamp at time zone p_tz
    )
$$;

-- Spend of the local calendar month containing p_month in time zone p_tz.
create or replace function public.get_monthly_cost(
    p_project text, p_month date, p_tz text default 'UTC'
) returns numeric
language sql
stable
set search_path = public
as $$
    select public.get_cost_total(
        p_project,
        (p_month - (extract(day from p_month)::integer - 1))::timestamp at time zone p_tz,
        ((p_month - (extract(day from p_month)::integer - 1))::timestamp + interval '1 month')
            at time zone p_tz
    )
$$;

-- Spend in [p_start, p_end) grouped by model, step, project or local day (in p_tz).
create or replace function public.get_cost_breakdown(
    p_start timestamptz, p_end timestamptz, p_group_by text default 'model',
    p_project text default null, p_tz text default 'UTC'
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
     group by 1
     order by 1 nulls last;
end;
$$;

-- get_cost_breakdown as jsonb with money as strings (JSON numbers would lose Decimal precision
-- in API clients such as supabase-py).
create or replace function public.cost_breakdown_json(
    p_start timestamptz, p_end timestamptz, p_group_by text default 'model',
    p_project text default null, p_tz text default 'UTC'
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
    from public.get_cost_breakdown(p_start, p_end, p_group_by, p_project, p_tz) b
$$;

-- Records in [p_start, p_end) as jsonb (money as strings), oldest first, for export.
create or replace function public.cost_records_json(
    p_start timestamptz, p_end timestamptz, p_project text default null,
    p_limit integer default 1000, p_after_id bigint default 0
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
         order by id
         limit p_limit
    ) c
$$;

-- Row-level security: end users see and add only their own records; the service role (the
-- backend, and every RPC call of the stores) sees everything. Counters, reservations and alerts
-- are backend-only.
alter table public.cost_tracking enable row level security;
alter table public.cost_budget_periods enable row level security;
alter table public.cost_reservations enable row level security;
alter table public.cost_budget_alerts enable row level security;

drop policy if exists cost_tracking_select_own on public.cost_tracking;
create policy cost_tracking_select_own on public.cost_tracking
    for select to authenticated using (user_id = (select auth.uid()));
drop policy if exists cost_tracking_insert_own on public.cost_tracking;
create policy cost_tracking_insert_own on public.cost_tracking
    for insert to authenticated with check (user_id = (select auth.uid()));
drop policy if exists cost_tracking_service_all on public.cost_tracking;
create policy cost_tracking_service_all on public.cost_tracking
    for all to service_role using (true) with check (true);
drop policy if exists cost_budget_periods_service_all on public.cost_budget_periods;
create policy cost_budget_periods_service_all on public.cost_budget_periods
    for all to service_role using (true) with check (true);
drop policy if exists cost_reservations_service_all on public.cost_reservations;
create policy cost_reservations_service_all on public.cost_reservations
    for all to service_role using (true) with check (true);
drop policy if exists cost_budget_alerts_service_all on public.cost_budget_alerts;
create policy cost_budget_alerts_service_all on public.cost_budget_alerts
    for all to service_role using (true) with check (true);

revoke all on public.cost_tracking, public.cost_budget_periods, public.cost_reservations,
    public.cost_budget_alerts from anon, authenticated;
grant select, insert on public.cost_tracking to authenticated;
grant select, insert, update, delete on public.cost_tracking, public.cost_budget_periods,
    public.cost_reservations, public.cost_budget_alerts to service_role;
grant usage, select on sequence public.cost_tracking_id_seq to authenticated, service_role;

revoke execute on function
    public.cost__hold(text, text, date, numeric, numeric),
    public.cost__adjust(text, text, date, numeric, numeric, integer, numeric, numeric),
    public.cost__insert_record(jsonb),
    public.cost_reserve(text, text, numeric, date, date, numeric, numeric, double precision, text,
                        text, text, text),
    public.cost_settle(text, jsonb, date, date, numeric, numeric, numeric),
    public.cost_log(jsonb, date, date, numeric, numeric, numeric),
    public.cost_release(text),
    public.cost_batch(jsonb),
    public.cost_expire_reservations(text),
    public.cost_budget_status(text, text, date),
    public.cost_records_json(timestamptz, timestamptz, text, integer, bigint)
from public, anon, authenticated;
grant execute on function
    public.cost__hold(text, text, date, numeric, numeric),
    public.cost__adjust(text, text, date, numeric, numeric, integer, numeric, numeric),
    public.cost__insert_record(jsonb),
    public.cost_reserve(text, text, numeric, date, date, numeric, numeric, double precision, text,
                        text, text, text),
    public.cost_settle(text, jsonb, date, date, numeric, numeric, numeric),
    public.cost_log(jsonb, date, date, numeric, numeric, numeric),
    public.cost_release(text),
    public.cost_batch(jsonb),
    public.cost_expire_reservations(text),
    public.cost_budget_status(text, text, date),
    public.cost_records_json(timestamptz, timestamptz, text, integer, bigint)
to service_role;
-- Read functions run as the caller, so an end user only ever sums their own rows.
grant execute on function
    public.get_cost_total(text, timestamptz, timestamptz),
    public.get_daily_cost(text, date, text),
    public.get_monthly_cost(text, date, text),
    public.get_cost_breakdown(timestamptz, timestamptz, text, text, text),
    public.cost_breakdown_json(timestamptz, timestamptz, text, text, text)
to authenticated, service_role;
