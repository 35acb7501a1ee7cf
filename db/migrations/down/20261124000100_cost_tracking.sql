-- Down file of 20261124000100_cost_tracking.sql (applied by `llm-common-db rollback`).
-- Drops the cost records, budget counters, reservations and alerts with everything built on
-- them. `llm-common-db rollback` refuses while cost_tracking (or another table here) holds rows,
-- unless --force.

drop function if exists public.cost_batch(jsonb);
drop function if exists public.cost_log(jsonb, date, date, numeric, numeric, numeric);
drop function if exists public.cost_settle(text, jsonb, date, date, numeric, numeric, numeric);
drop function if exists public.cost_reserve(
    text, text, numeric, date, date, numeric, numeric, double precision, text, text, text, text
);
drop function if exists public.cost_release(text);
drop function if exists public.cost_expire_reservations(text);
drop function if exists public.cost__insert_record(jsonb);
drop function if exists public.cost__adjust(
    text, text, date, numeric, numeric, integer, numeric, numeric
);
drop function if exists public.cost__hold(text, text, date, numeric, numeric);
drop function if exists public.cost_budget_status(text, text, date);
drop function if exists public.cost_records_json(timestamptz, timestamptz, text, integer, bigint);
drop function if exists public.cost_breakdown_json(timestamptz, timestamptz, text, text, text);
drop function if exists public.get_cost_breakdown(timestamptz, timestamptz, text, text, text);
drop function if exists public.get_monthly_cost(text, date, text);
drop function if exists public.get_daily_cost(text, date, text);
drop function if exists public.get_cost_total(text, timestamptz, timestamptz);

drop table if exists public.cost_budget_alerts;
drop table if exists public.cost_reservations;
drop table if exists public.cost_budget_periods;
drop table if exists public.cost_tracking;
