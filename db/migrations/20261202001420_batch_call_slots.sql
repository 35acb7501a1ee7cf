-- analysis-pipeline-batch: the call limiter's slots, as leases that outlive a dead holder.
--
-- `CallLimiter` caps concurrent paid calls per provider account across every worker: one row
-- per (account key, slot number), `limit` rows per account (inserted by the limiter on first
-- use). A live holder keeps its slot through the session advisory lock (key, slot); taking a
-- slot also sets `lease_until` to now + `abandoned_after` (the longest a call can run). When a
-- holder dies its lock goes with its session, but the calls it had sent may still be running at
-- the provider, so the slot stays taken until `lease_until` passes. Releasing sets it to now().
-- Server-side table: RLS on with no policy, privileges revoked from anon/authenticated (as the
-- pipeline tables). Idempotent; runs on plain PostgreSQL 15 and on Supabase.

create table if not exists public.pipeline_call_slots (
    key integer not null,
    slot integer not null,
    lease_until timestamptz not null default '-infinity',
    primary key (key, slot)
);

alter table public.pipeline_call_slots enable row level security;
revoke all on table public.pipeline_call_slots from anon, authenticated;
grant select, insert, update, delete on table public.pipeline_call_slots to service_role;
