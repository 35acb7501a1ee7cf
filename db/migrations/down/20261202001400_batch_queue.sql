-- Down file of 20261202001400_batch_queue.sql (applied by `llm-common-db rollback`).
-- Drops procrastinate's triggers, functions, tables and types, in that order (functions take
-- the jobs table's row type, so they go before it). Refused while its tables hold rows, unless
-- --force: queued jobs would be lost.

drop trigger if exists procrastinate_jobs_notify_queue_job_inserted_v1 on public.procrastinate_jobs;
drop trigger if exists procrastinate_jobs_notify_queue_job_aborted_v1 on public.procrastinate_jobs;
drop trigger if exists procrastinate_trigger_status_events_update_v1 on public.procrastinate_jobs;
drop trigger if exists procrastinate_trigger_status_events_insert_v1 on public.procrastinate_jobs;
drop trigger if exists procrastinate_trigger_scheduled_events_v1 on public.procrastinate_jobs;
drop trigger if exists procrastinate_trigger_abort_requested_events_v1 on public.procrastinate_jobs;
drop trigger if exists procrastinate_trigger_delete_jobs_v1 on public.procrastinate_jobs;

-- Every procrastinate_* function of the file, whatever its signature.
do $$
declare
    fn regprocedure;
begin
    for fn in
        select p.oid::regprocedure from pg_proc p
        where p.pronamespace = 'public'::regnamespace and p.proname like 'procrastinate\_%'
    loop
        execute format('drop function if exists %s', fn);
    end loop;
end;
$$;

drop table if exists public.procrastinate_events;
drop table if exists public.procrastinate_periodic_defers;
drop table if exists public.procrastinate_jobs;
drop table if exists public.procrastinate_workers;

drop type if exists public.procrastinate_job_to_defer_v1;
drop type if exists public.procrastinate_job_event_type;
drop type if exists public.procrastinate_job_status;
