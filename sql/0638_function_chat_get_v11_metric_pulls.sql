-- What the puller read for the buckets of a time range (bucket_start between p_from and p_to, both included), for
-- readers: a postmortem's "what did the gate see, and where did it come from". At most 31 days per call.
create or replace function public.chat_get_v11_metric_pulls(p_from timestamptz, p_to timestamptz)
returns table (
    metric text,
    cohort text,
    bucket_start timestamptz,
    field text,
    query text,
    query_time timestamptz,
    outcome text,
    value double precision,
    answer_sha256 text,
    answer_excerpt text,
    pulled_at timestamptz,
    pulled_by text
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
                'the pull range must be two finite times running forward at most 31 days, not %s to %s',
                coalesce(p_from::text, 'null'), coalesce(p_to::text, 'null')
            ),
            detail = 'chat_get_v11_metric_pulls(p_from, p_to) returns the buckets whose start lies in [p_from, p_to].',
            hint = 'Ask for a shorter range, e.g. chat_get_v11_metric_pulls(now() - interval ''1 hour'', now()).';
    end if;
    return query
        select p.metric, p.cohort, p.bucket_start, p.field, p.query, p.query_time, p.outcome, p.value,
               p.answer_sha256, p.answer_excerpt, p.pulled_at, p.pulled_by
          from chat_v11.metric_pull as p
         where p.bucket_start between p_from and p_to
         order by p.metric, p.cohort, p.bucket_start, p.field;
end
$$;

revoke all on function public.chat_get_v11_metric_pulls(timestamptz, timestamptz) from public;
grant execute on function public.chat_get_v11_metric_pulls(timestamptz, timestamptz)
to chat_rollout_reader, chat_rollout_ingest;
comment on function public.chat_get_v11_metric_pulls(timestamptz, timestamptz) is
'What chat-rollout pull read for the buckets whose start lies in [p_from, p_to] (at most 31 days): per metric, '
'cohort, bucket and field the query sent (PromQL and time=), the outcome (value, empty, nan, multiple_series), the '
'value read, sha256 and excerpt of the raw answer, when and by whom. Read-only; RO011 for a bad range.';
