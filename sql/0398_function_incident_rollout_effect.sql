-- What an incident's severity does to the rollout (playbook section 4): P0 and P1 freeze promotion, P0
-- engages the kill switch unless it is on. Returns the new state version, or null when nothing changed.
create or replace function chat_v11.incident_rollout_effect(p_severity text, p_reason text, p_actor text)
returns bigint
language plpgsql
volatile
as $$
declare
    v_state record;
    v_gates record;
    v_new record;
    v_version bigint;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
    if p_severity not in ('P0', 'P1') then
        return null;
    end if;
    v_state := chat_v11.lock_state();
    select g.* into v_gates from chat_v11.current_gates(pg_catalog.clock_timestamp()) as g;
    if p_severity = 'P0' and not v_state.kill_switch then
        v_new := chat_v11.apply_transition('kill', v_state.stage, true, true, p_reason, null, v_gates.snapshot, p_actor);
        v_version := v_new.version;
    elsif not v_state.promotion_frozen then
        v_new := chat_v11.apply_transition(
            'hold', v_state.stage, v_state.kill_switch, true, p_reason, null, v_gates.snapshot, p_actor
        );
        v_version := v_new.version;
    end if;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return v_version;
end
$$;

revoke all on function chat_v11.incident_rollout_effect(text, text, text) from public;
comment on function chat_v11.incident_rollout_effect(text, text, text) is
'Freezes promotion for a P0/P1 incident and engages the kill switch for a P0 unless on; the new version or null.';
