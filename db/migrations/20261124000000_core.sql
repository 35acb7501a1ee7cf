-- llm-common core: what Supabase already provides, created here only where it is missing, so the
-- same migrations (and RLS policies written with auth.uid()) run unchanged on plain PostgreSQL 15
-- and on Supabase.
--
-- * schema auth with auth.uid(), auth.role(), auth.jwt() reading PostgREST's request.jwt.claims
--   (on Supabase these exist and belong to supabase_auth_admin: never replaced here);
-- * roles anon, authenticated, service_role (NOLOGIN; service_role BYPASSRLS) and the login role
--   authenticator (NOINHERIT, member of the three) that PostgREST connects as before it does
--   SET LOCAL ROLE per request.
--
-- Roles are cluster-wide: two databases on one server may run this file at the same moment, so
-- every CREATE/GRANT of a role tolerates a concurrent creator (duplicate_object, unique_violation).

do $$
begin
    if not exists (select 1 from pg_catalog.pg_namespace where nspname = 'auth') then
        create schema auth;
    end if;
end
$$;

do $$
declare
    spec record;
begin
    for spec in
        select * from (values
            ('anon', 'nologin noinherit'),
            ('authenticated', 'nologin noinherit'),
            ('service_role', 'nologin noinherit bypassrls'),
            ('authenticator', 'login noinherit')
        ) as t(rolname, options)
    loop
        if not exists (select 1 from pg_catalog.pg_roles where rolname = spec.rolname) then
            begin
                execute format('create role %I %s', spec.rolname, spec.options);
            exception when duplicate_object or unique_violation then
                null;  -- created concurrently by a migration of another database
            end;
        end if;
    end loop;

    for spec in select unnest(array['anon', 'authenticated', 'service_role']) as rolname
    loop
        if not exists (
            select 1
            from pg_catalog.pg_auth_members m
            join pg_catalog.pg_roles g on g.oid = m.roleid
            join pg_catalog.pg_roles u on u.oid = m.member
            where g.rolname = spec.rolname and u.rolname = 'authenticator'
        ) then
            begin
                execute format('grant %I to authenticator', spec.rolname);
            exception when duplicate_object or unique_violation then
                null;
            end;
        end if;
    end loop;
end
$$;

do $$
begin
    if to_regprocedure('auth.uid()') is null then
        -- nullif(..., '') everywhere: an unset or empty claim means "no user", never a cast error.
        create function auth.uid() returns uuid
        language sql stable
        as $fn$
            select nullif(
                coalesce(
                    nullif(current_setting('request.jwt.claim.sub', true), ''),
                    nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
                ),
                ''
            )::uuid
        $fn$;
    end if;

    if to_regprocedure('auth.role()') is null then
        create function auth.role() returns text
        language sql stable
        as $fn$
            select coalesce(
                nullif(current_setting('request.jwt.claim.role', true), ''),
                nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
            )
        $fn$;
    end if;

    if to_regprocedure('auth.jwt()') is null then
        create function auth.jwt() returns jsonb
        language sql stable
        as $fn$
            select coalesce(
                nullif(current_setting('request.jwt.claim', true), ''),
                nullif(current_setting('request.jwt.claims', true), '')
            )::jsonb
        $fn$;
    end if;

    -- On Supabase the auth schema is not ours and these grants already exist.
    if has_schema_privilege('auth', 'USAGE WITH GRANT OPTION') then
        grant usage on schema auth to anon, authenticated, service_role;
    end if;
end
$$;

grant usage on schema public to anon, authenticated, service_role;
