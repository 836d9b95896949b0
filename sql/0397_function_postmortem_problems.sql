-- What a postmortem lacks or gets wrong (playbook section 10), or an empty array when it is complete: at most
-- 256 KiB of JSON, lists of 1 to 200 non-blank entries, root causes and owners as visible text, real deadlines.
create or replace function chat_v11.postmortem_problems(p_postmortem jsonb)
returns text[]
language plpgsql
stable
as $$
declare
    c_max_bytes constant integer := 262144;  -- 256 KiB of JSON text
    c_max_entries constant integer := 200;  -- entries of a list, action items included
    c_shown_items constant integer := 10;  -- action items whose problems are spelled out
    v_problems text[] := '{}'::text[];
    v_unknown text[];
    v_bytes integer;
    v_key text;
    v_field text;
    v_value jsonb;
    v_problem text;
    v_item jsonb;
    v_ord bigint;
    v_bad_items integer := 0;
    v_date text;
    v_year integer;
    v_month integer;
    v_day integer;
    v_days integer;  -- days in v_month of v_year
begin
    if p_postmortem is null or pg_catalog.jsonb_typeof(p_postmortem) <> 'object' then
        return array['the postmortem must be a JSON object'];
    end if;
    -- SIZE first: nothing else is read in a document over the cap
    v_bytes := pg_catalog.octet_length(p_postmortem::text);
    if v_bytes > c_max_bytes then
        return array[format('the postmortem has %s bytes of JSON, at most %s (256 KiB)', v_bytes, c_max_bytes)];
    end if;

    select pg_catalog.array_agg(k.key order by k.key) into v_unknown
      from pg_catalog.jsonb_object_keys(p_postmortem) as k (key)
     where k.key not in ('timeline', 'root_cause', 'what_worked', 'what_did_not_work', 'action_items',
                         'decision_log');
    if v_unknown is not null then
        v_problems := v_problems || ('unknown key ' || chat_v11.shown(v_unknown[1])
            || case when pg_catalog.cardinality(v_unknown) > 1
                    then format(' (and %s more)', pg_catalog.cardinality(v_unknown) - 1) else '' end);
    end if;

    -- LISTS (and root_cause, in the order the playbook reads them): a visible text, or 1 to 200 entries, each a
    -- visible text or an object of visible texts and numbers; decision_log may be left out
    foreach v_key in array array['timeline', 'root_cause', 'what_worked', 'what_did_not_work', 'decision_log'] loop
        v_value := p_postmortem -> v_key;
        v_problem := null;
        if v_key = 'root_cause' then
            foreach v_field in array array['technical', 'process'] loop
                v_value := p_postmortem #> array['root_cause', v_field];
                if coalesce(v_value, 'null') <> 'null' and pg_catalog.jsonb_typeof(v_value) <> 'string' then
                    v_problems := v_problems || format('root_cause.%s must be a text, got a JSON %s', v_field,
                                                       pg_catalog.jsonb_typeof(v_value));
                elsif chat_v11.is_blank(v_value #>> '{}') then
                    v_problems := v_problems || format('root_cause.%s is missing', v_field);
                end if;
            end loop;
            continue;
        end if;
        if coalesce(v_value, 'null') = 'null' then
            if v_key <> 'decision_log' then
                v_problem := case when v_key = 'timeline' then 'timeline (UTC)' else v_key end || ' is missing';
            end if;
        elsif pg_catalog.jsonb_typeof(v_value) = 'string' then
            if chat_v11.is_blank(v_value #>> '{}') then
                v_problem := v_key || ' is missing (blank)';
            end if;
        elsif pg_catalog.jsonb_typeof(v_value) <> 'array' then
            v_problem := format('%s must be a text or an array, got a JSON %s', v_key,
                                pg_catalog.jsonb_typeof(v_value));
        elsif pg_catalog.jsonb_array_length(v_value) = 0 then
            v_problem := v_key || ' is missing (an empty array)';
        elsif pg_catalog.jsonb_array_length(v_value) > c_max_entries then
            v_problem := format('%s has %s entries, at most %s', v_key, pg_catalog.jsonb_array_length(v_value),
                                c_max_entries);
        else
            select format('%s entry %s %s', v_key, e.ord, p.problem) into v_problem
              from pg_catalog.jsonb_array_elements(v_value) with ordinality as e (entry, ord)
             cross join lateral (
                 select case pg_catalog.jsonb_typeof(e.entry)
                     when 'string' then case when chat_v11.is_blank(e.entry #>> '{}') then 'is blank' end
                     when 'object' then case
                         when e.entry = '{}' then 'is an empty object'
                         when exists (
                             select from pg_catalog.jsonb_each(e.entry) as f (key, value)
                              where pg_catalog.jsonb_typeof(f.value) not in ('string', 'number')
                                 or (pg_catalog.jsonb_typeof(f.value) = 'string'
                                     and chat_v11.is_blank(f.value #>> '{}'))
                         ) then 'has a blank, null or nested field'
                     end
                     else format('must be a text or an object, got a JSON %s', pg_catalog.jsonb_typeof(e.entry))
                 end as problem
             ) as p
             where p.problem is not null
             order by e.ord
             limit 1;
        end if;
        if v_problem is not null then
            v_problems := v_problems || v_problem;
        end if;
    end loop;

    -- ACTION ITEMS: 1 to 200 objects, kind test | alert | guardrail, title and owner visible text, deadline a real
    -- calendar date YYYY-MM-DD; the first 10 bad items are spelled out
    v_value := p_postmortem -> 'action_items';
    if pg_catalog.jsonb_typeof(v_value) is distinct from 'array' then
        return v_problems || 'action_items must be an array'::text;
    end if;
    if pg_catalog.jsonb_array_length(v_value) > c_max_entries then
        return v_problems || format('action_items has %s items, at most %s', pg_catalog.jsonb_array_length(v_value),
                                    c_max_entries);
    end if;
    for v_item, v_ord in
        select a.item, a.ord from pg_catalog.jsonb_array_elements(v_value) with ordinality as a (item, ord)
    loop
        v_problem := case
            when pg_catalog.jsonb_typeof(v_item) is distinct from 'object' then 'not an object'
            when coalesce(v_item ->> 'kind', '') not in ('test', 'alert', 'guardrail')
                then 'kind must be test, alert or guardrail'
            when coalesce(v_item -> 'title', 'null') = 'null' then 'title is missing'
            when pg_catalog.jsonb_typeof(v_item -> 'title') <> 'string'
                then format('title must be a text, got a JSON %s', pg_catalog.jsonb_typeof(v_item -> 'title'))
            when chat_v11.is_blank(v_item ->> 'title') then 'title is missing'
            when coalesce(v_item -> 'owner', 'null') = 'null' then 'owner is missing'
            when pg_catalog.jsonb_typeof(v_item -> 'owner') <> 'string'
                then format('owner must be a text (a person or a team), got a JSON %s',
                            pg_catalog.jsonb_typeof(v_item -> 'owner'))
            when chat_v11.is_blank(v_item ->> 'owner') then 'owner is missing'
            when coalesce(v_item -> 'deadline', 'null') = 'null' then 'deadline (YYYY-MM-DD) is missing'
            when pg_catalog.jsonb_typeof(v_item -> 'deadline') <> 'string'
                then format('deadline must be a date as text (YYYY-MM-DD), got a JSON %s',
                            pg_catalog.jsonb_typeof(v_item -> 'deadline'))
            when (v_item ->> 'deadline') !~ '^\d{4}-\d{2}-\d{2}$'
                then format('deadline %s is not a date written YYYY-MM-DD', chat_v11.shown(v_item ->> 'deadline'))
        end;
        if v_problem is null then
            -- a real calendar date, by arithmetic (no cast that could raise)
            v_date := v_item ->> 'deadline';
            v_year := substr(v_date, 1, 4)::integer;
            v_month := substr(v_date, 6, 2)::integer;
            v_day := substr(v_date, 9, 2)::integer;
            v_days := case
                when v_month = 2 and (v_year % 4 = 0 and v_year % 100 <> 0 or v_year % 400 = 0) then 29
                when v_month = 2 then 28
                when v_month in (4, 6, 9, 11) then 30
                else 31
            end;
            if v_year < 1 or v_month not between 1 and 12 or v_day not between 1 and v_days then
                v_problem := format('deadline %s is not a calendar date', chat_v11.shown(v_date));
            end if;
        end if;
        if v_problem is not null then
            v_bad_items := v_bad_items + 1;
            if v_bad_items <= c_shown_items then
                v_problems := v_problems || format('action item %s: %s', v_ord, v_problem);
            end if;
        end if;
    end loop;
    if v_bad_items > c_shown_items then
        v_problems := v_problems || format('%s more action items with problems', v_bad_items - c_shown_items);
    end if;
    select 'action items lack the kinds: ' || pg_catalog.string_agg(k.kind, ', ' order by k.ord) into v_problem
      from unnest(array['test', 'alert', 'guardrail']) with ordinality as k (kind, ord)
     where not exists (
         select from pg_catalog.jsonb_array_elements(v_value) as a (item) where a.item ->> 'kind' = k.kind
     );
    if v_problem is not null then
        v_problems := v_problems || v_problem;
    end if;
    return v_problems;
end
$$;

revoke all on function chat_v11.postmortem_problems(jsonb) from public;
comment on function chat_v11.postmortem_problems(jsonb) is
'What a postmortem lacks or gets wrong: at most 256 KiB of JSON; UTC timeline, what worked and what did not (and '
'decision_log when given) as a visible text or 1-200 non-blank entries; technical and process root cause as text; '
'1-200 action items of kinds test, alert and guardrail, each with a title, an owner (text) and a real deadline '
'(YYYY-MM-DD).';
