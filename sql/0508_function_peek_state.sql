-- The state as a call sees it before it waits for the state row (stage, kill switch, version), read within the
-- statement's lock budget (state_lock_timeout): behind an ACCESS EXCLUSIVE holder it fails with RO010, never hangs.
create or replace function chat_v11.peek_state()
returns table (stage text, kill_switch boolean, version bigint)
language plpgsql
volatile
as $$
#variable_conflict use_column
declare
    v_timeout interval;
begin
    v_timeout := chat_v11.start_lock_budget();
    begin
        return query select s.stage, s.kill_switch, s.version from chat_v11.rollout_state as s;
    exception when lock_not_available then
        perform chat_v11.raise_state_locked(v_timeout);
    end;
end
$$;

revoke all on function chat_v11.peek_state() from public;
comment on function chat_v11.peek_state() is
'Stage, kill switch and version before a state call waits for the row, read within state_lock_timeout (RO010).';
