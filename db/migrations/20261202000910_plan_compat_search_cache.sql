-- web-search: the migration plan's cache cleanup, working as written (issue 12).
--
-- The plan calls `SELECT cleanup_search_cache();` (RETURNS void). It deletes the expired
-- entries, as web_search_cache_cleanup() does (which also says how many went).
-- Idempotent: runs twice on PostgreSQL 15 and on Supabase.

create or replace function public.cleanup_search_cache()
returns void
language sql
volatile
set search_path = public
as $$
    select public.web_search_cache_cleanup(now());
$$;

revoke all on function public.cleanup_search_cache() from public, anon, authenticated;
grant execute on function public.cleanup_search_cache() to service_role;
