-- conversation-memory: chat messages, per-conversation sequence counters, rolling summaries, the
-- SQL functions doing every atomic step, and row-level security (owned by
-- packages/conversation-memory).
--
-- * Everything is keyed by (user_id, conversation_id): two users choosing the same conversation id
--   get two separate conversations, and nothing about one is visible to the other.
-- * seq comes from a counter row per conversation, bumped by INSERT ... ON CONFLICT DO UPDATE
--   inside conversation_append, so concurrent writers serialise on that row and never reorder or
--   lose messages.
-- * conversation_summaries keeps the latest rolling summary; covers_from_created_at is the
--   creation time of the oldest message folded into it, so retention can delete every summary
--   derived from a deleted message.
-- * All functions are SECURITY INVOKER: called as `authenticated` (PostgREST with a user's JWT,
--   or SET LOCAL ROLE + request.jwt.claims) the RLS policies below apply to everything they do.

create table if not exists public.conversations (
    id bigint generated always as identity primary key,
    user_id uuid not null,
    conversation_id text not null check (char_length(conversation_id) between 1 and 200),
    seq bigint not null check (seq > 0),
    role text not null check (role in ('user', 'assistant', 'system')),
    content text not null check (char_length(content) > 0),
    page text,
    token_count integer not null default 0 check (token_count >= 0),
    created_at timestamptz not null default now()
);

-- The hot path: the newest messages of one conversation (ORDER BY seq DESC LIMIT n). Unique, so
-- a sequence number can never be handed out twice.
create unique index if not exists conversations_user_conversation_seq_key
    on public.conversations (user_id, conversation_id, seq desc);
-- Retention deletes by age.
create index if not exists conversations_created_at_idx
    on public.conversations (created_at);

create table if not exists public.conversation_counters (
    user_id uuid not null,
    conversation_id text not null,
    last_seq bigint not null default 0,
    primary key (user_id, conversation_id)
);

create table if not exists public.conversation_summaries (
    id bigint generated always as identity primary key,
    user_id uuid not null,
    conversation_id text not null,
    version integer not null check (version > 0),
    summary text not null,
    covers_up_to_seq bigint not null,
    covers_from_created_at timestamptz not null,
    covers_to_created_at timestamptz not null,
    model text,
    created_at timestamptz not null default now()
);

create unique index if not exists conversation_summaries_user_conversation_version_key
    on public.conversation_summaries (user_id, conversation_id, version desc);
create index if not exists conversation_summaries_covers_from_idx
    on public.conversation_summaries (covers_from_created_at);

-- Append one message with the next sequence number of its conversation; returns the stored row.
create or replace function public.conversation_append(
    p_user_id uuid,
    p_conversation_id text,
    p_role text,
    p_content text,
    p_page text default null,
    p_token_count integer default 0
) returns public.conversations
language sql
security invoker
set search_path = public, pg_temp
as $$
    with counter as (
        insert into public.conversation_counters as c (user_id, conversation_id, last_seq)
        values (p_user_id, p_conversation_id, 1)
        on conflict (user_id, conversation_id) do update set last_seq = c.last_seq + 1
        returning last_seq
    )
    -- clock_timestamp(), not now(): it is read after the counter row is locked, so created_at
    -- grows with seq even when the caller's transaction started earlier.
    insert into public.conversations
        (user_id, conversation_id, seq, role, content, page, token_count, created_at)
    select p_user_id, p_conversation_id, counter.last_seq, p_role, p_content, p_page,
           p_token_count, clock_timestamp()
    from counter
    returning *;
$$;

-- The latest summary and the p_limit newest messages (oldest first) in one call.
create or replace function public.conversation_context(
    p_user_id uuid,
    p_conversation_id text,
    p_limit integer default 20
) returns jsonb
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
    select jsonb_build_object(
        'summary', (
            select to_jsonb(s)
            from public.conversation_summaries s
            where s.user_id = p_user_id and s.conversation_id = p_conversation_id
            order by s.version desc
            limit 1
        ),
        'messages', coalesce((
            select jsonb_agg(to_jsonb(m) order by m.seq)
            from (
                select *
                from public.conversations c
                where c.user_id = p_user_id and c.conversation_id = p_conversation_id
                order by c.seq desc
                limit p_limit
            ) m
        ), '[]'::jsonb)
    );
