-- cost-tracker: reservations carry a holder (one per tracker instance) with a heartbeat, and every
-- reserve reclaims abandoned holds itself before its conditional UPDATE (owned by
-- packages/cost-tracker).
--
-- Before: a crashed process's reservations were held for their whole TTL (1 h), and after they
-- expired only the caller whose own reclaim freed something retried; concurrent callers were
-- refused although the room was back. Now:
--   * cost_reservation_holders: one row per tracker (id, heartbeat_at, stale_after_seconds). A
--     holder whose heartbeat is older than its own stale_after_seconds is dead: its reservations
--     are reclaimed by the next reserve of the project (seconds, not the TTL).
--   * cost_reserve reclaims the project's expired and dead-holder reservations first, in the same
--     transaction. The reclaim waits for row locks instead of skipping them, so a caller that
--     meets another caller's reclaim in flight sees the room it gives back (READ COMMITTED).
--     Lock order stays reservations -> daily counter -> monthly counter, as in cost_settle.
-- Idempotent: runs twice on PostgreSQL 15 and on Supabase.

create table if not exists public.cost_reservation_holders (
    id text primary key,
    heartbeat_at timestamptz not null default now(),
    stale_after_seconds double precision not null check (stale_after_seconds > 0),
    started_at timestamptz not null default now(),
    description text
);

alter table public.cost_reservations add column if not exists holder_id text;

create index if not exists cost_reservations_holder_id_idx
    on public.cost_reservations (holder_id) where holder_id is not null;

alter table public.cost_reservation_holders enable row level security;
drop policy if exists cost_reservation_holders_service_all on public.cost_reservation_holders;
create policy cost_reservation_holders_service_all on public.cost_reservation_holders
    for all to service_role using (true) with check (true);
revoke all on public.cost_reservation_holders from anon, authenticated;
grant select, insert, update, delete on public.cost_reservation_holders to service_role;

-- Register or refresh holder p_holder_id; forgets dead holders that no longer hold anything.
create or replace function public.cost_heartbeat(
    p_holder_id text, p_stale_after_seconds double precision, p_description text default null
) returns void
language plpgsql
set search_path = public
as $$
begin
    if p_stale_after_seconds is null or p_stale_after_seconds <= 0 then
        raise exception 'cost_heartbeat: stale_after_seconds must be positive'
            using errcode = '22023';
    end if;
    insert into public.cost_reservation_holders (id, stale_after_seconds, description)
    values (p_holder_id, p_stale_after_seconds, p_description)
    on conflict (id) do update
       set heartbeat_at = now(), stale_after_seconds = excluded.stale_after_seconds;
    delete from public.cost_reservation_holders h
     where h.id <> p_holder_id
       and h.heartbeat_at < now() - make_interval(secs => h.stale_after_seconds)
       and not exists (select 1 from public.cost_reservations r where r.holder_id = h.id);
end;
$$;

-- Release the reservations of p_project (NULL: every project) that are past their expiry or
-- whose holder stopped beating; returns how many. Waits for rows another reclaim is deleting
-- (it then skips them, their money already given back by that reclaim's commit).
create or replace function public.cost__reclaim(p_project text) returns integer
language plpgsql
set search_path = public
as $$
declare
    v_dead text[];
    v_count integer := 0;
    v_row record;
begin
    select coalesce(array_agg(h.id), '{}') into v_dead
      from public.cost_reservation_holders h
     where h.heartbeat_at < now() - make_interval(secs => h.stale_after_seconds);
    for v_row in
        with gone as (
            delete from public.cost_reservations r
             where (p_project is null or r.project = p_project)
               and (r.expires_at <= now() or r.holder_id = any(v_dead))
            returning r.project, r.day, r.month, r.amount
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

create or replace function public.cost_expire_reservations(p_project text default null)
returns integer
language sql
set search_path = public
as $$
    select public.cost__reclaim(p_project)
$$;

-- cost_reserve gains p_holder_id: drop the old signature (an overload with defaults would make
-- named calls through PostgREST ambiguous).
drop function if exists public.cost_reserve(
    text, text, numeric, date, date, numeric, numeric, double precision, text, text, text, text
);

-- Reserve p_amount against the daily and monthly counters of p_project. Idempotent by p_id.
-- Returns {"granted": true} or {"granted": false, "kind", "period", "budget", "spent", "reserved"}.
create or replace function public.cost_reserve(
    p_id text, p_project text, p_amount numeric, p_day date, p_month date,
    p_daily_limit numeric default null, p_monthly_limit numeric default null,
    p_ttl_seconds double precision default 3600, p_idempotency_id text default null,
    p_provider text default null, p_model text default null, p_step text default null,
    p_holder_id text default null
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
    -- Abandoned holds go back before the check, so no caller is refused for room a crashed
    -- holder no longer needs.
    perform public.cost__reclaim(p_project);
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
        (id, idempotency_id, project, day, month, amount, provider, model, step, expires_at,
         holder_id)
    values (
        p_id, p_idempotency_id, p_project, p_day, p_month, p_amount, p_provider, p_model, p_step,
        now() + make_interval(secs => p_ttl_seconds), p_holder_id
    );
    return jsonb_build_object('granted', true);
end;
$$;

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
                    v_op ->> 'provider', v_op ->> 'model', v_op ->> 'step',
                    v_op ->> 'holder_id');
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

revoke execute on function
    public.cost_heartbeat(text, double precision, text),
    public.cost__reclaim(text),
    public.cost_reserve(text, text, numeric, date, date, numeric, numeric, double precision, text,
                        text, text, text, text)
from public, anon, authenticated;
grant execute on function
    public.cost_heartbeat(text, double precision, text),
    public.cost__reclaim(text),
    public.cost_reserve(text, text, numeric, date, date, numeric, numeric, double precision, text,
                        text, text, text, text)
to service_role;
