-- Down file of 20261202000200_pipeline_run_lease.sql (applied by `llm-common-db rollback`).
-- Drops the run lease: its functions, index and columns (refused while pipeline_runs holds
-- rows, unless --force: their lease values would be lost).

drop function if exists public.pipeline_heartbeat(uuid, text);
drop function if exists public.pipeline_claim_run(uuid, text, double precision);

drop index if exists public.pipeline_runs_running_heartbeat_idx;

alter table public.pipeline_runs
    drop column if exists heartbeat_at,
    drop column if exists lease_owner;
