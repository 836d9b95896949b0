-- The value of an interval policy (p0_exit_window, state_lock_timeout, retention).
create or replace function chat_v11.policy_interval(p_key text)
returns interval
language sql
stable
as $$
    select (p.value #>> '{}')::interval from chat_v11.policy as p where p.key = p_key
$$;

revoke all on function chat_v11.policy_interval(text) from public;
comment on function chat_v11.policy_interval(text) is
'The interval value of a rollout policy, or null when the key is unknown.';
