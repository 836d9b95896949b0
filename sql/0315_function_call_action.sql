-- What a chat_set_v11_rollout_state call means for a given state: kill, resume, hold, rollback, promote,
-- or unknown (a stage that is not in the catalog, without the kill switch).
create or replace function chat_v11.call_action(
    p_stage text, p_kill_switch boolean, p_target_stage text, p_target_kill_switch boolean
)
returns text
language sql
stable
as $$
    select case
        when p_target_kill_switch then 'kill'
        when t.ordinal is null then 'unknown'
        when p_kill_switch then 'resume'
        when t.ordinal = c.ordinal then 'hold'
        when t.ordinal < c.ordinal then 'rollback'
        else 'promote'
    end
      from (select 1) as one
      left join chat_v11.stage as c on c.stage = p_stage
      left join chat_v11.stage as t on t.stage = p_target_stage
$$;

revoke all on function chat_v11.call_action(text, boolean, text, boolean) from public;
comment on function chat_v11.call_action(text, boolean, text, boolean) is
'The meaning (kill, resume, hold, rollback, promote, unknown) of a state call for a given current state.';
