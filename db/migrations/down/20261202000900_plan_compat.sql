-- Down file of 20261202000900_plan_compat.sql (applied by `llm-common-db rollback`).

drop function if exists public.get_monthly_cost(integer, integer);
drop function if exists public.get_daily_cost(date);
drop function if exists public.cost__plan_total(timestamptz, timestamptz);
