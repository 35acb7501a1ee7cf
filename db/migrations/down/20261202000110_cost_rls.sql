-- Down file of 20261202000110_cost_rls.sql (applied by `llm-common-db rollback`).
-- Drops the allowed-projects list, cost_tracking.written_by with its trigger, and the report
-- functions' p_server_only signatures; `rollback` then re-runs the earlier cost-tracker files,
-- which restore the previous report functions and insert policy. Refused while cost_tracking or
-- cost_allowed_projects hold rows, unless --force. The policy goes first: it calls
-- cost_project_allows_users().

drop policy if exists cost_tracking_insert_own on public.cost_tracking;

drop function if exists public.cost_records_json(
    timestamptz, timestamptz, text, integer, bigint, boolean
);
drop function if exists public.cost_breakdown_json(
    timestamptz, timestamptz, text, text, text, boolean
);
drop function if exists public.get_cost_breakdown(
    timestamptz, timestamptz, text, text, text, boolean
);
drop function if exists public.get_monthly_cost(text, date, text, boolean);
drop function if exists public.get_daily_cost(text, date, text, boolean);
drop function if exists public.get_cost_total(text, timestamptz, timestamptz, boolean);
drop function if exists public.cost_disallow_project(text);
drop function if exists public.cost_allow_project(text, text);
drop function if exists public.cost_project_allows_users(text);

drop trigger if exists cost_tracking_stamp_writer on public.cost_tracking;
drop function if exists public.cost__stamp_writer();
alter table public.cost_tracking drop column if exists written_by;

drop table if exists public.cost_allowed_projects;
