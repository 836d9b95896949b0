-- Writes metric samples (a JSON array), all or nothing; a re-sent bucket replaces the stored one.
-- A P0 event in the batch is judged in the same transaction: with auto_kill on, a failing P0 check
-- engages the kill switch before this call returns.
create or replace function public.chat_put_v11_metric_samples(p_samples jsonb)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_bad record;
    v_total integer;
    v_metric text[];
    v_cohort text[];
    v_bucket timestamptz[];
    v_numerator bigint[];
    v_denominator bigint[];
    v_value double precision[];
    v_suspect boolean;
    v_problem text;
begin
    perform chat_v11.begin_write('chat_put_v11_metric_samples');
    if p_samples is null or pg_catalog.jsonb_typeof(p_samples) is distinct from 'array' then
        raise exception using
            errcode = 'RO020',
            message = 'p_samples must be a JSON array of sample objects',
            detail = format('Got %s.', coalesce(pg_catalog.jsonb_typeof(p_samples), 'null')),
            hint = 'Pass [{"metric": ..., "cohort": "canary", "bucket_start": "2026-11-26T10:00:10Z", '
                || '"numerator": 0, "denominator": 1200}, ...].';
    end if;
    v_total := pg_catalog.jsonb_array_length(p_samples);

    -- VALIDATE the JSON shape. Fast: whole-array tests that only say whether some sample breaks a rule of
    -- chat_v11.sample_shape_problem: every element an object (a JSON path in strict mode, no unwrapping); no key
    -- outside the six; then one JSON path in lax mode: a metric, cohort or bucket_start not a string or a
    -- bucket_start not ISO 8601 with an offset, a count or value neither a JSON number nor null, a negative,
    -- fractional or out-of-range count, a value beyond 1e12. Only then the exact check names the first such
    -- sample by position.
    v_suspect := pg_catalog.jsonb_path_exists(p_samples, 'strict $[*] ? (@.type() != "object")');
    if not v_suspect then
        v_suspect := exists (
            select from pg_catalog.jsonb_array_elements(p_samples) as e (sample)
             where e.sample - '{metric,cohort,bucket_start,numerator,denominator,value}'::text[] <> '{}'::jsonb
        )
        or pg_catalog.jsonb_path_exists(p_samples, ('lax $[*] ? ('
            || '!(@.metric.type() == "string") || !(@.cohort.type() == "string")'
            || ' || !(@.bucket_start.type() == "string")'
            || ' || !(@.bucket_start like_regex '
            || '"^\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,6})?(Z|z|[+-]\\d{2}(:?\\d{2})?)$")'
            || ' || (exists (@.numerator) && !(@.numerator.type() == "number" || @.numerator.type() == "null"))'
            || ' || (exists (@.denominator) && !(@.denominator.type() == "number" || @.denominator.type() == "null"))'
            || ' || (exists (@.value) && !(@.value.type() == "number" || @.value.type() == "null"))'
            || ' || @.numerator < 0 || @.denominator < 0'
            || ' || @.numerator.floor() != @.numerator || @.denominator.floor() != @.denominator'
            || ' || @.numerator > 9223372036854775807 || @.denominator > 9223372036854775807'
            || ' || @.value > 1e12 || @.value < -1e12)')::jsonpath);
    end if;
    if v_suspect then
        select e.ord, p.code, p.problem, e.sample::text as sample
          into v_bad
          from pg_catalog.jsonb_array_elements(p_samples) with ordinality as e (sample, ord)
         cross join lateral chat_v11.sample_shape_problem(e.sample) as p
         order by e.ord
         limit 1;
        if v_bad.ord is not null then
            perform chat_v11.reject_sample(v_bad.ord, v_total, v_bad.code, v_bad.problem, v_bad.sample);
        end if;
    end if;

    -- READ the fields into typed arrays in one pass, in the array's order (jsonb_to_recordset returns the elements
    -- in order). What passes the shape checks and still cannot be cast (a date such as 2026-13-45, a count written
    -- 1.0, a value of 1e-400) is named only when the cast fails: the first such sample, by position and field.
    begin
        select array_agg(x.metric), array_agg(x.cohort), array_agg(x.bucket_start), array_agg(x.numerator),
               array_agg(x.denominator), array_agg(x.value)
          into v_metric, v_cohort, v_bucket, v_numerator, v_denominator, v_value
          from pg_catalog.jsonb_to_recordset(p_samples) as x (
              metric text, cohort text, bucket_start timestamptz, numerator bigint, denominator bigint,
              value double precision
          );
    exception when data_exception then
        for v_bad in
            select e.ord, e.sample
              from pg_catalog.jsonb_array_elements(p_samples) with ordinality as e (sample, ord)
             order by e.ord
        loop
            v_problem := chat_v11.sample_field_problem(v_bad.sample);
            if v_problem is not null then
                perform chat_v11.reject_sample(v_bad.ord, v_total, 'RO022', v_problem, v_bad.sample::text);
            end if;
        end loop;
        raise exception using
            errcode = 'RO022',
            message = format('a sample of %s could not be read: %s', v_total, chat_v11.shown(sqlerrm)),
            detail = 'No sample could be named. Nothing was written.',
            hint = 'Fix the sample and send the whole batch again; samples are '
                || '{metric, cohort, bucket_start, numerator, denominator, value}.';
    end;
    return chat_v11.put_samples(v_metric, v_cohort, v_bucket, v_numerator, v_denominator, v_value);
end
$$;

revoke all on function public.chat_put_v11_metric_samples(jsonb) from public;
grant execute on function public.chat_put_v11_metric_samples(jsonb) to chat_rollout_ingest;
comment on function public.chat_put_v11_metric_samples(jsonb) is
'Metric writers: store 10-second samples [{metric, cohort, bucket_start, numerator, denominator, value}], '
'all or nothing (a bad sample is named with a project SQLSTATE), a re-sent bucket replaces the old one. A P0 '
'event is judged in the same transaction: with auto_kill on, a failing P0 check engages the kill switch. '
'Returns the number of samples written. The columnar overload (arrays) is the fast bulk path.';
