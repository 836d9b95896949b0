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
