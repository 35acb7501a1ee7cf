-- Down file of 20261202001420_batch_call_slots.sql (applied by `llm-common-db rollback`).
-- Drops the call limiter's slot table (refused while it holds rows, unless --force: its rows
-- are only slot leases, so --force loses nothing once no worker is running).

drop table if exists public.pipeline_call_slots;
