-- The state as a call sees it before it waits for the state row (stage, kill switch, version), read under
-- the state_lock_timeout bound: behind an ACCESS EXCLUSIVE holder it fails fast with RO010, never hangs.
create or replace function chat_v11.peek_state()
returns table (stage text, kill_switch boolean, version bigint)
language plpgsql
volatile
as $$
#variable_conflict use_column
declare
    v_timeout interval := coalesce(chat_v11.policy_interval('state_lock_timeout'), interval '2 seconds');
begin
    perform pg_catalog.set_config(
        'lock_timeout', (ceil(extract(epoch from v_timeout) * 1000))::bigint::text, true
    );
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
