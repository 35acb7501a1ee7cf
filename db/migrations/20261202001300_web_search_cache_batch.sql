-- web-search: one round trip per research set (issue 14). A bill's research set reads the cache
-- once (every key at once, counting each hit) and writes it once (every new answer at once),
-- instead of one statement per query.
-- Idempotent: create or replace only; runs twice on PostgreSQL 15 and on Supabase.

-- Every unexpired entry among p_keys, counting each hit, in one statement (atomic per row).
create or replace function public.web_search_cache_hit_many(
    p_keys text[],
    p_now timestamptz default now()
)
returns table (key text, payload jsonb)
language sql
volatile
set search_path = ''
as $$
    update public.web_search_cache as c
       set hit_count = c.hit_count + 1,
           last_hit_at = p_now
     where c.key = any(p_keys)
       and c.expires_at > p_now
    returning c.key, c.payload
$$;

-- Insert or replace many entries: p_entries is a JSON array of
-- {key, provider, query, payload, expires_at}; a key given twice keeps its last entry.
-- Returns how many entries were written.
create or replace function public.web_search_cache_put_many(
    p_entries jsonb,
    p_now timestamptz default now()
)
returns integer
language sql
volatile
set search_path = ''
as $$
    with given as (
        select e.ordinality as n,
               e.value ->> 'key' as key,
               e.value ->> 'provider' as provider,
               e.value ->> 'query' as query,
               e.value -> 'payload' as payload,
               (e.value ->> 'expires_at')::timestamptz as expires_at
          from jsonb_array_elements(p_entries) with ordinality as e(value, ordinality)
    ),
    latest as (
        select distinct on (key) key, provider, query, payload, expires_at
          from given
         order by key, n desc
    ),
    written as (
        insert into public.web_search_cache as c
            (key, provider, query, payload, created_at, expires_at)
        select key, provider, query, payload, p_now, expires_at from latest
        on conflict (key) do update
            set provider = excluded.provider,
                query = excluded.query,
                payload = excluded.payload,
                created_at = excluded.created_at,
                expires_at = excluded.expires_at,
                hit_count = 0,
                last_hit_at = null
        returning 1
    )
    select count(*)::integer from written
$$;

revoke all on function public.web_search_cache_hit_many(text[], timestamptz)
    from public, anon, authenticated;
revoke all on function public.web_search_cache_put_many(jsonb, timestamptz)
    from public, anon, authenticated;
grant execute on function public.web_search_cache_hit_many(text[], timestamptz) to service_role;
grant execute on function public.web_search_cache_put_many(jsonb, timestamptz) to service_role;
