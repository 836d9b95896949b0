-- Bounds this transaction's lock waits by the state_lock_timeout policy, then locks the state row.
-- On timeout raises RO010 naming the blocking backends: a state call never hangs.
-- Call it first: a caller that declares a chat_v11.rollout_state variable already waited for the
-- table's rowtype (an AccessShareLock taken at block entry) with no bound. The caller restores lock_timeout.
create or replace function chat_v11.lock_state()
returns chat_v11.rollout_state
language plpgsql
volatile
as $$
declare
    v_state record;
    v_timeout interval := coalesce(chat_v11.policy_interval('state_lock_timeout'), interval '2 seconds');
begin
    perform chat_v11.begin_write('a rollout state change');
    perform pg_catalog.set_config(
        'lock_timeout', (ceil(extract(epoch from v_timeout) * 1000))::bigint::text, true
    );
    begin
        select s.* into strict v_state from chat_v11.rollout_state as s for update;
    exception when lock_not_available then
        perform chat_v11.raise_state_locked(v_timeout);
    end;
    return v_state;
end
$$;

revoke all on function chat_v11.lock_state() from public;
comment on function chat_v11.lock_state() is
'Bounds lock waits by state_lock_timeout and locks the rollout state row, or raises RO010 naming the blocker.';
