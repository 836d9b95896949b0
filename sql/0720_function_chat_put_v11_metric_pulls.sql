-- Keeps what the puller read (SPEC 7, "Prometheus in"), a JSON array of records
-- {metric, cohort, bucket_start, field, query, query_time, outcome, value, answer_sha256, answer_excerpt}, all or
-- nothing; a re-pulled (metric, cohort, bucket_start, field) replaces its record. chat-rollout pull calls it in the
-- transaction that writes the bucket's samples, so a stored sample always has its provenance and a sample that was
-- not written (an empty or NaN answer) has its reason.
create or replace function public.chat_put_v11_metric_pulls(p_pulls jsonb)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_bad record;
    v_count integer;
begin
    perform chat_v11.begin_write('chat_put_v11_metric_pulls');
    if p_pulls is null or pg_catalog.jsonb_typeof(p_pulls) is distinct from 'array' then
        raise exception using
            errcode = 'RO020',
            message = 'p_pulls must be a JSON array of pull records',
            detail = format('Got %s.', coalesce(pg_catalog.jsonb_typeof(p_pulls), 'null')),
            hint = 'Pass [{"metric": ..., "cohort": "canary", "bucket_start": "2026-11-26T10:00:10Z", "field": '
                || '"numerator", "query": ..., "query_time": ..., "outcome": "value", "value": 0, '
                || '"answer_sha256": ..., "answer_excerpt": ...}, ...].';
    end if;
    -- the first record that cannot be stored, by position, with its problem (the table's constraints, named)
    select e.ord, v.problem, v.code into v_bad
      from pg_catalog.jsonb_array_elements(p_pulls) with ordinality as e (pull, ord)
     cross join lateral (
         select case
             when pg_catalog.jsonb_typeof(e.pull) is distinct from 'object' then 'RO022:the record is not a JSON object'
             when e.pull - '{metric,cohort,bucket_start,field,query,query_time,outcome,value,answer_sha256,'
                           'answer_excerpt}'::text[] <> '{}'::jsonb
                 then 'RO022:unknown key in ' || chat_v11.shown(e.pull::text)
             when pg_catalog.jsonb_path_exists(e.pull, 'strict $.* ? (@.type() != "string" && @.type() != "number" '
                                                       '&& @.type() != "null")')
                 then 'RO022:every field is a JSON string, number or null'
             when not exists (select from chat_v11.metric as m where m.metric = e.pull ->> 'metric')
                 then 'RO021:unknown metric ' || chat_v11.shown(e.pull ->> 'metric')
             when (e.pull ->> 'cohort') is null or (e.pull ->> 'cohort') not in ('canary', 'control')
                 then 'RO022:cohort must be "canary" or "control"'
             when (e.pull ->> 'field') is null or (e.pull ->> 'field') not in ('numerator', 'denominator', 'value')
                 then 'RO022:field must be numerator, denominator or value'
             when (e.pull ->> 'outcome') is null
                  or (e.pull ->> 'outcome') not in ('value', 'empty', 'nan', 'multiple_series')
                 then 'RO022:outcome must be value, empty, nan or multiple_series'
             when ((e.pull ->> 'outcome') = 'value') <> (pg_catalog.jsonb_typeof(e.pull -> 'value') = 'number')
                 then 'RO022:value is a JSON number exactly when the outcome is value'
             when coalesce(e.pull ->> 'answer_sha256', '') !~ '^[0-9a-f]{64}$'
                 then 'RO022:answer_sha256 must be 64 lowercase hex digits'
             when chat_v11.is_blank(e.pull ->> 'query') or pg_catalog.length(e.pull ->> 'query') > 4500
                 then 'RO022:query must be the query sent, at most 4500 characters'
             when (e.pull ->> 'answer_excerpt') is null or pg_catalog.length(e.pull ->> 'answer_excerpt') > 2000
                 then 'RO022:answer_excerpt must be a string of at most 2000 characters'
             when coalesce(e.pull ->> 'bucket_start', '')
                  !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|z|[+-]\d{2}(:?\d{2})?)$'
                  or coalesce(e.pull ->> 'query_time', '')
                  !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|z|[+-]\d{2}(:?\d{2})?)$'
                 then 'RO022:bucket_start and query_time must be ISO 8601 timestamps with an offset'
         end as verdict
     ) as c
     cross join lateral (select pg_catalog.split_part(c.verdict, ':', 1) as code,
                                pg_catalog.substr(c.verdict, 7) as problem) as v
     where c.verdict is not null
     order by e.ord
     limit 1;
    if v_bad.ord is not null then
        raise exception using
            errcode = v_bad.code,
            message = format('pull record %s of %s: %s', v_bad.ord, pg_catalog.jsonb_array_length(p_pulls),
                             v_bad.problem),
            detail = 'Nothing was written.',
            hint = 'Fix the record and send the whole batch again.';
    end if;
    begin
        insert into chat_v11.metric_pull as p (
            metric, cohort, bucket_start, field, query, query_time, outcome, value, answer_sha256, answer_excerpt
        )
        select x.metric, x.cohort, x.bucket_start, x.field, x.query, x.query_time, x.outcome, x.value,
               x.answer_sha256, x.answer_excerpt
          from pg_catalog.jsonb_to_recordset(p_pulls) as x (
              metric text, cohort text, bucket_start timestamptz, field text, query text, query_time timestamptz,
              outcome text, value double precision, answer_sha256 text, answer_excerpt text
          )
        on conflict on constraint metric_pull_pkey do update
            set query = excluded.query, query_time = excluded.query_time, outcome = excluded.outcome,
                value = excluded.value, answer_sha256 = excluded.answer_sha256,
                answer_excerpt = excluded.answer_excerpt, pulled_at = pg_catalog.clock_timestamp(),
                pulled_by = session_user;
        get diagnostics v_count = row_count;
    exception
        when cardinality_violation then
            raise exception using
                errcode = 'RO025',
                message = 'the same (metric, cohort, bucket_start, field) twice in one batch of pull records',
                detail = 'Nothing was written.',
                hint = 'Send each record once.';
        when data_exception or check_violation then
            raise exception using
                errcode = case when sqlerrm ~ 'aligned' then 'RO023' else 'RO022' end,
                message = format('a pull record could not be stored: %s', chat_v11.shown(sqlerrm)),
                detail = 'bucket_start is aligned to 10 seconds in UTC; value is a finite number. Nothing was written.',
                hint = 'Fix the record and send the whole batch again.';
    end;
    return v_count;
end
$$;

revoke all on function public.chat_put_v11_metric_pulls(jsonb) from public;
grant execute on function public.chat_put_v11_metric_pulls(jsonb) to chat_rollout_ingest;
comment on function public.chat_put_v11_metric_pulls(jsonb) is
'Metric pullers: keep what was read per metric, cohort, bucket and field [{metric, cohort, bucket_start, field, '
'query, query_time, outcome, value, answer_sha256, answer_excerpt}], all or nothing; a re-pulled record replaces '
'the old one. Returns the number of records written.';
