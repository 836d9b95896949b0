-- Lifts the promotion freeze, only through the gate (kill switch off, gates green, no open incident).
create or replace function public.chat_lift_v11_freeze(p_reason text)
returns table (
    stage text,
    traffic_percent numeric,
    kill_switch boolean,
    promotion_frozen boolean,
    reason text,
    changed_by text,
    actor text,
    changed_at timestamptz,
    version bigint
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_reason text := chat_v11.checked_reason(p_reason);
    -- record, not chat_v11.rollout_state: a rowtype variable would wait for the table unbounded
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
    v_state record;
    v_gates record;
    v_new record;
begin
    perform chat_v11.begin_write('chat_lift_v11_freeze');
    -- LOCKS: one budget of state_lock_timeout for every wait; running out is RO010 naming the blockers
    begin
        v_state := chat_v11.lock_state();
        select g.* into v_gates from chat_v11.current_gates(pg_catalog.clock_timestamp()) as g;
        -- GUARD: unfreeze only through the gate
        if v_state.kill_switch then
            raise exception using
                errcode = 'RO009',
                message = 'unfreeze refused: the kill switch is on',
                detail = format('Kill switch engaged at stage %s; reason: %s', v_state.stage, v_state.reason),
                hint = 'Resume first with chat_set_v11_rollout_state(stage, false, reason) once the P0 exit criteria hold.';
        end if;
        if pg_catalog.cardinality(v_gates.go_no_go_blockers) > 0 then
            raise exception using
                errcode = 'RO009',
                message = 'unfreeze refused: the gates are not green',
                detail = array_to_string(v_gates.go_no_go_blockers, '; '),
                hint = 'Lift the freeze only with gate_p0_ok, gate_p1_ok, PROCEED and no open P0/P1 incident; '
                    || 'see chat_get_v11_release_gates().';
        end if;
        lock table chat_v11.rollout_history in row exclusive mode;
    exception when lock_not_available then
        perform chat_v11.raise_state_locked(pg_catalog.current_setting('chat_rollout.lock_budget', true)::interval);
    end;
    -- the write outside the block: the state row's new version belongs to the top transaction (state_lockers)
    v_new := chat_v11.apply_transition(
        'unfreeze', v_state.stage, false, false, v_reason, null, v_gates.snapshot, null
    );
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return query
        select v_new.stage, t.traffic_percent, v_new.kill_switch, v_new.promotion_frozen, v_new.reason,
               v_new.changed_by, v_new.actor, v_new.changed_at, v_new.version
          from chat_v11.stage as t
         where t.stage = v_new.stage;
end
$$;

revoke all on function public.chat_lift_v11_freeze(text) from public;
grant execute on function public.chat_lift_v11_freeze(text) to chat_rollout_operator;
comment on function public.chat_lift_v11_freeze(text) is
'Lift the promotion freeze: only with the kill switch off, gate_p0_ok, gate_p1_ok, PROCEED and no open '
'P0/P1 incident (refused with RO009 otherwise). Returns the new state.';
