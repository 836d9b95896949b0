-- Declares an incident (playbook section 4, step 1): P0/P1 freeze promotion at once, P0 engages the kill switch.
-- One incident at a time: while one is not closed, a declaration joins it (timeline, severity raised, NOTICE).
create or replace function public.chat_open_v11_incident(p_severity text, p_summary text)
returns table (
    incident_id bigint,
    severity text,
    status text,
    summary text,
    opened_at timestamptz,
    opened_by text,
    rollout_version bigint
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_summary text := chat_v11.checked_reason(p_summary);
    v_incident chat_v11.incident;
    v_version bigint;
    v_raised boolean;
    v_reopen boolean;
    v_notice text;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
    perform chat_v11.begin_write('chat_open_v11_incident');
    perform chat_v11.checked_severity(p_severity);
    -- lock order: the state row, then incident rows. Every declaration (P2 too) and the guardrail take the
    -- state row first, so racing declarations and guardrail runs decide one after the other: one incident.
    perform chat_v11.lock_state();

    -- ONE AT A TIME: the incident not closed yet (resolved included: it waits for its close), active first
    select i.* into v_incident
      from chat_v11.incident as i
     where i.status <> 'closed'
     order by i.status = 'resolved', i.severity, i.opened_at, i.incident_id
     limit 1
       for update;
    if v_incident.incident_id is null then
        insert into chat_v11.incident (severity, summary, opened_actor)
        values (p_severity, v_summary, chat_v11.claimed_actor())
        returning * into v_incident;
        perform chat_v11.incident_log(v_incident.incident_id, 'opened',
                                      format('%s incident declared: %s', p_severity, v_summary), null);
        v_version := chat_v11.incident_rollout_effect(
            p_severity,
            pg_catalog.left(format('incident %s %s: %s', v_incident.incident_id, p_severity, v_summary), 500),
            null
        );
        perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
        return query select v_incident.incident_id, v_incident.severity, v_incident.status, v_incident.summary,
                            v_incident.opened_at, v_incident.opened_by, v_version;
        return;
    end if;

    -- JOIN: the declaration goes to the open incident's timeline; a higher severity raises it (with its
    -- effect); a P0/P1 declaration reopens a resolved incident (the gates and the freeze see it active again)
    v_raised := p_severity < v_incident.severity;  -- 'P0' < 'P1' < 'P2'
    v_reopen := v_incident.status = 'resolved' and p_severity in ('P0', 'P1');
    v_notice := format(
        'incident %s is already open (%s%s, opened by %s at %s UTC): this declaration joined it',
        v_incident.incident_id, v_incident.severity,
        case when v_incident.status <> 'open' then ', ' || v_incident.status end,
        coalesce(v_incident.opened_actor, v_incident.opened_by),
        pg_catalog.to_char(v_incident.opened_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS')
    ) || case when v_raised then format(', severity %s -> %s', v_incident.severity, p_severity) else '' end
      || case when v_reopen then ', status resolved -> open' else '' end;
    perform chat_v11.incident_log(
        v_incident.incident_id, 'fact',
        format('%s declaration joined this incident (one incident at a time): %s', p_severity, v_summary),
        jsonb_build_object('declaration', jsonb_build_object(
            'severity', p_severity, 'summary', v_summary, 'incident_severity', v_incident.severity,
            'incident_status', v_incident.status
        ))
    );
    if v_reopen then
        update chat_v11.incident as i set status = 'open', resolved_at = null
         where i.incident_id = v_incident.incident_id;
        perform chat_v11.incident_log(
            v_incident.incident_id, 'status',
            pg_catalog.left(format('status resolved -> open: a %s declaration joined it: %s', p_severity,
                                   v_summary), 2000),
            jsonb_build_object('from', 'resolved', 'to', 'open')
        );
    end if;
    if v_raised then
        v_version := chat_v11.set_incident_severity(
            v_incident, p_severity, format('a %s declaration joined it: %s', p_severity, v_summary), null, null
        );
    else
        -- the declaration's own effect: a P0 declaration engages the kill switch even if a resume turned it off
        v_version := chat_v11.incident_rollout_effect(
            p_severity,
            pg_catalog.left(format('incident %s %s (declaration joined): %s', v_incident.incident_id, p_severity,
                                   v_summary), 500),
            null
        );
    end if;
    select i.* into v_incident from chat_v11.incident as i where i.incident_id = v_incident.incident_id;
    raise notice '%', v_notice;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return query select v_incident.incident_id, v_incident.severity, v_incident.status, v_incident.summary,
                        v_incident.opened_at, v_incident.opened_by, v_version;
end
$$;

revoke all on function public.chat_open_v11_incident(text, text) from public;
grant execute on function public.chat_open_v11_incident(text, text) to chat_rollout_operator;
comment on function public.chat_open_v11_incident(text, text) is
'Declare an incident (P0, P1 or P2) with a summary. P0 and P1 freeze promotion at once; P0 also engages the '
'kill switch unless it is on (playbook section 4). One incident at a time: while one is not closed, the '
'declaration joins it (timeline entry, severity raised if higher, a resolved one reopened by P0/P1, NOTICE) and '
'that incident is returned. Returns the incident and the rollout version it wrote.';