$$;

-- Store summary version p_base_version + 1 if the latest stored version is still p_base_version
-- (compare-and-set under the conversation's counter-row lock); older versions are removed.
-- Returns the stored row, or NULL when another summariser got there first.
create or replace function public.conversation_save_summary(
    p_user_id uuid,
    p_conversation_id text,
    p_base_version integer,
    p_summary text,
    p_covers_up_to_seq bigint,
    p_covers_from_created_at timestamptz,
    p_covers_to_created_at timestamptz,
    p_model text default null
) returns public.conversation_summaries
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
    v_latest integer;
    v_row public.conversation_summaries;
begin
    perform 1 from public.conversation_counters
    where user_id = p_user_id and conversation_id = p_conversation_id
    for update;
    if not found then
        return null;  -- no messages (or not this caller's): nothing to summarise
    end if;
    select coalesce(max(version), 0) into v_latest
    from public.conversation_summaries
    where user_id = p_user_id and conversation_id = p_conversation_id;
    if v_latest <> p_base_version then
        return null;
    end if;
    insert into public.conversation_summaries
        (user_id, conversation_id, version, summary, covers_up_to_seq, covers_from_created_at,
         covers_to_created_at, model)
    values
        (p_user_id, p_conversation_id, p_base_version + 1, p_summary, p_covers_up_to_seq,
         p_covers_from_created_at, p_covers_to_created_at, p_model)
    returning * into v_row;
    delete from public.conversation_summaries
    where user_id = p_user_id and conversation_id = p_conversation_id
      and version < v_row.version;
    return v_row;
end;
$$;

-- Every message and summary of one user, as {"messages": [...], "summaries": [...]}.
create or replace function public.conversation_export_user(p_user_id uuid) returns jsonb
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
    select jsonb_build_object(
        'messages', coalesce((
            select jsonb_agg(to_jsonb(m) order by m.conversation_id, m.seq)
            from public.conversations m where m.user_id = p_user_id
        ), '[]'::jsonb),
        'summaries', coalesce((
            select jsonb_agg(to_jsonb(s) order by s.conversation_id, s.version)
            from public.conversation_summaries s where s.user_id = p_user_id
        ), '[]'::jsonb)
    );
$$;

-- Delete every row of one user; returns the receipt {"messages", "summaries", "conversations"}.
create or replace function public.conversation_delete_user(p_user_id uuid) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
    v_messages bigint;
    v_summaries bigint;
    v_counters bigint;
begin
    -- Lock the counters first so a concurrent append cannot slip a message in behind the delete.
    perform 1 from public.conversation_counters where user_id = p_user_id
    order by conversation_id for update;
    delete from public.conversations where user_id = p_user_id;
    get diagnostics v_messages = row_count;
    delete from public.conversation_summaries where user_id = p_user_id;
    get diagnostics v_summaries = row_count;
    delete from public.conversation_counters where user_id = p_user_id;
    get diagnostics v_counters = row_count;
    return jsonb_build_object(
        'messages', v_messages, 'summaries', v_summaries, 'conversations', v_counters);
end;
$$;

-- Retention: delete messages created before p_cutoff, every summary derived from one of them, and
-- the counters of conversations left empty. Returns {"messages", "summaries", "conversations"}.
create or replace function public.conversation_cleanup(p_cutoff timestamptz) returns jsonb
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
    v_messages bigint := 0;
    v_summaries bigint := 0;
    v_counters bigint := 0;
    v_users uuid[];
    v_conversations text[];
begin
    with gone as (
        delete from public.conversations where created_at < p_cutoff
        returning user_id, conversation_id
    ), touched as (
        select user_id, conversation_id, count(*) as n from gone group by 1, 2
    )
    select coalesce(sum(n), 0), array_agg(user_id), array_agg(conversation_id)
    into v_messages, v_users, v_conversations
    from touched;

    with gone as (
        delete from public.conversation_summaries where covers_from_created_at < p_cutoff
        returning user_id, conversation_id
    )
    select count(*),
           coalesce(v_users, '{}') || coalesce(array_agg(user_id), '{}'),
           coalesce(v_conversations, '{}') || coalesce(array_agg(conversation_id), '{}')
    into v_summaries, v_users, v_conversations
    from gone;

    -- Lock the touched counters, then re-check emptiness in a new statement (a fresh snapshot
    -- under READ COMMITTED) so an append that committed meanwhile keeps its counter.
    perform 1
    from public.conversation_counters c
    join unnest(v_users, v_conversations) as t(user_id, conversation_id)
      on c.user_id = t.user_id and c.conversation_id = t.conversation_id
    order by c.user_id, c.conversation_id
    for update of c;

    delete from public.conversation_counters c
    using (select distinct * from unnest(v_users, v_conversations)) as t(user_id, conversation_id)
    where c.user_id = t.user_id and c.conversation_id = t.conversation_id
      and not exists (
          select 1 from public.conversations m
          where m.user_id = c.user_id and m.conversation_id = c.conversation_id)
      and not exists (
          select 1 from public.conversation_summaries s
          where s.user_id = c.user_id and s.conversation_id = c.conversation_id);
    get diagnostics v_counters = row_count;

    return jsonb_build_object(
        'messages', v_messages, 'summaries', v_summaries, 'conversations', v_counters);
end;
$$;

-- Row-level security: a signed-in user sees and changes only their own rows; the service role
-- (server jobs: retention, support tooling) sees everything.
alter table public.conversations enable row level security;
alter table public.conversation_counters enable row level security;
alter table public.conversation_summaries enable row level security;

do $$
declare
    t text;
begin
    foreach t in array array['conversations', 'conversation_counters', 'conversation_summaries']
    loop
        execute format('drop policy if exists %I on public.%I', t || '_select_own', t);
        execute format(
            'create policy %I on public.%I for select to authenticated '
            'using (user_id = (select auth.uid()))', t || '_select_own', t);
        execute format('drop policy if exists %I on public.%I', t || '_insert_own', t);
        execute format(
            'create policy %I on public.%I for insert to authenticated '
            'with check (user_id = (select auth.uid()))', t || '_insert_own', t);
        execute format('drop policy if exists %I on public.%I', t || '_update_own', t);
        execute format(
            'create policy %I on public.%I for update to authenticated '
            'using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()))',
            t || '_update_own', t);
        execute format('drop policy if exists %I on public.%I', t || '_delete_own', t);
        execute format(
            'create policy %I on public.%I for delete to authenticated '
            'using (user_id = (select auth.uid()))', t || '_delete_own', t);
        execute format('drop policy if exists %I on public.%I', t || '_service_all', t);
        execute format(
            'create policy %I on public.%I for all to service_role using (true) with check (true)',
            t || '_service_all', t);
    end loop;
end
$$;

-- Supabase's default privileges hand every new public table to anon as well; chat history is
-- never readable without a signed-in user.
revoke all
    on public.conversations, public.conversation_counters, public.conversation_summaries
    from anon;
grant select, insert, update, delete
    on public.conversations, public.conversation_counters, public.conversation_summaries
    to authenticated, service_role;

revoke execute on function
    public.conversation_append(uuid, text, text, text, text, integer),
    public.conversation_context(uuid, text, integer),
    public.conversation_save_summary(uuid, text, integer, text, bigint, timestamptz, timestamptz, text),
    public.conversation_export_user(uuid),
    public.conversation_delete_user(uuid),
    public.conversation_cleanup(timestamptz)
    from public, anon;
grant execute on function
    public.conversation_append(uuid, text, text, text, text, integer),
    public.conversation_context(uuid, text, integer),
    public.conversation_save_summary(uuid, text, integer, text, bigint, timestamptz, timestamptz, text),
    public.conversation_export_user(uuid),
    public.conversation_delete_user(uuid),
    public.conversation_cleanup(timestamptz)
    to authenticated, service_role;
