-- cost-tracker: the migration plan's monitoring SQL, working as written (issue 12).
--
-- The plan (LLM_FRAMEWORK_MIGRATION.md) runs `SELECT get_daily_cost(CURRENT_DATE);` and
-- `SELECT get_monthly_cost(2024, 12);`. The project-aware forms take (project, day, tz, ...), so
-- those calls failed. These overloads are the plan's signatures (RETURNS TABLE(total_cost)):
-- spend of every project on a UTC day / in a UTC calendar month, exact (numeric). They sit
-- beside the project-aware forms: a call with a project never resolves to them.
-- Idempotent: runs twice on PostgreSQL 15 and on Supabase.

-- Every project's exact spend in [p_start, p_end). Not get_cost_total(): its signature gains
-- arguments with defaults over time, and a call by position would become ambiguous.
create or replace function public.cost__plan_total(p_start timestamptz, p_end timestamptz)
returns numeric
language sql
stable
set search_path = public
as $$
    select coalesce(sum(c.cost), 0)
      from public.cost_tracking c
     where c.created_at >= p_start and c.created_at < p_end
$$;

create or replace function public.get_daily_cost(target_date date)
returns table (total_cost numeric) language sql stable set search_path = public
as $$
    select public.cost__plan_total(
        target_date::timestamp at time zone 'UTC', (target_date + 1)::timestamp at time zone 'UTC'
    )
$$;

create or replace function public.get_monthly_cost(target_year integer, target_month integer)
returns table (total_cost numeric) language sql stable set search_path = public
as $$
    select public.cost__plan_total(m at time zone 'UTC', (m + interval '1 month') at time zone 'UTC')
      from (select make_date(target_year, target_month, 1)::timestamp as m) as month_start
$$;

revoke all on function public.cost__plan_total(timestamptz, timestamptz)
    from public, anon, authenticated;
revoke all on function public.get_daily_cost(date) from public, anon, authenticated;
revoke all on function public.get_monthly_cost(integer, integer) from public, anon, authenticated;
grant execute on function public.cost__plan_total(timestamptz, timestamptz) to service_role;
grant execute on function public.get_daily_cost(date) to service_role;
grant execute on function public.get_monthly_cost(integer, integer) to service_role;
