-- analysis-pipeline: a lease on running runs, so `resume` can tell a live run from a dead one.
--
-- A running pipeline holds its run's lease (lease_owner) and refreshes heartbeat_at every few
-- seconds. `resume` claims a run through pipeline_claim_run: it succeeds only when the run is
-- not running, or its lease has expired (the process died), and takes the lease over in the same
-- UPDATE, so of two concurrent resumes exactly one wins. Times come from the database clock.
-- Idempotent; runs on plain PostgreSQL 15 and on Supabase.

alter table public.pipeline_runs
    add column if not exists lease_owner text,
    add column if not exists heartbeat_at timestamptz;

create index if not exists pipeline_runs_running_heartbeat_idx
    on public.pipeline_runs (heartbeat_at) where status = 'running';

-- Take the run's lease unless a live process holds it. Returns the claimed row, or no row when
-- the run does not exist or its lease is still fresh.
create or replace function public.pipeline_claim_run(
    p_run_id uuid, p_owner text, p_lease_seconds double precision
)
returns setof public.pipeline_runs
language sql
as $$
    update public.pipeline_runs
       set status = 'running', lease_owner = p_owner, heartbeat_at = now(),
           error = null, finished_at = null
     where id = p_run_id
       and (status <> 'running'
            or lease_owner is not distinct from p_owner
            or heartbeat_at is null
            or heartbeat_at < now() - make_interval(secs => p_lease_seconds))
    returning *;
$$;

-- Refresh the lease; false when the caller no longer holds it (taken over, or finished).
create or replace function public.pipeline_heartbeat(p_run_id uuid, p_owner text)
returns boolean
language sql
as $$
    with touched as (
        update public.pipeline_runs
           set heartbeat_at = now()
         where id = p_run_id and lease_owner = p_owner and status = 'running'
        returning 1
    )
    select exists (select 1 from touched);
$$;

revoke all on function public.pipeline_claim_run(uuid, text, double precision)
    from public, anon, authenticated;
revoke all on function public.pipeline_heartbeat(uuid, text) from public, anon, authenticated;
grant execute on function public.pipeline_claim_run(uuid, text, double precision) to service_role;
grant execute on function public.pipeline_heartbeat(uuid, text) to service_role;
