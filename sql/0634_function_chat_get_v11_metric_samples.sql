-- The stored metric samples of a time range (bucket_start between p_from and p_to, both included), for readers:
-- the incident report's chart, an operator checking what the gates saw. At most 31 days per call.
create or replace function public.chat_get_v11_metric_samples(p_from timestamptz, p_to timestamptz)
returns table (
    metric text,
    cohort text,
    bucket_start timestamptz,
    numerator bigint,
    denominator bigint,
    value double precision,
    written_at timestamptz
)
language plpgsql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_bad boolean := false;
begin
    -- two steps: the subtraction only ever sees two finite times (an infinite difference is 22008 on 15 and 16)
    if p_from is null or p_to is null or not pg_catalog.isfinite(p_from) or not pg_catalog.isfinite(p_to)
       or p_to < p_from then
        v_bad := true;
    elsif p_to - p_from > interval '31 days' then
        v_bad := true;
    end if;
    if v_bad then
        raise exception using
            errcode = 'RO011',
            message = format(
                'the sample range must be two finite times running forward at most 31 days, not %s to %s',
                coalesce(p_from::text, 'null'), coalesce(p_to::text, 'null')
            ),
            detail = 'chat_get_v11_metric_samples(p_from, p_to) returns the buckets whose start lies in [p_from, p_to].',
            hint = 'Ask for a shorter range, e.g. chat_get_v11_metric_samples(now() - interval ''1 hour'', now()).';
    end if;
    return query
        select s.metric, s.cohort, s.bucket_start, s.numerator, s.denominator, s.value, s.written_at
          from chat_v11.metric_sample as s
         where s.bucket_start between p_from and p_to
         order by s.metric, s.cohort, s.bucket_start;
end
$$;

revoke all on function public.chat_get_v11_metric_samples(timestamptz, timestamptz) from public;
grant execute on function public.chat_get_v11_metric_samples(timestamptz, timestamptz) to chat_rollout_reader;
comment on function public.chat_get_v11_metric_samples(timestamptz, timestamptz) is
'The stored 10-second buckets whose start lies in [p_from, p_to] (at most 31 days), by metric, cohort and time: '
'numerator, denominator, value and when each was written. Read-only; RO011 for a missing, reversed or too long range.';
