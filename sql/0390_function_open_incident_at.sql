-- The P0/P1 incident active at a moment (opened, not yet resolved): the most severe, then the oldest.
-- PL/pgSQL, not SQL: a SQL function that cannot be inlined is planned again at every call from a PL/pgSQL
-- statement; this one keeps its two plans for the session (it is on every state change's path: the history row).
create or replace function chat_v11.open_incident_at(p_at timestamptz)
returns bigint
language plpgsql
stable
as $$
begin
    if p_at >= pg_catalog.now() then
        return (select i.incident_id
                  from chat_v11.incident as i
                 where i.severity in ('P0', 'P1')
                   and i.status in ('open', 'mitigated')
                 order by i.severity, i.opened_at, i.incident_id
                 limit 1);
    end if;
    return (select i.incident_id
              from chat_v11.incident as i
             where i.severity in ('P0', 'P1')
               and i.opened_at <= p_at
               and (i.resolved_at is null or i.resolved_at > p_at)
             order by i.severity, i.opened_at, i.incident_id
             limit 1);
end
$$;

revoke all on function chat_v11.open_incident_at(timestamptz) from public;
comment on function chat_v11.open_incident_at(timestamptz) is
'The P0/P1 incident active at p_at (opened and not resolved; now: status open or mitigated), most severe first.';
