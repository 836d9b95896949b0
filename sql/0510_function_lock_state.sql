-- Starts (or keeps) the statement's lock budget (state_lock_timeout), then locks the state row within it.
-- On timeout raises RO010 naming the blocking backends: a state call never hangs. lock_timeout stays bounded
-- by the budget's deadline for the rest of the caller's statement.
-- Call it first: a caller that declares a chat_v11.rollout_state variable already waited for the
-- table's rowtype (an AccessShareLock taken at block entry) with no bound. The caller restores lock_timeout.
--
-- The row is locked at the CALLER'S LEVEL, not in a subtransaction (revision 0014). A row locked by a subtransaction
-- (the exception block that turns a timeout into RO010) and then updated by its top transaction gets a MultiXactId
-- as xmax at every state change; the old row versions then outlived page pruning, the one-row table grew by a page
-- every few dozen changes under contention and every read of it slowed down (tools/bench, docs/performance.md).
-- So the waiting happens on something else, in a subtransaction (a timeout there is RO010), and the row itself is
-- then taken with SKIP LOCKED, which never waits, at the caller's level:
-- - the state calls' queue: the transaction-level advisory lock (1667785076, 11) ('chat' as an integer, v1.1);
--   every state call takes it here before the row, in order, and keeps it until its transaction ends (a lock
--   taken in a subtransaction that commits stays with the transaction);
-- - the table's own lock, tried without a wait (NOWAIT): DDL or maintenance that holds it makes the call wait in
--   the subtransaction below instead, within the same budget.
-- A row held outside the queue (a session's own SELECT ... FOR UPDATE, a migration) is waited for as before, in a
-- subtransaction (then the xmax is a MultiXactId again). chat_v11.state_lockers names the queue's holder.
create or replace function chat_v11.lock_state()
returns chat_v11.rollout_state
language plpgsql
volatile
as $$
declare
    v_state record;
    v_timeout interval;
    v_table_free boolean;
begin
    perform chat_v11.begin_write('a rollout state change');
    v_timeout := chat_v11.start_lock_budget();
    if not pg_catalog.pg_try_advisory_xact_lock(1667785076, 11) then
        begin
            perform pg_catalog.pg_advisory_xact_lock(1667785076, 11);
        exception when lock_not_available then
            perform chat_v11.raise_state_locked(v_timeout);
        end;
    end if;
    begin
        lock table chat_v11.rollout_state in row share mode nowait;
        v_table_free := true;
    exception when lock_not_available then
        v_table_free := false;
    end;
    if v_table_free then
        select s.* into v_state from chat_v11.rollout_state as s for update skip locked;
        if found then
            return v_state;
        end if;
    end if;
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
'the blocker: state calls queue on the advisory lock (1667785076, 11), then take the row at the caller''s level.';
