-- Changes the rule of one metric check: window, freshness, min_volume, factor, slack, threshold, alpha,
-- static_baseline (null clears it), each only where the metric's rule uses it and within the bounds of README's
-- configuration table (RO016 naming the value and the range); every change is audited.
create or replace function public.chat_set_v11_metric_rule(p_metric text, p_settings jsonb)
returns table (
    metric text,
    severity text,
    rule text,
    "window" interval,
    freshness interval,
    min_volume numeric,
    factor numeric,
    slack numeric,
    threshold numeric,
    alpha numeric,
    static_baseline numeric
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_old jsonb;
    v_unknown text;
    v_rule record;
    v_applies text[];
    v_problems text[];
    v_keys constant text[] := array[
        'window', 'freshness', 'min_volume', 'factor', 'slack', 'threshold', 'alpha', 'static_baseline'
    ];
begin
    perform chat_v11.begin_write('chat_set_v11_metric_rule');
    select pg_catalog.to_jsonb(m.*) into v_old from chat_v11.metric as m where m.metric = p_metric for update;
    if v_old is null then
        raise exception using
            errcode = 'RO021',
            message = format('unknown metric %s', chat_v11.shown(p_metric)),
            detail = format('Known metrics: %s.',
                            (select string_agg(m.metric, ', ' order by m.ordinal) from chat_v11.metric as m)),
            hint = 'Name a metric of the catalog.';
    end if;
    if p_settings is null or jsonb_typeof(p_settings) <> 'object' or p_settings = '{}' then
        raise exception using
            errcode = 'RO016',
            message = 'p_settings must be a non-empty JSON object',
            detail = format('Keys: %s.', array_to_string(v_keys, ', ')),
            hint = 'For example: chat_set_v11_metric_rule(''full_state_rate'', ''{"factor": 2, "window": "20 minutes"}'').';
    end if;
    select string_agg(quote_literal(k), ', ') into v_unknown
      from jsonb_object_keys(p_settings) as k where k <> all (v_keys);
    if v_unknown is not null then
        raise exception using
            errcode = 'RO016',
            message = format('unknown metric rule keys: %s', v_unknown),
            detail = format('Known keys: %s.', array_to_string(v_keys, ', ')),
            hint = 'Check the spelling; nothing was changed.';
    end if;

    select string_agg(format('%s (%s)', e.key, jsonb_typeof(e.value)), ', ' order by e.key) into v_unknown
      from jsonb_each(p_settings) as e
     where jsonb_typeof(e.value) <> case when e.key in ('window', 'freshness') then 'string' else 'number' end
       and not (e.key = 'static_baseline' and jsonb_typeof(e.value) = 'null');
    if v_unknown is not null then
        raise exception using
            errcode = 'RO016',
            message = format('wrong JSON type for metric rule keys: %s', v_unknown),
            detail = 'window and freshness are interval strings such as "20 minutes"; the other keys are JSON numbers; '
                || 'static_baseline may be null (no static baseline).',
            hint = 'Nothing was changed; send valid values.';
    end if;

    -- only the keys the metric's rule reads: a setting that changes nothing must not look like it does
    select m.kind, m.rule into v_rule from chat_v11.metric as m where m.metric = p_metric;
    v_applies := array['window', 'freshness', 'min_volume']
        || case
            when v_rule.rule = 'threshold' then array['threshold']
            when v_rule.rule = 'baseline_ratio' and v_rule.kind = 'rate'
                then array['factor', 'slack', 'alpha', 'static_baseline']
            when v_rule.rule = 'baseline_ratio' then array['factor', 'static_baseline']
            else '{}'::text[]
        end;
    select string_agg(quote_literal(k), ', ' order by k) into v_unknown
      from jsonb_object_keys(p_settings) as k where k <> all (v_applies);
    if v_unknown is not null then
        raise exception using
            errcode = 'RO016',
            message = format('metric rule keys %s do not apply to %s', v_unknown, p_metric),
            detail = format('%s is a %s metric with rule %s; its keys: %s.', p_metric, v_rule.kind, v_rule.rule,
                            array_to_string(v_applies, ', ')),
            hint = 'Nothing was changed; send only the keys of this rule.';
    end if;

    begin
        update chat_v11.metric as m
           set window_length = coalesce((p_settings ->> 'window')::interval, m.window_length),
               freshness = coalesce((p_settings ->> 'freshness')::interval, m.freshness),
               min_volume = coalesce((p_settings ->> 'min_volume')::numeric, m.min_volume),
               factor = case when p_settings ? 'factor' then (p_settings ->> 'factor')::numeric else m.factor end,
               slack = case when p_settings ? 'slack' then (p_settings ->> 'slack')::numeric else m.slack end,
               threshold = case when p_settings ? 'threshold' then (p_settings ->> 'threshold')::numeric
                                else m.threshold end,
               alpha = case when p_settings ? 'alpha' then (p_settings ->> 'alpha')::numeric else m.alpha end,
               static_baseline = case when p_settings ? 'static_baseline'
                                      then (p_settings ->> 'static_baseline')::numeric else m.static_baseline end
         where m.metric = p_metric;
        -- the bounds of every value a gate computes with (README, configuration): out of them a check overflows,
        -- can never fail (a healthy-looking gate over a 100 % stall) or always fails (a kill of a healthy rollout)
        select array_remove(array[
            case when 'NaN' in (m.min_volume, m.factor, m.slack, m.threshold, m.alpha, m.static_baseline)
                then 'NaN is not a value' end,
            case when m.window_length not between interval '1 minute' and interval '1 day'
                then format('window %s: between 1 minute and 1 day', m.window_length) end,
            case when m.freshness not between interval '10 seconds' and m.window_length
                then format('freshness %s: between 10 seconds and the window (%s)', m.freshness, m.window_length) end,
            case when m.min_volume < 1 or m.min_volume <> trunc(m.min_volume)
                      or (m.kind = 'rate' and m.min_volume > 1000000000)
                then format('min_volume %s: a whole number of at least 1%s', m.min_volume,
                            case when m.kind = 'rate' then ' and at most 1000000000 events' else '' end)
                 when m.kind <> 'rate'
                      and m.min_volume > extract(epoch from m.window_length)::numeric / 10
                then format('min_volume %s: at most %s, the 10-second buckets one cohort reports in the window %s',
                            m.min_volume, floor(extract(epoch from m.window_length)::numeric / 10), m.window_length)
            end,
            case when m.factor not between 1 and 10
                then format('factor %s: between 1 and 10', m.factor) end,
            case when m.rule = 'baseline_ratio' and m.kind = 'rate' and m.slack not between 0 and 0.1
                then format('slack %s: between 0 and 0.1 (an absolute rate)', m.slack) end,
            case when m.alpha <= 0 or m.alpha >= 0.5
                then format('alpha %s: above 0 and below 0.5', m.alpha) end,
            case when m.rule = 'threshold' and m.kind = 'rate' and m.threshold not between 0 and 0.5
                then format('threshold %s: a rate threshold is between 0 and 0.5 (1 or more lets a 100 %% rate pass, '
                            'below 0 fails a healthy rollout)', m.threshold)
                 when m.rule = 'threshold' and m.kind = 'count'
                      and (m.threshold not between 0 and 1000000000 or m.threshold <> trunc(m.threshold))
                then format('threshold %s: a count threshold is a whole number from 0 to 1000000000', m.threshold)
                 when m.rule = 'threshold' and m.kind = 'latency_ms' and not (m.threshold > 0 and m.threshold <= 600000)
                then format('threshold %s: a latency threshold is above 0 and at most 600000 ms', m.threshold)
                 when m.rule in ('zero', 'no_new') and m.threshold <> 0
                then format('threshold %s: an exactly-zero rule keeps threshold 0', m.threshold)
            end,
            case when m.kind = 'rate' and m.static_baseline not between 0 and 0.5
                then format('static_baseline %s: a rate baseline is between 0 and 0.5', m.static_baseline)
                 when m.kind = 'rate' and m.static_baseline * m.factor + coalesce(m.slack, 0) >= 1
                then format('static_baseline %s x factor %s + slack %s = %s: the limit must stay below 1 or the check '
                            'can never fail', m.static_baseline, m.factor, coalesce(m.slack, 0),
                            m.static_baseline * m.factor + coalesce(m.slack, 0))
                 when m.kind = 'latency_ms' and not (m.static_baseline > 0 and m.static_baseline <= 600000)
                then format('static_baseline %s: a latency baseline is above 0 and at most 600000 ms',
                            m.static_baseline)
            end
        ], null)
          into v_problems
          from chat_v11.metric as m
         where m.metric = p_metric;
        if cardinality(v_problems) > 0 then
            raise exception using errcode = 'check_violation', message = array_to_string(v_problems, '; ');
        end if;
    exception when data_exception or check_violation or not_null_violation then
        raise exception using
            errcode = 'RO016',
            message = format('invalid metric rule for %s: %s', p_metric, chat_v11.shown(p_settings::text)),
            detail = format('%s. Ranges: window 1 minute to 1 day; freshness 10 seconds to the window; min_volume a '
                            'whole number >= 1 (buckets: at most the window / 10 s); factor 1 to 10; slack 0 to 0.1; '
                            'alpha above 0, below 0.5; threshold of a rate 0 to 0.5; static_baseline of a rate 0 to '
                            '0.5 (with factor and slack below 1), of a latency above 0 to 600000 ms.',
                            chat_v11.shown(sqlerrm)),
            hint = 'Nothing was changed; send values within the ranges.';
    end;

    insert into chat_v11.config_change (actor, target, target_key, old_value, new_value)
    select chat_v11.claimed_actor(), 'metric_rule', p_metric, v_old, pg_catalog.to_jsonb(m.*)
      from chat_v11.metric as m where m.metric = p_metric;
    return query
        select m.metric, m.severity, m.rule, m.window_length, m.freshness, m.min_volume, m.factor, m.slack,
               m.threshold, m.alpha, m.static_baseline
          from chat_v11.metric as m where m.metric = p_metric;
end
$$;

revoke all on function public.chat_set_v11_metric_rule(text, jsonb) from public;
grant execute on function public.chat_set_v11_metric_rule(text, jsonb) to chat_rollout_admin;
comment on function public.chat_set_v11_metric_rule(text, jsonb) is
'Admin: change a metric check''s rule with a JSON object of window, freshness, min_volume, factor, slack, '
'threshold, alpha, static_baseline (null clears a static baseline), each only where the rule uses it. Unknown or '
'inapplicable keys and values out of range (README, configuration) are refused (RO016); every change is audited.';
