-- Down file of 20261124000000_core.sql (applied by `llm-common-db rollback`, never by Supabase).
--
-- Drops only what the up file created for this database: auth.uid() / auth.role() / auth.jwt()
-- when the migrating user owns them (on Supabase they belong to supabase_auth_admin and stay),
-- then the auth schema when it is ours and empty. No CASCADE: if anything still uses auth.uid()
-- (a policy of your own), the rollback fails and nothing changes.
-- Kept on purpose: the roles anon, authenticated, service_role and authenticator (cluster-wide,
-- shared by every database on the server) and the usage grant on schema public (Supabase's own).

do $$
declare
    fn text;
begin
    foreach fn in array array['auth.uid()', 'auth.role()', 'auth.jwt()'] loop
        if exists (
            select 1 from pg_catalog.pg_proc
             where oid = to_regprocedure(fn) and proowner = (
                 select oid from pg_catalog.pg_roles where rolname = current_user
             )
        ) then
            execute 'drop function ' || fn;
        end if;
    end loop;
    if exists (
        select 1 from pg_catalog.pg_namespace n
         where n.nspname = 'auth'
           and n.nspowner = (select oid from pg_catalog.pg_roles where rolname = current_user)
           and not exists (select 1 from pg_catalog.pg_depend d
                            where d.refobjid = n.oid and d.deptype = 'n')
    ) then
        drop schema auth;
    end if;
end
$$;
