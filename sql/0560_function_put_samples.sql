-- Validates and stores a batch of typed samples (parallel arrays, position = sample number), all or
-- nothing; then judges any P0 event of the batch at once (chat_v11.auto_kill). Returns the count written.
create or replace function chat_v11.put_samples(
    p_metric text[],
    p_cohort text[],
    p_bucket_start timestamptz[],
    p_numerator bigint[],
    p_denominator bigint[],
    p_value double precision[]
)
returns integer
language plpgsql
volatile
as $$
declare
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_total integer := coalesce(pg_catalog.cardinality(p_metric), 0);
    v_bad record;
    v_written integer;
    v_evidence timestamptz;
begin
    perform chat_v11.begin_write('chat_put_v11_metric_samples');
    -- VALIDATE: the first bad sample by position, then a bucket sent twice
    select x.ord, p.code, p.problem,
           pg_catalog.json_build_object('metric', x.metric, 'cohort', x.cohort, 'bucket_start', x.bucket_start,
                                        'numerator', x.numerator, 'denominator', x.denominator,
                                        'value', x.value)::text as sample
      into v_bad
      from unnest(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value)
               with ordinality as x (metric, cohort, bucket_start, numerator, denominator, value, ord)
      left join chat_v11.metric as m on m.metric = x.metric
     cross join lateral chat_v11.sample_problem(
         m.kind, x.metric, x.cohort, x.bucket_start, x.numerator, x.denominator, x.value, v_now
     ) as p
     order by x.ord
     limit 1;
    if v_bad.ord is null then
        select d.ord, 'RO025' as code,
               format('it repeats metric, cohort and bucket_start of sample %s', d.first_ord) as problem,
               pg_catalog.json_build_object('metric', d.metric, 'cohort', d.cohort,
                                            'bucket_start', d.bucket_start)::text as sample
          into v_bad
          from (
              select x.ord, x.metric, x.cohort, x.bucket_start,
                     pg_catalog.min(x.ord) over (partition by x.metric, x.cohort, x.bucket_start) as first_ord
                from unnest(p_metric, p_cohort, p_bucket_start) with ordinality as x (metric, cohort, bucket_start, ord)
          ) as d
         where d.ord <> d.first_ord
         order by d.ord
         limit 1;
    end if;
    if v_bad.ord is not null then
        perform chat_v11.reject_sample(v_bad.ord, v_total, v_bad.code, v_bad.problem, v_bad.sample);
    end if;

    -- WRITE: idempotent, a re-sent bucket replaces the stored one
    insert into chat_v11.metric_sample as s (metric, cohort, bucket_start, numerator, denominator, value)
    select x.metric, x.cohort, x.bucket_start, x.numerator, x.denominator, x.value
      from unnest(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value)
               as x (metric, cohort, bucket_start, numerator, denominator, value)
     order by x.metric, x.cohort, x.bucket_start  -- key order: concurrent batches never deadlock
        on conflict (metric, cohort, bucket_start) do update
       set numerator = excluded.numerator,
           denominator = excluded.denominator,
           value = excluded.value,
           written_at = excluded.written_at;
    get diagnostics v_written = row_count;

    -- GUARD: a P0 event in this batch is judged now, at the newest bucket that carries one
    select pg_catalog.max(x.bucket_start)
      into v_evidence
      from unnest(p_metric, p_bucket_start, p_numerator) as x (metric, bucket_start, numerator)
      join chat_v11.metric as m on m.metric = x.metric
     where m.severity = 'P0' and x.numerator > 0;
    if v_evidence is not null then
        perform chat_v11.auto_kill(v_evidence, 'ingestion');
    end if;
    return v_written;
end
$$;

revoke all on function chat_v11.put_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) from public;
comment on function chat_v11.put_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) is
'Validates and stores typed samples all or nothing (a bad sample raises RO021-RO025 naming its position), '
'then judges P0 events of the batch at once (auto_kill). Returns the number of samples written.';
