-- Raises RO010 for a state call that waited its lock budget (state_lock_timeout) in vain, naming the blockers.
create or replace function chat_v11.raise_state_locked(p_timeout interval)
returns void
language plpgsql
volatile
as $$
declare
    v_lockers text := chat_v11.state_lockers();
begin
    raise exception using
        errcode = 'RO010',
        message = format('the rollout state is locked by another session: gave up after %s', p_timeout),
        detail = format('Blocked by %s.', coalesce(v_lockers, 'a backend that released the lock meanwhile')),
        hint = 'Retry the call. A queued DDL that waits: cancel it with SELECT pg_cancel_backend(<pid>). '
            || 'A stuck session (idle in transaction): end it with SELECT pg_terminate_backend(<pid>). '
            || 'pg_stat_activity shows what each pid runs to whoever may see it.';
end
$$;

revoke all on function chat_v11.raise_state_locked(interval) from public;
comment on function chat_v11.raise_state_locked(interval) is
'Raises RO010 (the rollout state is locked by another session) naming the blocking backends and their locks.';
