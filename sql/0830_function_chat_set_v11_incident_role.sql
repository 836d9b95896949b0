-- Names who fills a role of the incident (playbook section 3): IC, backend, SRE, frontend, scribe.
create or replace function public.chat_set_v11_incident_role(p_incident_id bigint, p_role text, p_person text)
returns table (entry_id bigint, incident_id bigint, at timestamptz, role text, person text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_person text := chat_v11.checked_reason(p_person);
    v_role text;
    v_entry chat_v11.incident_entry;
begin
    perform chat_v11.begin_write('chat_set_v11_incident_role');
    perform chat_v11.incident_for_change(p_incident_id);
    v_role := case lower(coalesce(p_role, ''))
        when 'ic' then 'IC' when 'backend' then 'backend' when 'sre' then 'SRE'
        when 'frontend' then 'frontend' when 'scribe' then 'scribe'
    end;
    if v_role is null then
        raise exception using
            errcode = 'RO031',
            message = format('unknown incident role %s', chat_v11.shown(p_role)),
            detail = 'Roles: IC, backend, SRE, frontend, scribe (playbook section 3).',
            hint = 'For example: chat_set_v11_incident_role(7, ''IC'', ''alice'').';
    end if;
    v_entry := chat_v11.incident_log(p_incident_id, 'role', format('%s: %s', v_role, v_person),
                                     jsonb_build_object('role', v_role, 'person', v_person));
    return query select v_entry.entry_id, v_entry.incident_id, v_entry.at, v_role, v_person;
end
$$;

revoke all on function public.chat_set_v11_incident_role(bigint, text, text) from public;
grant execute on function public.chat_set_v11_incident_role(bigint, text, text) to chat_rollout_operator;
comment on function public.chat_set_v11_incident_role(bigint, text, text) is
'Name who fills an incident role: IC, backend, SRE, frontend or scribe (the latest entry per role counts).';
