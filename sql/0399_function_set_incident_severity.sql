-- Sets an incident's severity, records it (kind severity, or escalation when raised) and applies the
-- new severity's effect on the rollout. Returns the rollout version written, or null.
create or replace function chat_v11.set_incident_severity(
    p_incident chat_v11.incident, p_severity text, p_reason text, p_evidence jsonb, p_actor text
)
returns bigint
language plpgsql
volatile
as $$
declare
    v_raised boolean := p_severity < p_incident.severity;  -- 'P0' < 'P1' < 'P2'
begin
    update chat_v11.incident as i set severity = p_severity where i.incident_id = p_incident.incident_id;
    perform chat_v11.incident_log(
        p_incident.incident_id,
        case when v_raised then 'escalation' else 'severity' end,
        format('severity %s -> %s: %s', p_incident.severity, p_severity, p_reason),
        coalesce(p_evidence, '{}'::jsonb) || jsonb_build_object('from', p_incident.severity, 'to', p_severity)
    );
    if not v_raised then
        return null;
    end if;
    return chat_v11.incident_rollout_effect(
        p_severity,
        pg_catalog.left(format('incident %s escalated to %s: %s', p_incident.incident_id, p_severity, p_reason), 500),
        p_actor
    );
end
$$;

revoke all on function chat_v11.set_incident_severity(chat_v11.incident, text, text, jsonb, text) from public;
comment on function chat_v11.set_incident_severity(chat_v11.incident, text, text, jsonb, text) is
'Sets an incident''s severity, logs it (escalation when raised) and applies the rollout effect of a raise.';
