-- One row per release-gate check at p_at, for a given stage and kill switch (SPEC 4.5).
-- Fail closed: this schema version stores no metric samples yet, so P0 checks are inconclusive,
-- and P1 checks are inconclusive too unless there is no v1.1 traffic by design.
create or replace function chat_v11.evaluate_checks(
    p_at timestamptz,
    p_stage text,
    p_kill_switch boolean,
    p_p0_window interval default null
)
returns table (
    metric text,
    severity text,
    scope text,
    "window" interval,
    value numeric,
    baseline numeric,
    threshold numeric,
    volume numeric,
    status text,
    explanation text,
    newest_bucket timestamptz,
    oldest_bucket timestamptz
)
language sql
stable
as $$
    select
        m.metric,
        m.severity,
        case
            when m.severity = 'P1' then 'canary vs control'
            when m.rule = 'threshold' then 'per cohort'
            else 'all cohorts'
        end,
        case when m.severity = 'P0' then coalesce(p_p0_window, m.window_length) else m.window_length end,
        null::numeric,
        m.static_baseline,
        case when m.severity = 'P0' then m.threshold end,
        0::numeric,
        case
            when m.severity = 'P1' and (p_kill_switch or p_stage = 'off') then 'not_applicable'
            else 'inconclusive'
        end,
        case
            when m.severity = 'P1' and p_kill_switch
                then 'not applicable: the kill switch is on, so there is no v1.1 traffic by design'
            when m.severity = 'P1' and p_stage = 'off'
                then 'not applicable: stage off, so there is no v1.1 traffic by design'
            else format(
                'no data: no samples in the %s min before %s UTC (needs %s %s); '
                'this schema version stores no metric samples yet, so the check fails closed',
                (extract(epoch from m.window_length) / 60)::numeric(10, 1),
                pg_catalog.to_char(p_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                m.min_volume,
                case when m.kind = 'rate' then 'events' else 'reported buckets' end
            )
        end,
        null::timestamptz,
        null::timestamptz
      from chat_v11.metric as m
     order by m.ordinal
$$;

revoke all on function chat_v11.evaluate_checks(timestamptz, text, boolean, interval) from public;
comment on function chat_v11.evaluate_checks(timestamptz, text, boolean, interval) is
'Release-gate checks at p_at for the given stage and kill switch: pass, fail, inconclusive or not_applicable.';
