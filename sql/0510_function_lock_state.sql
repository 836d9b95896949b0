-- Starts (or keeps) the statement's lock budget (state_lock_timeout), then locks the state row within it.
-- On timeout raises RO010 naming the blocking backends: a state call never hangs. lock_timeout stays bounded
-- by the budget's deadline for the rest of the caller's statement.
-- Call it first: a caller that declares a chat_v11.rollout_state variable already waited for the
-- table's rowtype (an AccessShareLock taken at block entry) with no bound. The caller restores lock_timeout.
create or replace function chat_v11.lock_state()
returns chat_v11.rollout_state
language plpgsql
volatile
as $$
declare
    v_state record;
    v_timeout interval;
begin
    perform chat_v11.begin_write('a rollout state change');
    v_timeout := chat_v11.start_lock_budget();
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
'Locks the rollout state row within the statement''s lock budget (state_lock_timeout), or raises RO010 naming '
'the blocker.';
