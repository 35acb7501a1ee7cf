-- web-search: the persistent cache tier shared by every process and machine of an app, and its
-- statistics (owned by packages/web-search).
--
-- Server-side only: RLS is enabled with no policy for anon/authenticated (deny all) and their
-- privileges revoked; service_role (BYPASSRLS) gets explicit grants. Payloads are versioned JSON
-- written by the library; a payload it cannot read is treated as a miss, so this table never
-- needs a data migration when the payload layout changes.

create table if not exists public.web_search_cache (
    key text primary key,
    provider text not null,
    query text not null,
    payload jsonb not null,
    hit_count bigint not null default 0,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    last_hit_at timestamptz
);

create index if not exists web_search_cache_expires_at_idx
    on public.web_search_cache (expires_at);
create index if not exists web_search_cache_provider_created_at_idx
    on public.web_search_cache (provider, created_at);

create table if not exists public.web_search_cache_stats (
    namespace text primary key,
    l1_hits bigint not null default 0,
    l2_hits bigint not null default 0,
    coalesced bigint not null default 0,
    misses bigint not null default 0,
    upstream_calls bigint not null default 0,
    dollars_spent numeric not null default 0,
    dollars_saved numeric not null default 0,
    updated_at timestamptz not null default now()
);

-- A hit: return the unexpired payload and count the hit in the same statement (atomic).
create or replace function public.web_search_cache_hit(p_key text, p_now timestamptz default now())
returns jsonb
language sql
volatile
set search_path = ''
as $$
    update public.web_search_cache
       set hit_count = hit_count + 1,
           last_hit_at = p_now
     where key = p_key
       and expires_at > p_now
    returning payload
$$;

-- Insert or replace an entry (a refresh starts its hit count again).
create or replace function public.web_search_cache_put(
    p_key text,
    p_payload jsonb,
    p_expires_at timestamptz,
    p_provider text,
    p_query text,
    p_now timestamptz default now()
)
returns void
language sql
volatile
set search_path = ''
as $$
    insert into public.web_search_cache (key, provider, query, payload, created_at, expires_at)
    values (p_key, p_provider, p_query, p_payload, p_now, p_expires_at)
    on conflict (key) do update
        set provider = excluded.provider,
            query = excluded.query,
            payload = excluded.payload,
            created_at = excluded.created_at,
            expires_at = excluded.expires_at,
            hit_count = 0,
            last_hit_at = null
$$;

-- Delete expired entries; returns how many went. Schedule it (pg_cron) or call it from the app.
create or replace function public.web_search_cache_cleanup(p_now timestamptz default now())
returns integer
language sql
volatile
set search_path = ''
as $$
    with gone as (
        delete from public.web_search_cache where expires_at <= p_now returning 1
    )
    select count(*)::integer from gone
$$;

-- Add a batch of counters to a namespace's statistics (one atomic upsert).
create or replace function public.web_search_cache_stats_add(
    p_namespace text,
    p_l1_hits bigint,
    p_l2_hits bigint,
    p_coalesced bigint,
    p_misses bigint,
    p_upstream_calls bigint,
    p_dollars_spent numeric,
    p_dollars_saved numeric
)
returns void
language sql
volatile
set search_path = ''
as $$
    insert into public.web_search_cache_stats as s (
        namespace, l1_hits, l2_hits, coalesced, misses, upstream_calls, dollars_spent,
        dollars_saved, updated_at
    )
    values (
        p_namespace, p_l1_hits, p_l2_hits, p_coalesced, p_misses, p_upstream_calls,
        p_dollars_spent, p_dollars_saved, now()
    )
    on conflict (namespace) do update
        set l1_hits = s.l1_hits + excluded.l1_hits,
            l2_hits = s.l2_hits + excluded.l2_hits,
            coalesced = s.coalesced + excluded.coalesced,
            misses = s.misses + excluded.misses,
            upstream_calls = s.upstream_calls + excluded.upstream_calls,
            dollars_spent = s.dollars_spent + excluded.dollars_spent,
            dollars_saved = s.dollars_saved + excluded.dollars_saved,
            updated_at = now()
$$;

alter table public.web_search_cache enable row level security;
alter table public.web_search_cache_stats enable row level security;

revoke all on table public.web_search_cache, public.web_search_cache_stats
    from anon, authenticated;
grant select, insert, update, delete
    on table public.web_search_cache, public.web_search_cache_stats
    to service_role;

revoke all on function public.web_search_cache_hit(text, timestamptz) from public, anon, authenticated;
revoke all on function public.web_search_cache_put(text, jsonb, timestamptz, text, text, timestamptz)
    from public, anon, authenticated;
revoke all on function public.web_search_cache_cleanup(timestamptz) from public, anon, authenticated;
revoke all on function public.web_search_cache_stats_add(
    text, bigint, bigint, bigint, bigint, bigint, numeric, numeric
) from public, anon, authenticated;
grant execute on function public.web_search_cache_hit(text, timestamptz) to service_role;
grant execute on function public.web_search_cache_put(text, jsonb, timestamptz, text, text, timestamptz)
    to service_role;
grant execute on function public.web_search_cache_cleanup(timestamptz) to service_role;
grant execute on function public.web_search_cache_stats_add(
    text, bigint, bigint, bigint, bigint, bigint, numeric, numeric
) to service_role;
