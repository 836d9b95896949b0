-- The P0 guardrail. When a P0 check fails at p_at: an active P1/P2 incident escalates to P0 (playbook
-- section 7) with the evidence; with the auto_kill policy on and the kill switch off, the kill switch is
-- engaged (action auto_kill, actor guardrail) under a P0 incident, opened if none is active. All in the
-- caller's transaction. Returns the new state version, or null when the rollout was not changed.
create or replace function chat_v11.auto_kill(p_at timestamptz, p_source text)
returns bigint
language plpgsql
volatile
as $$
declare
    v_state record;
    v_failing text[];
    v_evidence jsonb;
    v_incident chat_v11.incident;
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
    v_auto := coalesce((select (p.value #>> '{}')::boolean from chat_v11.policy as p where p.key = 'auto_kill'), true);
    -- the state lock first: racing writers and guardrail runs decide one after the other (one incident)
    v_state := chat_v11.lock_state();

    -- INCIDENT: escalate the active incident to P0, or declare one for the automatic kill
    select i.* into v_incident
      from chat_v11.incident as i
     where i.status in ('open', 'mitigated')
     order by i.severity, i.opened_at
     limit 1
       for update;
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
    select g.* into v_gates from chat_v11.current_gates(p_at) as g;
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
