-- The value of an interval policy (p0_exit_window, state_lock_timeout, retention).
-- PL/pgSQL, not SQL: a SQL function that cannot be inlined is planned again at every call from a PL/pgSQL
-- statement; this one keeps its plan for the session (it is on every state call's path: the lock budget).
create or replace function chat_v11.policy_interval(p_key text)
returns interval
language plpgsql
stable
as $$
begin
    return (select (p.value #>> '{}')::interval from chat_v11.policy as p where p.key = p_key);
end
$$;

revoke all on function chat_v11.policy_interval(text) from public;
comment on function chat_v11.policy_interval(text) is
'The interval value of a rollout policy, or null when the key is unknown.';
