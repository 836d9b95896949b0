-- The fast bulk path: the same ingestion with one array per field (position = sample number), so a
-- writer sends binary arrays (psycopg adapts Python lists) instead of JSON text. Same rules, same guard; every
-- array one-dimensional (RO020).
create or replace function public.chat_put_v11_metric_samples(
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
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_n integer := coalesce(pg_catalog.cardinality(p_metric), 0);
begin
    perform chat_v11.begin_write('chat_put_v11_metric_samples');
    if p_metric is null
       or coalesce(pg_catalog.cardinality(p_cohort), -1) <> v_n
       or coalesce(pg_catalog.cardinality(p_bucket_start), -1) <> v_n
       or coalesce(pg_catalog.cardinality(p_numerator), v_n) <> v_n
       or coalesce(pg_catalog.cardinality(p_denominator), v_n) <> v_n
       or coalesce(pg_catalog.cardinality(p_value), v_n) <> v_n
       or pg_catalog.array_ndims(p_metric) > 1
       or pg_catalog.array_ndims(p_cohort) > 1
       or pg_catalog.array_ndims(p_bucket_start) > 1
       or pg_catalog.array_ndims(p_numerator) > 1
       or pg_catalog.array_ndims(p_denominator) > 1
       or pg_catalog.array_ndims(p_value) > 1 then
        raise exception using
            errcode = 'RO020',
            message = 'the sample arrays must be one-dimensional and of the same length',
            detail = format('metric %s, cohort %s, bucket_start %s, numerator %s, denominator %s, value %s elements'
                            || '; dimensions %s, %s, %s, %s, %s, %s.',
                            coalesce(pg_catalog.cardinality(p_metric)::text, 'null'),
                            coalesce(pg_catalog.cardinality(p_cohort)::text, 'null'),
                            coalesce(pg_catalog.cardinality(p_bucket_start)::text, 'null'),
                            coalesce(pg_catalog.cardinality(p_numerator)::text, 'null'),
                            coalesce(pg_catalog.cardinality(p_denominator)::text, 'null'),
                            coalesce(pg_catalog.cardinality(p_value)::text, 'null'),
                            coalesce(pg_catalog.array_ndims(p_metric), 0), coalesce(pg_catalog.array_ndims(p_cohort), 0),
                            coalesce(pg_catalog.array_ndims(p_bucket_start), 0),
                            coalesce(pg_catalog.array_ndims(p_numerator), 0),
                            coalesce(pg_catalog.array_ndims(p_denominator), 0),
                            coalesce(pg_catalog.array_ndims(p_value), 0)),
            hint = 'Pass one element per sample in every array; numerator, denominator or value may be a null '
                || 'array when no sample has that field.';
    end if;
    return chat_v11.put_samples(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value);
end
$$;

revoke all on function public.chat_put_v11_metric_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) from public;
grant execute on function public.chat_put_v11_metric_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) to chat_rollout_ingest;
comment on function public.chat_put_v11_metric_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) is
'Metric writers, fast bulk path: the same ingestion as the JSON form with one array per field (metric, cohort, '
'bucket_start, numerator, denominator, value; position = sample number). All or nothing, same SQLSTATEs, same '
'automatic kill.';
