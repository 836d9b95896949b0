-- Raises the refusal of a whole ingestion batch for its first bad sample (named by position); the sample is quoted
-- by chat_v11.shown (at most 100 characters), the problem names the field and quotes caller text the same way.
create or replace function chat_v11.reject_sample(
    p_ord bigint, p_total bigint, p_code text, p_problem text, p_sample text
)
returns void
language plpgsql
stable
as $$
begin
    raise exception using
        errcode = p_code,
        message = format('sample %s of %s rejected: %s', p_ord, p_total, p_problem),
        detail = format('Sample %s: %s. Nothing was written.', p_ord, chat_v11.shown(p_sample)),
        hint = case p_code
            when 'RO021' then 'Use a metric of the catalog: ' || (
                select pg_catalog.string_agg(m.metric, ', ' order by m.ordinal) from chat_v11.metric as m)
            when 'RO023' then 'Round bucket_start down to a multiple of 10 seconds (UTC).'
            when 'RO024' then 'Check the writer''s clock: buckets may be at most 5 minutes ahead of the server.'
            when 'RO025' then 'Send each (metric, cohort, bucket_start) once per batch.'
            else 'Fix the sample and send the whole batch again; samples are '
                || '{metric, cohort, bucket_start, numerator, denominator, value}.'
        end;
end
$$;

revoke all on function chat_v11.reject_sample(bigint, bigint, text, text, text) from public;
comment on function chat_v11.reject_sample(bigint, bigint, text, text, text) is
'Raises the refusal of an ingestion batch naming its first bad sample by position (SQLSTATE RO021-RO025), the '
'sample quoted at most 100 characters.';
