-- Stores the incident's postmortem (playbook section 10), refused while anything required is missing.
create or replace function public.chat_put_v11_postmortem(p_incident_id bigint, p_postmortem jsonb)
returns table (incident_id bigint, status text, action_items integer, stored_at timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_incident chat_v11.incident;
    v_problems text[];
    v_entry chat_v11.incident_entry;
begin
    perform chat_v11.begin_write('chat_put_v11_postmortem');
    v_incident := chat_v11.incident_for_change(p_incident_id);
    v_problems := chat_v11.postmortem_problems(p_postmortem);
    if cardinality(v_problems) > 0 then
        raise exception using
            errcode = 'RO035',
            message = format('the postmortem of incident %s is incomplete', p_incident_id),
            detail = array_to_string(v_problems, '; ') || '.',
            hint = 'Send {"timeline": [...], "root_cause": {"technical": ..., "process": ...}, "what_worked": [...], '
                || '"what_did_not_work": [...], "action_items": [{"kind": "test|alert|guardrail", "title": ..., '
                || '"owner": ..., "deadline": "YYYY-MM-DD"}], "decision_log": [...]}.';
    end if;
    update chat_v11.incident as i set postmortem = p_postmortem where i.incident_id = p_incident_id;
    v_entry := chat_v11.incident_log(
        p_incident_id, 'postmortem',
        format('postmortem stored with %s action items', jsonb_array_length(p_postmortem -> 'action_items')),
        p_postmortem
    );
    return query select p_incident_id, v_incident.status, jsonb_array_length(p_postmortem -> 'action_items'),
                        v_entry.at;
end
$$;

revoke all on function public.chat_put_v11_postmortem(bigint, jsonb) from public;
grant execute on function public.chat_put_v11_postmortem(bigint, jsonb) to chat_rollout_operator;
comment on function public.chat_put_v11_postmortem(bigint, jsonb) is
'Store an incident''s postmortem: timeline, root_cause {technical, process}, what_worked, what_did_not_work, '
'action_items [{kind test|alert|guardrail, title, owner, deadline}], decision_log. Incomplete: RO035.';
