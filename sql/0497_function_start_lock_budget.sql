-- Starts the lock budget of the current statement: its lock waits end, all together, state_lock_timeout after
-- the first call (a second call in the same statement keeps the first deadline). The policy is read only when its
-- lock comes without a wait: DDL on the policy table never holds a kill up (the default of 2 seconds applies).
create or replace function chat_v11.start_lock_budget()
returns interval
language plpgsql
volatile
as $$
declare
    v_statement text := extract(epoch from pg_catalog.statement_timestamp())::text;
    v_started numeric := extract(epoch from pg_catalog.clock_timestamp());
    v_timeout interval;
begin
    if pg_catalog.current_setting('chat_rollout.lock_statement', true) is not distinct from v_statement then
        v_timeout := pg_catalog.current_setting('chat_rollout.lock_budget')::interval;
    else
        begin
            lock table chat_v11.policy in access share mode nowait;
            v_timeout := chat_v11.policy_interval('state_lock_timeout');
        exception when lock_not_available then
            v_timeout := null;  -- DDL holds or queues for the policy table: the default bound, and no wait at all
        end;
        v_timeout := coalesce(v_timeout, interval '2 seconds');
        perform pg_catalog.set_config('chat_rollout.lock_statement', v_statement, true);
        perform pg_catalog.set_config('chat_rollout.lock_budget', v_timeout::text, true);
        perform pg_catalog.set_config(
            'chat_rollout.lock_deadline', (v_started + extract(epoch from v_timeout))::text, true
        );
    end if;
    perform chat_v11.bound_lock_wait(null);
    return v_timeout;
end
$$;

revoke all on function chat_v11.start_lock_budget() from public;
comment on function chat_v11.start_lock_budget() is
'Starts (once per statement) the lock budget of a state call: every lock wait ends by state_lock_timeout after '
'the start. The policy is read only when its lock comes without a wait, so DDL on it never holds a kill up.';
