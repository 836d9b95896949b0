-- Sets where the puller reads one metric for one cohort (SPEC 7, "Prometheus in"): a JSON object of PromQL
-- expressions, one per sample field the metric's kind needs (a rate: numerator and denominator; a count: numerator,
-- optionally denominator; a latency: value); a null source removes it. Each expression is evaluated at the end of
-- the bucket (time = bucket_start + 10 s) and must answer one series: sum(x{cohort="canary"}) - sum(x{…} offset 10s).
-- Refusals: unknown metric (RO021), a wrong cohort, shape, key set or blank or oversized expression (RO016);
-- every change is audited in chat_v11.config_change (target metric_source, key "metric/cohort").
create or replace function public.chat_set_v11_metric_source(p_metric text, p_cohort text, p_source jsonb)
returns table (metric text, cohort text, source jsonb, changed_at timestamptz, changed_by text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_kind text;
    v_old jsonb;
    v_new jsonb;
    v_bad text;
    v_required text[];
    v_allowed text[];
    v_example constant text :=
        'For example: chat_set_v11_metric_source(''ack_without_receipt_10s_rate'', ''canary'', '
        || '''{"numerator": "sum(chat_acks_without_receipt_total{cohort=\"canary\"}) - '
        || 'sum(chat_acks_without_receipt_total{cohort=\"canary\"} offset 10s)", "denominator": '
        || '"sum(chat_acks_total{cohort=\"canary\"}) - sum(chat_acks_total{cohort=\"canary\"} offset 10s)"}'').';
begin
    perform chat_v11.begin_write('chat_set_v11_metric_source');
    select m.kind into v_kind from chat_v11.metric as m where m.metric = p_metric for share;
    if v_kind is null then
        raise exception using
            errcode = 'RO021',
            message = format('unknown metric %s', chat_v11.shown(p_metric)),
            detail = format('Known metrics: %s.',
                            (select string_agg(m.metric, ', ' order by m.ordinal) from chat_v11.metric as m)),
            hint = 'Name a metric of the catalog.';
    end if;
    if p_cohort is null or p_cohort not in ('canary', 'control') then
        raise exception using
            errcode = 'RO016',
            message = format('cohort %s must be "canary" or "control"', chat_v11.shown(p_cohort)),
            detail = 'A metric has one source per cohort: canary (v1.1 traffic) and control (the rest).',
            hint = 'Nothing was changed; name the cohort.';
    end if;
    v_required := case v_kind
        when 'rate' then array['numerator', 'denominator']
        when 'count' then array['numerator']
        else array['value']
    end;
    v_allowed := case v_kind when 'count' then array['numerator', 'denominator'] else v_required end;

    if p_source is not null then
        if jsonb_typeof(p_source) <> 'object' then
            raise exception using
                errcode = 'RO016',
                message = format('p_source must be a JSON object of PromQL expressions, not %s', jsonb_typeof(p_source)),
                detail = format('%s is a %s metric: keys %s.', p_metric, v_kind, array_to_string(v_allowed, ', ')),
                hint = v_example;
        end if;
        select string_agg(quote_literal(k), ', ' order by k) into v_bad
          from jsonb_object_keys(p_source) as k where k <> all (v_allowed);
        if v_bad is not null then
            raise exception using
                errcode = 'RO016',
                message = format('metric source keys %s do not apply to %s', v_bad, p_metric),
                detail = format('%s is a %s metric: keys %s (required: %s).', p_metric, v_kind,
                                array_to_string(v_allowed, ', '), array_to_string(v_required, ', ')),
                hint = 'Nothing was changed; send only the keys of this kind.';
        end if;
        select string_agg(k, ', ' order by k) into v_bad
          from unnest(v_required) as k where not p_source ? k;
        if v_bad is not null then
            raise exception using
                errcode = 'RO016',
                message = format('metric source of %s is missing %s', p_metric, v_bad),
                detail = format('%s is a %s metric: keys %s (required: %s). A null source removes it.', p_metric,
                                v_kind, array_to_string(v_allowed, ', '), array_to_string(v_required, ', ')),
                hint = v_example;
        end if;
        select string_agg(e.key, ', ' order by e.key) into v_bad
          from jsonb_each(p_source) as e
         where jsonb_typeof(e.value) <> 'string'
            or chat_v11.is_blank(e.value #>> '{}')
            or length(e.value #>> '{}') > 4000;
        if v_bad is not null then
            raise exception using
                errcode = 'RO016',
                message = format('metric source keys %s must be non-blank PromQL strings', v_bad),
                detail = 'Each field is one PromQL expression as a JSON string of at most 4000 characters, answering '
                    || 'one series at the end of the bucket (time = bucket_start + 10 s).',
                hint = v_example;
        end if;
    end if;

    select pg_catalog.to_jsonb(s.*) into v_old
      from chat_v11.metric_source as s where s.metric = p_metric and s.cohort = p_cohort for update;
    if p_source is null then
        delete from chat_v11.metric_source as s where s.metric = p_metric and s.cohort = p_cohort;
    else
        insert into chat_v11.metric_source as s (metric, cohort, source)
        values (p_metric, p_cohort, p_source)
        on conflict on constraint metric_source_pkey do update
            set source = excluded.source, changed_at = pg_catalog.clock_timestamp(), changed_by = session_user;
    end if;
    select pg_catalog.to_jsonb(s.*) into v_new
      from chat_v11.metric_source as s where s.metric = p_metric and s.cohort = p_cohort;
    if v_old is not null or v_new is not null then
        insert into chat_v11.config_change (actor, target, target_key, old_value, new_value)
        values (chat_v11.claimed_actor(), 'metric_source', p_metric || '/' || p_cohort, v_old,
                coalesce(v_new, 'null'::jsonb));
    end if;
    return query
        select p_metric, p_cohort, s.source, s.changed_at, s.changed_by
          from (select) as one
          left join chat_v11.metric_source as s on s.metric = p_metric and s.cohort = p_cohort;
end
$$;

revoke all on function public.chat_set_v11_metric_source(text, text, jsonb) from public;
grant execute on function public.chat_set_v11_metric_source(text, text, jsonb) to chat_rollout_admin;
comment on function public.chat_set_v11_metric_source(text, text, jsonb) is
'Admin: set the PromQL that chat-rollout pull reads for one metric and cohort, a JSON object with the fields of the '
'metric''s kind (rate: numerator, denominator; count: numerator, optional denominator; latency_ms: value), each '
'evaluated at the end of the 10-second bucket; a null source removes it. RO021 unknown metric, RO016 wrong cohort, '
'keys or expressions; every change is audited.';
