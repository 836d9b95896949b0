-- Every incident, newest first, with its roles, its last IC decision and whether the cadence is missed.
create or replace function public.chat_get_v11_incidents()
returns table (
    incident_id bigint,
    severity text,
    status text,
    summary text,
    opened_at timestamptz,
    opened_by text,
    roles text,
    last_decision_at timestamptz,
    decision_overdue boolean,
    mitigated_at timestamptz,
    resolved_at timestamptz,
    closed_at timestamptz,
    has_postmortem boolean,
    entries bigint
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select i.incident_id, i.severity, i.status, i.summary, i.opened_at, i.opened_by,
           (select string_agg(r.role || '=' || r.person, ', ' order by r.ord)
              from (select distinct on (e.data ->> 'role') e.data ->> 'role' as role, e.data ->> 'person' as person,
                           array_position(array['IC', 'backend', 'SRE', 'frontend', 'scribe'], e.data ->> 'role') as ord
                      from chat_v11.incident_entry as e
                     where e.incident_id = i.incident_id and e.kind = 'role'
                     order by e.data ->> 'role', e.entry_id desc) as r),
           d.last_decision_at,
           i.status in ('open', 'mitigated')
               and coalesce(d.last_decision_at, i.opened_at) < pg_catalog.now() - interval '10 minutes',
           i.mitigated_at, i.resolved_at, i.closed_at, i.postmortem is not null,
           (select count(*) from chat_v11.incident_entry as e where e.incident_id = i.incident_id)
      from chat_v11.incident as i
      left join lateral (
          select max(e.at) as last_decision_at
            from chat_v11.incident_entry as e
           where e.incident_id = i.incident_id and e.kind = 'decision'
      ) as d on true
     order by i.incident_id desc
$$;

revoke all on function public.chat_get_v11_incidents() from public;
grant execute on function public.chat_get_v11_incidents() to chat_rollout_reader;
comment on function public.chat_get_v11_incidents() is
'Every incident, newest first: severity, status, summary, roles (IC, backend, SRE, frontend, scribe), the IC''s '
'last decision and whether the 10-minute decision cadence is overdue, postmortem present. Read-only.';
