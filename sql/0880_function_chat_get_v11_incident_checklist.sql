-- The playbook's on-call checklist (section 11) for one incident, item by item, from facts in the database,
-- plus the IC's 10-minute decision cadence.
create or replace function public.chat_get_v11_incident_checklist(p_incident_id bigint)
returns table (item integer, title text, status text, evidence text)
language plpgsql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_i chat_v11.incident;
    v_active boolean;
    v_entry record;
    v_row record;
    v_kill record;
    v_failures text[];
    v_problems text[];
    v_at_open record;
begin
    v_i := chat_v11.get_incident(p_incident_id);
    v_active := v_i.status in ('open', 'mitigated');
    select s.* into v_at_open from chat_v11.state_at(v_i.opened_at) as s;

    -- 1. Severity assigned
    item := 1; title := 'Severity assigned'; status := 'done';
    evidence := format('%s, declared %s UTC by %s', v_i.severity,
                       to_char(v_i.opened_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), v_i.opened_by);
    return next;

    -- 2. SQL snapshot taken
    select e.* into v_entry from chat_v11.incident_entry as e
     where e.incident_id = p_incident_id and e.kind = 'snapshot' order by e.entry_id limit 1;
    item := 2; title := 'SQL snapshot taken';
    status := case when v_entry.entry_id is null then 'not done' else 'done' end;
    evidence := case when v_entry.entry_id is null then 'no snapshot: call chat_snapshot_v11_incident(id)'
                     else format('snapshot at %s UTC by %s', to_char(v_entry.at at time zone 'UTC', 'HH24:MI:SS'),
                                 v_entry.recorded_by) end;
    return next;

    -- 3. Rollout freeze on
    select h.* into v_row from chat_v11.rollout_history as h
     where h.changed_at >= v_i.opened_at and h.promotion_frozen order by h.version limit 1;
    item := 3; title := 'Rollout freeze on';
    if v_i.severity = 'P2' then
        status := 'n/a'; evidence := 'P2: no freeze required';
    elsif coalesce(v_at_open.promotion_frozen, false) then
        status := 'done'; evidence := format('already frozen when declared (version %s)', v_at_open.version);
    elsif v_row.version is not null then
        status := 'done';
        evidence := format('%s at version %s, %s UTC', v_row.action, v_row.version,
                           to_char(v_row.changed_at at time zone 'UTC', 'HH24:MI:SS'));
    else
        status := 'not done'; evidence := 'promotion is not frozen';
    end if;
    return next;

    -- 4. Kill switch on for P0
    select h.* into v_kill from chat_v11.rollout_history as h
     where h.changed_at >= v_i.opened_at and h.to_kill_switch and not coalesce(h.from_kill_switch, false)
     order by h.version limit 1;
    item := 4; title := 'Kill switch on for P0';
    if v_i.severity <> 'P0' then
        status := 'n/a'; evidence := format('%s: no kill switch required', v_i.severity);
    elsif coalesce(v_at_open.kill_switch, false) then
        status := 'done'; evidence := format('already on when declared (version %s)', v_at_open.version);
    elsif v_kill.version is not null then
        status := 'done';
        evidence := format('%s at version %s, %s UTC', v_kill.action, v_kill.version,
                           to_char(v_kill.changed_at at time zone 'UTC', 'HH24:MI:SS'));
    else
        status := 'not done'; evidence := 'the kill switch has not been engaged';
    end if;
    return next;

    -- 5. Client fallback confirmed
    select e.* into v_entry from chat_v11.incident_entry as e
     where e.incident_id = p_incident_id and e.kind = 'fallback_confirmed' order by e.entry_id limit 1;
    item := 5; title := 'Client fallback confirmed';
    if v_i.severity <> 'P0' then
        status := 'n/a'; evidence := format('%s: the P0 runbook''s client fallback does not apply', v_i.severity);
    elsif v_entry.entry_id is null then
        status := 'not done'; evidence := 'no fallback_confirmed entry in the timeline';
    else
        status := 'done'; evidence := format('%s (%s UTC, %s)', v_entry.body,
                                             to_char(v_entry.at at time zone 'UTC', 'HH24:MI:SS'), v_entry.recorded_by);
    end if;
    return next;

    -- 6. Root cause localized by layer
    select e.* into v_entry from chat_v11.incident_entry as e
     where e.incident_id = p_incident_id and e.kind = 'root_cause' order by e.entry_id desc limit 1;
    item := 6; title := 'Root cause localized by layer';
    status := case when v_entry.entry_id is null then 'not done' else 'done' end;
    evidence := coalesce(v_entry.body, 'no root_cause entry (''layer: cause'') in the timeline');
    return next;

    -- 7. Exit criteria met
    item := 7; title := 'Exit criteria met';
    if v_i.severity = 'P2' then
        status := 'n/a'; evidence := 'P2: no exit criteria from the gates';
    elsif v_i.status = 'closed' then
        status := 'done';
        evidence := format('held when resolved at %s UTC; closed at %s UTC',
                           to_char(v_i.resolved_at at time zone 'UTC', 'HH24:MI:SS'),
                           to_char(v_i.closed_at at time zone 'UTC', 'HH24:MI:SS'));
    elsif v_i.status = 'resolved' then
        -- checked again now, as the close does (a relapse after resolved blocks the close, RO037)
        v_failures := chat_v11.incident_exit_failures(v_i.severity, pg_catalog.now());
        status := case when cardinality(v_failures) = 0 then 'done' else 'not done' end;
        evidence := format('held when resolved at %s UTC; ',
                           to_char(v_i.resolved_at at time zone 'UTC', 'HH24:MI:SS'))
            || case when cardinality(v_failures) = 0 then 'they hold now'
                    else 'fail now (relapse, the close is refused): ' || array_to_string(v_failures, '; ') end;
    else
        v_failures := chat_v11.incident_exit_failures(v_i.severity, pg_catalog.now());
        status := case when cardinality(v_failures) = 0 then 'done' else 'not done' end;
        evidence := case when cardinality(v_failures) = 0 then 'they hold now'
                         else array_to_string(v_failures, '; ') end;
    end if;
    return next;

    -- 8. Rollout resume only through the gate
    item := 8; title := 'Rollout resume only through the gate';
    if v_kill.version is null and not coalesce(v_at_open.kill_switch, false) then
        status := 'n/a'; evidence := 'the kill switch was not engaged';
    else
        select h.* into v_row from chat_v11.rollout_history as h
         where h.changed_at >= v_i.opened_at and h.action = 'resume' order by h.version desc limit 1;
        if v_row.version is null then
            status := 'not done'; evidence := 'the kill switch is still on: resume through the P0 exit criteria';
        else
            status := 'done';
            evidence := format('resume at version %s, %s UTC, through the P0 exit criteria', v_row.version,
                               to_char(v_row.changed_at at time zone 'UTC', 'HH24:MI:SS'));
        end if;
    end if;
    return next;

    -- 9. Postmortem created
    item := 9; title := 'Postmortem created';
    status := case when v_i.postmortem is null then 'not done' else 'done' end;
    evidence := case when v_i.postmortem is null then 'no postmortem: chat_put_v11_postmortem(id, ...)'
                     else 'stored' end;
    return next;

    -- 10. Action items assigned
    item := 10; title := 'Action items assigned';
    v_problems := case when v_i.postmortem is null then array['no postmortem yet']
                       else chat_v11.postmortem_problems(v_i.postmortem) end;
    status := case when cardinality(v_problems) = 0 then 'done' else 'not done' end;
    evidence := case when cardinality(v_problems) = 0
                     then format('%s action items, each with an owner and a deadline',
                                 jsonb_array_length(v_i.postmortem -> 'action_items'))
                     else array_to_string(v_problems, '; ') end;
    return next;

    -- 11. The IC decides every 10 minutes
    select e.* into v_entry from chat_v11.incident_entry as e
     where e.incident_id = p_incident_id and e.kind = 'decision' order by e.entry_id desc limit 1;
    item := 11; title := 'IC decision every 10 minutes';
    if not v_active then
        status := 'n/a'; evidence := format('incident %s', v_i.status);
    elsif coalesce(v_entry.at, v_i.opened_at) < pg_catalog.now() - interval '10 minutes' then
        status := 'overdue';
        evidence := format('last decision %s', coalesce(to_char(v_entry.at at time zone 'UTC', 'HH24:MI:SS') || ' UTC',
                                                        'none since the incident was declared'));
    else
        status := 'done';
        evidence := case
            when v_entry.entry_id is null then 'declared less than 10 minutes ago'
            else format('last decision %s UTC: %s', to_char(v_entry.at at time zone 'UTC', 'HH24:MI:SS'), v_entry.body)
        end;
    end if;
    return next;
end
$$;

revoke all on function public.chat_get_v11_incident_checklist(bigint) from public;
grant execute on function public.chat_get_v11_incident_checklist(bigint) to chat_rollout_reader;
comment on function public.chat_get_v11_incident_checklist(bigint) is
'The on-call checklist of playbook section 11 for an incident, from facts in the database: each item done, '
'not done or n/a with its evidence, plus the IC''s 10-minute decision cadence (overdue when missed). Read-only.';
