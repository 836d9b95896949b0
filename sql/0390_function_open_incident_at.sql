-- The P0/P1 incident active at a moment (opened, not yet resolved): the most severe, then the oldest.
create or replace function chat_v11.open_incident_at(p_at timestamptz)
returns bigint
language sql
stable
as $$
    select i.incident_id
      from chat_v11.incident as i
     where i.severity in ('P0', 'P1')
       and case
           when p_at >= pg_catalog.now() then i.status in ('open', 'mitigated')
           else i.opened_at <= p_at and (i.resolved_at is null or i.resolved_at > p_at)
       end
     order by i.severity, i.opened_at, i.incident_id
     limit 1
$$;

revoke all on function chat_v11.open_incident_at(timestamptz) from public;
comment on function chat_v11.open_incident_at(timestamptz) is
'The P0/P1 incident active at p_at (opened and not resolved; now: status open or mitigated), most severe first.';
