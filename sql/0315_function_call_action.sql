-- What a chat_set_v11_rollout_state call means for a given state: kill, resume, hold, rollback, promote,
-- or unknown (a stage that is not in the catalog, without the kill switch).
-- PL/pgSQL, not SQL: it runs while the state row is held (a call that waited compares what it saw with what it
-- got), and a SQL function that cannot be inlined would be planned again at every call.
create or replace function chat_v11.call_action(
    p_stage text, p_kill_switch boolean, p_target_stage text, p_target_kill_switch boolean
)
returns text
language plpgsql
stable
as $$
declare
    v_current integer;
    v_target integer;
begin
    if p_target_kill_switch then
        return 'kill';
    end if;
    select t.ordinal into v_target from chat_v11.stage as t where t.stage = p_target_stage;
    if v_target is null then
        return 'unknown';
    end if;
    if p_kill_switch then
        return 'resume';
    end if;
    select c.ordinal into v_current from chat_v11.stage as c where c.stage = p_stage;
    return case
        when v_target = v_current then 'hold'
        when v_target < v_current then 'rollback'
        else 'promote'
    end;
end
$$;

revoke all on function chat_v11.call_action(text, boolean, text, boolean) from public;
comment on function chat_v11.call_action(text, boolean, text, boolean) is
'The meaning (kill, resume, hold, rollback, promote, unknown) of a state call for a given current state.';
