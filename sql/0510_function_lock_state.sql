-- Locks the rollout state row for this transaction, waiting at most the state_lock_timeout policy.
-- On timeout raises RO010 naming the blocking backends: a state call never hangs.
create function chat_v11.lock_state()
returns chat_v11.rollout_state
language plpgsql
volatile
as $$
declare
    v_state chat_v11.rollout_state;
    v_timeout interval := coalesce(chat_v11.policy_interval('state_lock_timeout'), interval '2 seconds');
    v_saved text := pg_catalog.current_setting('lock_timeout');
    v_lockers text;
begin
    perform pg_catalog.set_config(
        'lock_timeout', (ceil(extract(epoch from v_timeout) * 1000))::bigint::text, true
    );
    begin
        select s.* into strict v_state from chat_v11.rollout_state as s for update;
    exception when lock_not_available then
        v_lockers := chat_v11.state_lockers();
        raise exception using
            errcode = 'RO010',
            message = format('the rollout state is locked by another session: gave up after %s', v_timeout),
            detail = format('Blocked by %s.',
                            coalesce(v_lockers, 'a backend that released the lock meanwhile')),
            hint = 'Retry the call. If the blocker is stuck (idle in transaction), end it with '
                || 'SELECT pg_terminate_backend(<pid>) and retry.';
    end;
    perform pg_catalog.set_config('lock_timeout', v_saved, true);
    return v_state;
end
$$;

revoke all on function chat_v11.lock_state() from public;
comment on function chat_v11.lock_state() is
'Locks the rollout state row within state_lock_timeout or raises RO010 naming the blocking backend.';
