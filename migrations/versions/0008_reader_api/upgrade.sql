-- >>> sql/0632_function_chat_get_v11_metric_rules.sql
-- The metric catalog as readers see it: every release-gate check and the rule that judges it, in gate order.
create or replace function public.chat_get_v11_metric_rules()
returns table (
    metric text,
    ordinal integer,
    kind text,
    severity text,
    rule text,
    window_length interval,
    freshness interval,
    min_volume numeric,
    factor numeric,
    slack numeric,
    threshold numeric,
    alpha numeric,
    static_baseline numeric,
    description text
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select m.metric, m.ordinal, m.kind, m.severity, m.rule, m.window_length, m.freshness, m.min_volume, m.factor,
           m.slack, m.threshold, m.alpha, m.static_baseline, m.description
      from chat_v11.metric as m
     order by m.ordinal
$$;

revoke all on function public.chat_get_v11_metric_rules() from public;
grant execute on function public.chat_get_v11_metric_rules() to chat_rollout_reader;
comment on function public.chat_get_v11_metric_rules() is
'Every metric of the release gates, in gate order: kind, severity, rule and its settings (window, freshness, '
'minimum volume, factor, slack, threshold, alpha, static baseline), description. Read-only.';

-- >>> sql/0634_function_chat_get_v11_metric_samples.sql
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

-- >>> sql/0875_function_chat_get_v11_postmortem.sql
-- The postmortem of an incident as stored (null until one is put), for readers; RO030 for an unknown incident.
create or replace function public.chat_get_v11_postmortem(p_incident_id bigint)
returns jsonb
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select (chat_v11.get_incident(p_incident_id)).postmortem
$$;

revoke all on function public.chat_get_v11_postmortem(bigint) from public;
grant execute on function public.chat_get_v11_postmortem(bigint) to chat_rollout_reader;
comment on function public.chat_get_v11_postmortem(bigint) is
'The postmortem of the incident (JSON, playbook section 10), or null when none was put yet; RO030 for an unknown '
'incident. Read-only.';
