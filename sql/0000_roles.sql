-- The four group roles of chat-rollout (NOLOGIN; DBAs grant them to login roles).
-- Created only when absent: roles are cluster-wide and may already exist.
do $roles$
declare
    v_role text;
begin
    foreach v_role in array array[
        'chat_rollout_reader', 'chat_rollout_operator',
        'chat_rollout_ingest', 'chat_rollout_admin'
    ] loop
        if not exists (select from pg_catalog.pg_roles where rolname = v_role) then
            execute format('create role %I nologin', v_role);
        end if;
    end loop;
    -- operators and admins read everything readers read
    if not pg_catalog.pg_has_role('chat_rollout_operator', 'chat_rollout_reader', 'member') then
        grant chat_rollout_reader to chat_rollout_operator;
    end if;
    if not pg_catalog.pg_has_role('chat_rollout_admin', 'chat_rollout_reader', 'member') then
        grant chat_rollout_reader to chat_rollout_admin;
    end if;
end
$roles$;
