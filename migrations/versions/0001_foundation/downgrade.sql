-- Downgrade of revision 0001: removes everything it created.
-- GUARD: operator data (history beyond init, configuration changes) is dropped only when confirmed
-- with alembic -x drop_data=yes downgrade ... (which sets chat_rollout.drop_data for this transaction).
do $guard$
declare
    v_history bigint;
    v_config bigint;
begin
    select count(*) into v_history from chat_v11.rollout_history where action <> 'init';
    select count(*) into v_config from chat_v11.config_change;
    if (v_history > 0 or v_config > 0)
       and coalesce(current_setting('chat_rollout.drop_data', true), '') <> 'yes' then
        raise exception using
            errcode = 'RO013',
            message = 'downgrade refused: it would drop operator data',
            detail = format('%s rollout history rows beyond init and %s configuration changes would be lost.',
                            v_history, v_config),
            hint = 'Keep a copy first (pg_dump -n chat_v11), then confirm with: '
                || 'alembic -x drop_data=yes downgrade base';
    end if;
end
$guard$;

drop function public.chat_set_v11_policy(text, jsonb);
drop function public.chat_set_v11_stage_settings(text, numeric, interval);
drop function public.chat_verify_v11_history();
drop function public.chat_lift_v11_freeze(text);
drop function public.chat_set_v11_rollout_state(text, boolean, text);
drop function public.chat_get_v11_release_gates(timestamptz);
drop function public.chat_get_v11_gate_checks(timestamptz);
drop function public.chat_get_v11_rollout_history(integer);
drop function public.chat_get_v11_rollout_state();
drop schema chat_v11 cascade;

-- Group roles are cluster-wide: dropped only where nothing (in any database) depends on them and no
-- login role was granted them (a DBA's grants are never removed silently).
do $roles$
declare
    v_role text;
begin
    foreach v_role in array array[
        'chat_rollout_operator', 'chat_rollout_admin', 'chat_rollout_ingest', 'chat_rollout_reader'
    ] loop
        if exists (
            select
              from pg_catalog.pg_auth_members as m
              join pg_catalog.pg_roles as g on g.oid = m.roleid
              join pg_catalog.pg_roles as r on r.oid = m.member
             where g.rolname = v_role
               and r.rolname not like 'chat\_rollout\_%'
        ) then
            raise notice 'role % is kept: it is granted to other roles', v_role;
            continue;
        end if;
        begin
            execute format('drop role if exists %I', v_role);
        exception when dependent_objects_still_exist or insufficient_privilege then
            raise notice 'role % is kept: %', v_role, sqlerrm;
        end;
    end loop;
end
$roles$;
