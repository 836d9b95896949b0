-- The metric sources (SPEC 7, "Prometheus in"): the PromQL the puller reads per metric and cohort, in gate order.
-- Readers see them; the ingest login of chat-rollout pull reads them to know what to query.
create or replace function public.chat_get_v11_metric_sources()
returns table (
    metric text,
    cohort text,
    kind text,
    numerator text,
    denominator text,
    value text,
    changed_at timestamptz,
    changed_by text
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select s.metric, s.cohort, m.kind, s.source ->> 'numerator', s.source ->> 'denominator', s.source ->> 'value',
           s.changed_at, s.changed_by
      from chat_v11.metric_source as s
      join chat_v11.metric as m on m.metric = s.metric
     order by m.ordinal, s.cohort
$$;

revoke all on function public.chat_get_v11_metric_sources() from public;
grant execute on function public.chat_get_v11_metric_sources() to chat_rollout_reader, chat_rollout_ingest;
comment on function public.chat_get_v11_metric_sources() is
'Every metric source, in gate order: metric, cohort, kind, the PromQL of numerator, denominator and value (null '
'where the kind has none), when and by whom it was set. Read-only; readers and the ingest login of the puller.';
