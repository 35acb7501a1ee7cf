-- analysis-pipeline: the switch-over. A rollout flag an admin flips without a restart (every
-- change audited: who, when, old, new) and the shadow runs that compare the app's legacy
-- analyser with the new pipeline on the same bill.
--
-- Server-side tables like the rest of the pipeline's: RLS enabled with no policy for anon or
-- authenticated (deny all), privileges revoked from them, explicit grants to service_role.
-- Idempotent; runs on plain PostgreSQL 15 and on Supabase.

create table if not exists public.pipeline_flags (
    name text primary key,
    enabled boolean,                                -- null: the percentage decides
    percent numeric not null default 0
        constraint pipeline_flags_percent_check check (percent >= 0 and percent <= 100),
    updated_at timestamptz not null default now(),
    updated_by text not null
);

create table if not exists public.pipeline_flag_changes (
    id bigint generated always as identity primary key,
    name text not null,
    changed_at timestamptz not null default now(),
    changed_by text not null,
    old_enabled boolean,
    old_percent numeric,                            -- null (with old_enabled): no row before
    new_enabled boolean,
    new_percent numeric not null
);

create index if not exists pipeline_flag_changes_name_idx
    on public.pipeline_flag_changes (name, id desc);

create table if not exists public.pipeline_shadow_runs (
    id uuid primary key default gen_random_uuid(),
    bill_id text not null,
    jurisdiction text,
    served_arm text not null
        constraint pipeline_shadow_runs_served_check check (served_arm in ('new', 'legacy')),
    started_at timestamptz not null default now(),
    new_status text not null
        constraint pipeline_shadow_runs_new_status_check
        check (new_status in ('ok', 'error', 'timeout', 'cancelled')),
    new_error text,
    new_cost numeric,                               -- USD, unscaled; null = unknown
    new_latency_ms numeric not null default 0,
    new_impacts jsonb not null default '[]'::jsonb,
    new_run_id uuid,
    legacy_status text not null
        constraint pipeline_shadow_runs_legacy_status_check
        check (legacy_status in ('ok', 'error', 'timeout', 'cancelled')),
    legacy_error text,
    legacy_cost numeric,
    legacy_latency_ms numeric not null default 0,
    legacy_impacts jsonb not null default '[]'::jsonb
);

create index if not exists pipeline_shadow_runs_started_at_idx
    on public.pipeline_shadow_runs (started_at desc);
create index if not exists pipeline_shadow_runs_bill_id_idx
    on public.pipeline_shadow_runs (bill_id, started_at desc);

-- Set a flag and audit the change in one transaction. p_percent null keeps the stored percent
-- (0 for a new flag); p_enabled is stored as given (null: the percentage decides). Concurrent
-- changes of one flag are serialised by the row lock, so every audit row's "old" is exact, and
-- audit ids (and clock_timestamp(), taken after the lock) follow that order.
create or replace function public.pipeline_set_flag(
    p_name text, p_enabled boolean, p_percent numeric, p_changed_by text
)
returns setof public.pipeline_flags
language plpgsql
as $$
declare
    previous public.pipeline_flags;
    found_previous boolean;
begin
    if p_percent is not null and (p_percent < 0 or p_percent > 100) then
        raise exception 'flag percent must be between 0 and 100, got %', p_percent
            using errcode = '22023';
    end if;
    if coalesce(btrim(p_changed_by), '') = '' then
        raise exception 'a flag change needs who made it (changed_by)' using errcode = '22023';
    end if;
    insert into public.pipeline_flags (name, enabled, percent, updated_by)
    values (p_name, null, 0, p_changed_by)
    on conflict (name) do nothing;
    found_previous := not found;
    select * into previous from public.pipeline_flags where name = p_name for update;
    insert into public.pipeline_flag_changes
        (name, changed_at, changed_by, old_enabled, old_percent, new_enabled, new_percent)
    values (
        p_name, clock_timestamp(), p_changed_by,
        case when found_previous then previous.enabled end,
        case when found_previous then previous.percent end,
        p_enabled, coalesce(p_percent, previous.percent)
    );
    return query
        update public.pipeline_flags
           set enabled = p_enabled, percent = coalesce(p_percent, previous.percent),
               updated_at = clock_timestamp(), updated_by = p_changed_by
         where name = p_name
        returning *;
end
$$;

alter table public.pipeline_flags enable row level security;
alter table public.pipeline_flag_changes enable row level security;
alter table public.pipeline_shadow_runs enable row level security;

revoke all on table public.pipeline_flags, public.pipeline_flag_changes,
    public.pipeline_shadow_runs from anon, authenticated;
grant select, insert, update, delete
    on table public.pipeline_flags, public.pipeline_flag_changes, public.pipeline_shadow_runs
    to service_role;
revoke all on function public.pipeline_set_flag(text, boolean, numeric, text)
    from public, anon, authenticated;
grant execute on function public.pipeline_set_flag(text, boolean, numeric, text) to service_role;
