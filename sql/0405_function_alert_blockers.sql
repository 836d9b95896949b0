-- The Go/No-Go blockers of active alerts at p_at (SPEC 7, "Active alerts"; playbook section 9: no active P0/P1
-- alerts). Read from the latest Alertmanager read only, and only when it was made at or before p_at (an earlier
-- p_at has no read to go by). Every active P0/P1 alert of that read blocks, whatever the policy: an alert we know of
-- is never ignored; a silence mutes the page, not the evidence, so a silenced P0 still blocks and a silenced P1
-- does not. With the policy alert_source required, an unreachable Alertmanager, a read older than max_age and no
-- read at all block too (fail closed). The policy is read as it is now.
create or replace function chat_v11.alert_blockers(p_at timestamptz)
returns text[]
language plpgsql
stable
as $$
declare
    v_policy jsonb;
    v_required boolean;
    v_max_age interval;
    v_source chat_v11.alert_source;
    v_blockers text[] := '{}'::text[];
begin
    select p.value into v_policy from chat_v11.alert_policy as p where p.key = 'alert_source';
    v_required := coalesce((v_policy ->> 'required')::boolean, false);
    v_max_age := coalesce((v_policy ->> 'max_age')::interval, interval '2 minutes');
    select s.* into v_source from chat_v11.alert_source as s where s.checked_at <= p_at;

    if v_required then
        if v_source.checked_at is null then
            v_blockers := v_blockers || case
                when exists (select from chat_v11.alert_source)
                    then format('alert source stale: no Alertmanager read at or before %s UTC (max_age %s)',
                                pg_catalog.to_char(p_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), v_max_age)
                else format('alert source stale: Alertmanager never checked (max_age %s)', v_max_age)
            end;
        else
            if not v_source.reachable then
                v_blockers := v_blockers || format(
                    'alert source unreachable since %s UTC: %s',
                    pg_catalog.to_char(v_source.unreachable_since at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                    v_source.error
                );
            end if;
            if v_source.checked_at < p_at - v_max_age then
                v_blockers := v_blockers || format(
                    'alert source stale: last checked at %s UTC (max_age %s)',
                    pg_catalog.to_char(v_source.checked_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), v_max_age
                );
            end if;
        end if;
    end if;

    if v_source.checked_at is not null then
        v_blockers := v_blockers || coalesce((
            select array_agg(
                       format('alert %s (%s) firing since %s UTC%s', a ->> 'alertname', a ->> 'severity',
                              pg_catalog.to_char((a ->> 'startsAt')::timestamptz at time zone 'UTC',
                                                 'YYYY-MM-DD HH24:MI:SS'),
                              case when (a ->> 'silenced')::boolean then ', silenced (a silenced P0 still blocks)'
                                   else '' end)
                       order by a ->> 'severity', (a ->> 'startsAt')::timestamptz, a ->> 'alertname'
                   )
              from pg_catalog.jsonb_array_elements(v_source.alerts) as a
             where not ((a ->> 'severity') = 'P1' and (a ->> 'silenced')::boolean)
        ), '{}'::text[]);
    end if;
    return v_blockers;
end
$$;

revoke all on function chat_v11.alert_blockers(timestamptz) from public;
comment on function chat_v11.alert_blockers(timestamptz) is
'Go/No-Go blockers of active alerts at p_at: every active P0/P1 alert of the latest Alertmanager read made at or '
'before p_at (a silenced P1 excepted), and, when the policy alert_source is required, an unreachable, stale or '
'missing read.';
