-- The exact, slow validation of an ingestion batch (SPEC 4.4), run only when the fast checks of
-- chat_v11.put_samples saw something wrong: raises the refusal of the first bad sample by position
-- (RO021-RO024, chat_v11.sample_problem), else of the first bucket sent twice (RO025); returns when the
-- batch has neither. The bad sample is quoted with its bucket_start in UTC (alignment is counted in UTC).
create or replace function chat_v11.refuse_samples(
    p_metric text[],
    p_cohort text[],
    p_bucket_start timestamptz[],
    p_numerator bigint[],
    p_denominator bigint[],
    p_value double precision[],
    p_now timestamptz
)
returns void
language plpgsql
stable
as $$
declare
    v_total integer := coalesce(pg_catalog.cardinality(p_metric), 0);
    v_bad record;
begin
    select x.ord, p.code, p.problem,
           pg_catalog.json_build_object('metric', x.metric, 'cohort', x.cohort,
                                        'bucket_start', (pg_catalog.to_json(x.bucket_start at time zone 'UTC') #>> '{}')
                                        || 'Z',
                                        'numerator', x.numerator, 'denominator', x.denominator,
                                        'value', x.value)::text as sample
      into v_bad
      from unnest(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value)
               with ordinality as x (metric, cohort, bucket_start, numerator, denominator, value, ord)
      left join chat_v11.metric as m on m.metric = x.metric
     cross join lateral chat_v11.sample_problem(
         m.kind, x.metric, x.cohort, x.bucket_start, x.numerator, x.denominator, x.value, p_now
     ) as p
     order by x.ord
     limit 1;
    if v_bad.ord is null then
        select d.ord, 'RO025' as code,
               format('it repeats metric, cohort and bucket_start of sample %s', d.first_ord) as problem,
               pg_catalog.json_build_object('metric', d.metric, 'cohort', d.cohort, 'bucket_start',
                                            (pg_catalog.to_json(d.bucket_start at time zone 'UTC') #>> '{}') || 'Z'
               )::text as sample
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
end
$$;

revoke all on function chat_v11.refuse_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[],
    timestamptz
) from public;
comment on function chat_v11.refuse_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[],
    timestamptz
) is
'Slow path of ingestion: raises the refusal of the first bad sample of a batch by position (RO021-RO024), else '
'of the first repeated bucket (RO025); returns when there is neither.';
