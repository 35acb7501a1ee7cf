-- conversation-memory: the migration plan's retention cleanup, working as written (issue 12).
--
-- The plan calls `SELECT cleanup_conversations();` (RETURNS void): messages older than 90 days
-- go. It runs conversation_cleanup(), so the summaries derived from those messages and the
-- counters of conversations left empty go with them, as the package's own cleanup does.
-- Idempotent: runs twice on PostgreSQL 15 and on Supabase.

create or replace function public.cleanup_conversations()
returns void
language sql
volatile
set search_path = public
as $$
    select public.conversation_cleanup(now() - interval '90 days');
$$;

revoke all on function public.cleanup_conversations() from public, anon, authenticated;
grant execute on function public.cleanup_conversations() to service_role;
