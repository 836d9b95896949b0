-- Locks an incident for a change, or raises RO030 (unknown) / RO036 (closed: nothing changes any more).
create or replace function chat_v11.incident_for_change(p_incident_id bigint)
returns chat_v11.incident
language plpgsql
volatile
as $$
declare
    v_incident chat_v11.incident;
begin
    perform chat_v11.get_incident(p_incident_id);  -- RO030 when unknown
    select i.* into v_incident from chat_v11.incident as i where i.incident_id = p_incident_id for update;
    if v_incident.status = 'closed' then
        raise exception using
            errcode = 'RO036',
            message = format('incident %s is closed', p_incident_id),
            detail = format('Closed at %s UTC; a closed incident does not change.',
                            pg_catalog.to_char(v_incident.closed_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS')),
            hint = 'Open a new incident for a new problem.';
    end if;
    return v_incident;
end
$$;

revoke all on function chat_v11.incident_for_change(bigint) from public;
comment on function chat_v11.incident_for_change(bigint) is
'Locks an incident for a change; RO030 when unknown, RO036 when closed.';
