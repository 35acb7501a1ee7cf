-- Down file of 20261202000100_cost_reservation_holders.sql (applied by `llm-common-db rollback`).
-- Drops the holders table, cost_reservations.holder_id and the functions the up file added;
-- `rollback` then re-runs 20261124000100_cost_tracking.sql, which restores the 12-argument
-- cost_reserve and the earlier cost_expire_reservations / cost_batch. Refused while
-- cost_reservation_holders or cost_reservations hold rows, unless --force.

drop function if exists public.cost_reserve(
    text, text, numeric, date, date, numeric, numeric, double precision, text, text, text, text,
    text
);
drop function if exists public.cost__reclaim(text);
drop function if exists public.cost_heartbeat(text, double precision, text);

drop index if exists public.cost_reservations_holder_id_idx;
alter table public.cost_reservations drop column if exists holder_id;

drop table if exists public.cost_reservation_holders;
