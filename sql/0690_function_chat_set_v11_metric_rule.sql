-- Changes the rule of one metric check: window, freshness, min_volume, factor, slack, threshold, alpha,
-- static_baseline (null clears it). Unknown keys and invalid values are refused; every change is audited.
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
        if exists (
            select from chat_v11.metric as m
             where m.metric = p_metric
               and ('NaN' in (m.min_volume, m.factor, m.slack, m.threshold, m.alpha, m.static_baseline)
                    or (m.severity = 'P0' and m.rule = 'zero' and m.threshold <> 0)
                    or m.window_length > interval '1 day' or m.freshness > m.window_length)
        ) then
            raise exception using errcode = 'check_violation', message = 'out of range';
        end if;
    exception when data_exception or check_violation or not_null_violation then
        raise exception using
            errcode = 'RO016',
            message = format('invalid metric rule for %s: %s', p_metric, chat_v11.shown(p_settings::text)),
            detail = format('%s. window and freshness are intervals (freshness <= window <= 1 day); min_volume, '
                            'factor (>= 1), slack (>= 0), threshold, alpha (0 to 0.5) and static_baseline (>= 0) '
                            'are numbers; a P0 exactly-zero rule keeps threshold 0.', sqlerrm),
            hint = 'Nothing was changed; send valid values.';
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
'threshold, alpha, static_baseline (null clears a static baseline). Unknown keys and invalid values are refused '
'(RO016); every change is audited.';
