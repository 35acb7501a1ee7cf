-- analysis-pipeline-batch: the bills of batch analysis, one row per (bill id, input hash).
--
-- `analysis-pipeline batch enqueue` inserts a row per bill and defers one queue job for it
-- (procrastinate, 20261202001400_batch_queue.sql); the unique (bill_id, input_hash) makes
-- enqueueing the same bill twice a no-op, so it is analysed once. Workers move the row through
-- queued -> running -> done | failed and record the pipeline run (run_id) before paying for
-- anything, so a job taken over from a dead worker resumes that run instead of starting over.
-- A budget refusal puts the row back to queued. Server-side table: RLS on with no policy,
-- privileges revoked from anon/authenticated (as the pipeline tables).
-- Idempotent; runs on plain PostgreSQL 15 and on Supabase.

create table if not exists public.pipeline_batch_items (
    id bigint generated always as identity primary key,
    bill_id text not null,
    jurisdiction text not null,
    input_hash text not null,
    bill_text text not null,
    status text not null default 'queued'
        constraint pipeline_batch_items_status_check
        check (status in ('queued', 'running', 'done', 'failed')),
    job_id bigint,
    run_id uuid,
    attempts integer not null default 0,
    error text,
    worker text,
    enqueued_at timestamptz not null default now(),
    started_at timestamptz,
    finished_at timestamptz,
    constraint pipeline_batch_items_bill_input_key unique (bill_id, input_hash)
);

create index if not exists pipeline_batch_items_status_idx
    on public.pipeline_batch_items (status, finished_at);

alter table public.pipeline_batch_items enable row level security;
revoke all on table public.pipeline_batch_items from anon, authenticated;
grant select, insert, update, delete on table public.pipeline_batch_items to service_role;
