-- One incident by id, or RO030 when there is none.
create or replace function chat_v11.get_incident(p_incident_id bigint)
returns chat_v11.incident
language plpgsql
stable
as $$
declare
    v_incident chat_v11.incident;
begin
    select i.* into v_incident from chat_v11.incident as i where i.incident_id = p_incident_id;
    if not found then
        raise exception using
            errcode = 'RO030',
            message = format('unknown incident %s', coalesce(p_incident_id::text, 'null')),
            detail = 'No incident has that id.',
            hint = 'List the incidents with select * from public.chat_get_v11_incidents().';
    end if;
    return v_incident;
end
$$;

revoke all on function chat_v11.get_incident(bigint) from public;
comment on function chat_v11.get_incident(bigint) is
'The incident with that id, or RO030 when there is none.';
