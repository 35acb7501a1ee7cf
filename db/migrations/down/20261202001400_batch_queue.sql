-- Down file of 20261202001400_batch_queue.sql (applied by `llm-common-db rollback`).
-- Drops procrastinate's tables, functions and types (refused while its tables hold rows, unless
-- --force: queued jobs would be lost). Tables go first: their triggers go with them.

drop table if exists public.procrastinate_events;
drop table if exists public.procrastinate_periodic_defers;
drop table if exists public.procrastinate_jobs;
drop table if exists public.procrastinate_workers;

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

drop type if exists public.procrastinate_job_to_defer_v1;
drop type if exists public.procrastinate_job_event_type;
drop type if exists public.procrastinate_job_status;
