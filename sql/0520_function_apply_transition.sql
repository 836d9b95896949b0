-- Writes one accepted state change: the state row, its history row, a durable commit and a NOTIFY whose payload
-- carries the new head hash (an anchor for listeners). The caller holds the state lock and has checked every guard.
create or replace function chat_v11.apply_transition(
    p_action text,
    p_to_stage text,
    p_to_kill_switch boolean,
    p_promotion_frozen boolean,
    p_reason text,
    p_note text,
    p_gate_snapshot jsonb,
    p_actor text
)
returns chat_v11.rollout_state
language plpgsql
volatile
as $$
declare
    v_old chat_v11.rollout_state;
    v_new chat_v11.rollout_state;
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_hash text;
begin
    -- durable even where the database default is off; lasts until this transaction ends
    perform pg_catalog.set_config('synchronous_commit', 'on', true);

    select s.* into strict v_old from chat_v11.rollout_state as s;
    update chat_v11.rollout_state as s
       set stage = p_to_stage,
           kill_switch = p_to_kill_switch,
           promotion_frozen = p_promotion_frozen,
           reason = p_reason,
           changed_by = session_user,
           actor = coalesce(p_actor, chat_v11.claimed_actor()),
           changed_at = v_now,
           version = s.version + 1
    returning s.* into strict v_new;

    insert into chat_v11.rollout_history (
        version, changed_at, changed_by, actor, action,
        from_stage, to_stage, from_kill_switch, to_kill_switch, promotion_frozen,
        reason, note, gate_snapshot, incident_id
    ) values (
        v_new.version, v_now, v_new.changed_by, v_new.actor, p_action,
        v_old.stage, v_new.stage, v_old.kill_switch, v_new.kill_switch, v_new.promotion_frozen,
        p_reason, p_note, p_gate_snapshot, chat_v11.open_incident_at('infinity')
    )
    returning hash into strict v_hash;

    perform pg_catalog.pg_notify('chat_v11_rollout', pg_catalog.json_build_object(
        'version', v_new.version,
        'action', p_action,
        'stage', v_new.stage,
        'traffic_percent', (select t.traffic_percent from chat_v11.stage as t where t.stage = v_new.stage),
        'kill_switch', v_new.kill_switch,
        'promotion_frozen', v_new.promotion_frozen,
        'changed_at', pg_catalog.to_char(v_now at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
        'changed_by', v_new.changed_by,
        'actor', v_new.actor,
        'hash', v_hash
    )::text);
    return v_new;
end
$$;

revoke all on function chat_v11.apply_transition(text, text, boolean, boolean, text, text, jsonb, text) from public;
comment on function chat_v11.apply_transition(text, text, boolean, boolean, text, text, jsonb, text) is
'Writes an accepted state change (state row + history row + NOTIFY chat_v11_rollout with the head version and hash), '
'committed durably.';
