-- The P0 guardrail. When a P0 check fails at p_at: the incident not closed yet (reopened if it was resolved: a
-- relapse) escalates to P0 (playbook section 7) with the evidence; with the auto_kill policy on and the kill switch
-- off, the kill switch is engaged (action auto_kill, actor guardrail) under a P0 incident, opened if none is
-- active. All in the caller's transaction. Returns the new state version, or null when the rollout was not changed.
create or replace function chat_v11.auto_kill(p_at timestamptz, p_source text)
returns bigint
language plpgsql
volatile
as $$
declare
    v_state record;
    v_failing text[];
    v_evidence jsonb;
    v_incident record;  -- not chat_v11.incident: a rowtype variable would wait for the table unbounded
    v_reopened boolean;
    v_auto boolean;
    v_gates record;
    v_reason text;
    v_new record;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
    select array_agg(format('%s = %s (%s)', c.metric, coalesce(c.value::text, 'n/a'), c.explanation)
                     order by c.metric),
           jsonb_agg(jsonb_build_object('metric', c.metric, 'value', c.value, 'volume', c.volume,
                                        'explanation', c.explanation) order by c.metric)
      into v_failing, v_evidence
      from chat_v11.evaluate_checks(p_at, 'off', false) as c
     where c.severity = 'P0' and c.status = 'fail';
    if v_failing is null then
        return null;
    end if;
    v_reason := pg_catalog.left(format('auto_kill by the P0 guardrail (%s, evidence at %s UTC): %s',
                                       p_source, pg_catalog.to_char(p_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                                       array_to_string(v_failing, '; ')), 500);
    -- LOCKS: one budget of state_lock_timeout for every wait; running out is RO010 naming the blockers. The writes
    -- come after the block, in the top transaction (a call waiting behind the state row can then name us).
    begin
        -- the state lock first: racing writers and guardrail runs decide one after the other (one incident)
        v_state := chat_v11.lock_state();
        v_auto := coalesce(
            (select (p.value #>> '{}')::boolean from chat_v11.policy as p where p.key = 'auto_kill'), true
        );
        -- one incident at a time: the one not closed yet (a resolved one included), active first
        select i.* into v_incident
          from chat_v11.incident as i
         where i.status <> 'closed'
         order by i.status = 'resolved', i.severity, i.opened_at, i.incident_id
         limit 1
           for update;
        lock table chat_v11.incident, chat_v11.incident_entry in row exclusive mode;
        lock table chat_v11.rollout_history in row exclusive mode;
        if v_auto and not v_state.kill_switch then
            select g.* into v_gates from chat_v11.current_gates(p_at) as g;
        end if;
    exception when lock_not_available then
        perform chat_v11.raise_state_locked(pg_catalog.current_setting('chat_rollout.lock_budget', true)::interval);
    end;

    -- INCIDENT: a relapse reopens a resolved incident; escalate it to P0, or declare one for the automatic kill
    v_reopened := v_incident.incident_id is not null and v_incident.status = 'resolved';
    if v_reopened then
        update chat_v11.incident as i set status = 'open', resolved_at = null
         where i.incident_id = v_incident.incident_id;
        perform chat_v11.incident_log(
            v_incident.incident_id, 'status',
            pg_catalog.left(format('status resolved -> open by the guardrail: a P0 relapse: %s',
                                   array_to_string(v_failing, '; ')), 2000),
            jsonb_build_object('from', 'resolved', 'to', 'open', 'evidence', v_evidence, 'at', p_at)
        );
    end if;
    if v_incident.incident_id is not null and v_incident.severity <> 'P0' then
        update chat_v11.incident as i set severity = 'P0' where i.incident_id = v_incident.incident_id;
        perform chat_v11.incident_log(
            v_incident.incident_id, 'escalation',
            pg_catalog.left(format('severity %s -> P0 by the guardrail (playbook section 7): %s', v_incident.severity,
                                   array_to_string(v_failing, '; ')), 2000),
            jsonb_build_object('from', v_incident.severity, 'to', 'P0', 'evidence', v_evidence, 'at', p_at)
        );
    elsif v_incident.incident_id is null and v_auto and not v_state.kill_switch then
        insert into chat_v11.incident (severity, summary, opened_actor)
        values ('P0', pg_catalog.left('automatic kill: ' || array_to_string(v_failing, '; '), 500), 'guardrail')
        returning * into v_incident;
        perform chat_v11.incident_log(v_incident.incident_id, 'opened',
                                      'P0 incident declared by the guardrail: ' || v_reason,
                                      jsonb_build_object('evidence', v_evidence, 'at', p_at));
    end if;

    -- ROLLOUT: the automatic kill (not when an operator got there first)
    if not v_auto or v_state.kill_switch then
        perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
        return null;
    end if;
    v_new := chat_v11.apply_transition(
        'auto_kill', v_state.stage, true, true, v_reason, null, v_gates.snapshot, 'guardrail'
    );
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    raise warning 'chat-rollout: %', v_reason;
    return v_new.version;
end
$$;

revoke all on function chat_v11.auto_kill(timestamptz, text) from public;
comment on function chat_v11.auto_kill(timestamptz, text) is
'P0 guardrail: on a failing P0 check, escalates the active incident to P0 and, with auto_kill on, engages the '
'kill switch (auto_kill, actor guardrail) under a P0 incident; returns the new state version or null.';
