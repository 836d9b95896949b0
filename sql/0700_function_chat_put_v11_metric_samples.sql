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
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_bad record;
    v_written integer;
    v_evidence timestamptz;
begin
    if p_samples is null or pg_catalog.jsonb_typeof(p_samples) is distinct from 'array' then
        raise exception using
            errcode = 'RO020',
            message = 'p_samples must be a JSON array of sample objects',
            detail = format('Got %s.', coalesce(pg_catalog.jsonb_typeof(p_samples), 'null')),
            hint = 'Pass [{"metric": ..., "cohort": "canary", "bucket_start": "2026-11-26T10:00:10Z", '
                || '"numerator": 0, "denominator": 1200}, ...].';
    end if;

    -- VALIDATE: the first bad sample, by position; a malformed timestamp is found one by one
    begin
        select e.ord, e.sample, p.code, p.problem
          into v_bad
          from pg_catalog.jsonb_array_elements(p_samples) with ordinality as e (sample, ord)
          left join chat_v11.metric as m on m.metric = e.sample ->> 'metric'
         cross join lateral chat_v11.sample_problem(e.sample, m.kind, v_now) as p
         order by e.ord
         limit 1;
    exception when data_exception then
        select e.ord, e.sample, 'RO022' as code, 'bucket_start is not a valid timestamp' as problem
          into v_bad
          from pg_catalog.jsonb_array_elements(p_samples) with ordinality as e (sample, ord)
         where not chat_v11.is_timestamptz(e.sample ->> 'bucket_start')
         order by e.ord
         limit 1;
    end;
    if v_bad.ord is null then
        select d.ord, d.sample, 'RO025' as code,
               format('it repeats metric, cohort and bucket_start of sample %s', d.first_ord) as problem
          into v_bad
          from (
              select e.ord, e.sample,
                     pg_catalog.min(e.ord) over (
                         partition by e.sample ->> 'metric', e.sample ->> 'cohort',
                                      (e.sample ->> 'bucket_start')::timestamptz
                     ) as first_ord
                from pg_catalog.jsonb_array_elements(p_samples) with ordinality as e (sample, ord)
          ) as d
         where d.ord <> d.first_ord
         order by d.ord
         limit 1;
    end if;
    if v_bad.ord is not null then
        raise exception using
            errcode = v_bad.code,
            message = format('sample %s of %s rejected: %s', v_bad.ord, pg_catalog.jsonb_array_length(p_samples),
                             v_bad.problem),
            detail = format('Sample %s: %s. Nothing was written.', v_bad.ord, pg_catalog.left(v_bad.sample::text, 300)),
            hint = case v_bad.code
                when 'RO021' then 'Use a metric of the catalog: ' || (
                    select pg_catalog.string_agg(m.metric, ', ' order by m.ordinal) from chat_v11.metric as m)
                when 'RO023' then 'Round bucket_start down to a multiple of 10 seconds.'
                when 'RO024' then 'Check the writer''s clock: buckets may be at most 5 minutes ahead of the server.'
                when 'RO025' then 'Send each (metric, cohort, bucket_start) once per batch.'
                else 'Fix the sample and send the whole batch again; samples are '
                    || '{metric, cohort, bucket_start, numerator, denominator, value}.'
            end;
    end if;

    -- WRITE: idempotent, a re-sent bucket replaces the stored one
    insert into chat_v11.metric_sample as s (metric, cohort, bucket_start, numerator, denominator, value)
    select x.metric, x.cohort, x.bucket_start, x.numerator, x.denominator, x.value
      from pg_catalog.jsonb_to_recordset(p_samples) as x (
          metric text, cohort text, bucket_start timestamptz, numerator bigint, denominator bigint,
          value double precision
      )
        on conflict (metric, cohort, bucket_start) do update
       set numerator = excluded.numerator,
           denominator = excluded.denominator,
           value = excluded.value,
           written_at = excluded.written_at;
    get diagnostics v_written = row_count;

    -- GUARD: a P0 event in this batch is judged now, at the newest bucket that carries one
    select pg_catalog.max(x.bucket_start)
      into v_evidence
      from pg_catalog.jsonb_to_recordset(p_samples) as x (metric text, bucket_start timestamptz, numerator bigint)
      join chat_v11.metric as m on m.metric = x.metric
     where m.severity = 'P0' and x.numerator > 0;
    if v_evidence is not null then
        perform chat_v11.auto_kill(v_evidence, 'ingestion');
    end if;
    return v_written;
end
$$;

revoke all on function public.chat_put_v11_metric_samples(jsonb) from public;
grant execute on function public.chat_put_v11_metric_samples(jsonb) to chat_rollout_ingest;
comment on function public.chat_put_v11_metric_samples(jsonb) is
'Metric writers: store 10-second samples [{metric, cohort, bucket_start, numerator, denominator, value}], '
'all or nothing (a bad sample is named with a project SQLSTATE), a re-sent bucket replaces the old one. A P0 '
'event is judged in the same transaction: with auto_kill on, a failing P0 check engages the kill switch. '
'Returns the number of samples written.';
