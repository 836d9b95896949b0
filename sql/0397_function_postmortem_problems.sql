-- What a postmortem lacks (playbook section 10), or an empty array when it is complete.
create or replace function chat_v11.postmortem_problems(p_postmortem jsonb)
returns text[]
language sql
stable
as $$
    select array_remove(array[
        case when jsonb_typeof(p_postmortem) is distinct from 'object' then 'the postmortem must be a JSON object' end,
        case when jsonb_typeof(p_postmortem) = 'object' and exists (
                 select from jsonb_object_keys(p_postmortem) as k
                  where k not in ('timeline', 'root_cause', 'what_worked', 'what_did_not_work', 'action_items',
                                  'decision_log'))
             then 'unknown keys: ' || (select string_agg(k, ', ') from jsonb_object_keys(p_postmortem) as k
                  where k not in ('timeline', 'root_cause', 'what_worked', 'what_did_not_work', 'action_items',
                                  'decision_log')) end,
        case when coalesce(jsonb_typeof(p_postmortem -> 'timeline'), 'null') not in ('string', 'array')
                  or coalesce(p_postmortem ->> 'timeline', '') in ('', '[]')
             then 'timeline (UTC) is missing' end,
        case when coalesce(btrim(p_postmortem #>> '{root_cause,technical}'), '') = ''
             then 'root_cause.technical is missing' end,
        case when coalesce(btrim(p_postmortem #>> '{root_cause,process}'), '') = ''
             then 'root_cause.process is missing' end,
        case when coalesce(p_postmortem ->> 'what_worked', '') in ('', '[]') then 'what_worked is missing' end,
        case when coalesce(p_postmortem ->> 'what_did_not_work', '') in ('', '[]')
             then 'what_did_not_work is missing' end,
        case when jsonb_typeof(p_postmortem -> 'action_items') is distinct from 'array'
             then 'action_items must be an array' end,
        (select string_agg(format('action item %s: %s', a.ord, p.problem), '; ')
           from jsonb_array_elements(case when jsonb_typeof(p_postmortem -> 'action_items') = 'array'
                                          then p_postmortem -> 'action_items' else '[]' end)
                    with ordinality as a (item, ord)
          cross join lateral (
              select case
                  when jsonb_typeof(a.item) is distinct from 'object' then 'not an object'
                  when coalesce(a.item ->> 'kind', '') not in ('test', 'alert', 'guardrail')
                      then 'kind must be test, alert or guardrail'
                  when coalesce(btrim(a.item ->> 'title'), '') = '' then 'title is missing'
                  when coalesce(btrim(a.item ->> 'owner'), '') = '' then 'owner is missing'
                  when coalesce(a.item ->> 'deadline', '') !~ '^\d{4}-\d{2}-\d{2}$' then 'deadline (YYYY-MM-DD) is missing'
              end as problem
          ) as p
          where p.problem is not null),
        (select 'action items lack the kinds: ' || string_agg(k.kind, ', ')
           from unnest(array['test', 'alert', 'guardrail']) as k (kind)
          where jsonb_typeof(p_postmortem -> 'action_items') = 'array'
            and not exists (select from jsonb_array_elements(p_postmortem -> 'action_items') as a (item)
                             where a.item ->> 'kind' = k.kind))
    ], null)
$$;

revoke all on function chat_v11.postmortem_problems(jsonb) from public;
comment on function chat_v11.postmortem_problems(jsonb) is
'What a postmortem lacks: UTC timeline, technical and process root cause, what worked and what did not, action '
'items of kinds test, alert and guardrail each with a title, an owner and a deadline.';
