-- >>> sql/0160_table_metric_sample.sql
-- Metric samples: one 10-second bucket per (metric, cohort), replaced when re-sent (SPEC 4.4).
create table chat_v11.metric_sample (
    metric text not null,
    cohort text not null,
    bucket_start timestamptz not null,
    numerator bigint,
    denominator bigint,
    value double precision,
    written_at timestamptz not null default pg_catalog.clock_timestamp(),
    constraint metric_sample_pkey primary key (metric, cohort, bucket_start),
    constraint metric_sample_cohort_valid check (cohort in ('canary', 'control')),
    constraint metric_sample_bucket_aligned check (
        pg_catalog.date_trunc('second', bucket_start) = bucket_start
        and extract(second from bucket_start)::integer % 10 = 0
    ),
    constraint metric_sample_counts_valid check (
        (numerator is null or numerator >= 0)
        and (denominator is null or denominator >= 0)
        and (numerator is null or denominator is null or numerator <= denominator)
    ),
    constraint metric_sample_value_valid check (
        value is null or (value >= 0 and value < 'Infinity'::double precision)
    )
);

comment on table chat_v11.metric_sample is
'10-second metric buckets per cohort (canary = v1.1 traffic, control = the rest). '
'Write with public.chat_put_v11_metric_samples(); a re-sent bucket replaces the stored one.';

-- >>> sql/0350_function_normal_cdf.sql
-- The standard normal distribution function, for the one-sided test of a P1 excess (SPEC 4.5).
-- Abramowitz and Stegun 26.2.17: absolute error below 7.5e-8; beyond 37 sigma it is 0 or 1 (no underflow).
create or replace function chat_v11.normal_cdf(p_z double precision)
returns double precision
language sql
immutable
strict
parallel safe
as $$
    select case when p_z >= 0 then 1 - tail else tail end
      from (
          select pg_catalog.exp(-0.5 * z * z) / pg_catalog.sqrt(2 * pg_catalog.pi())
                 * t * (0.319381530 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429))))
                     as tail
            from (select least(abs(p_z), 37) as z, 1 / (1 + 0.2316419 * least(abs(p_z), 37)) as t) as arg
      ) as q
$$;

revoke all on function chat_v11.normal_cdf(double precision) from public;
comment on function chat_v11.normal_cdf(double precision) is
'Standard normal CDF (Abramowitz-Stegun 26.2.17), used for the significance of a P1 excess.';

-- >>> sql/0360_function_cohort_window.sql
-- Aggregates of one metric and cohort over the buckets in (p_from, p_to].
create or replace function chat_v11.cohort_window(p_metric text, p_cohort text, p_from timestamptz, p_to timestamptz)
returns table (
    numerator numeric,
    denominator numeric,
    buckets bigint,
    newest timestamptz,
    oldest timestamptz,
    median_value double precision
)
language sql
stable
as $$
    select pg_catalog.sum(s.numerator)::numeric,
           pg_catalog.sum(s.denominator)::numeric,
           pg_catalog.count(*),
           pg_catalog.max(s.bucket_start),
           pg_catalog.min(s.bucket_start),
           pg_catalog.percentile_cont(0.5) within group (order by s.value)
      from chat_v11.metric_sample as s
     where s.metric = p_metric
       and s.cohort = p_cohort
       and s.bucket_start > p_from
       and s.bucket_start <= p_to
$$;

revoke all on function chat_v11.cohort_window(text, text, timestamptz, timestamptz) from public;
comment on function chat_v11.cohort_window(text, text, timestamptz, timestamptz) is
'Sum of numerators and denominators, bucket count, newest/oldest bucket and median value of one metric '
'and cohort over (p_from, p_to].';

-- >>> sql/0370_function_sample_shape_problem.sql
-- What is wrong with the JSON shape of one ingestion sample, or no row when its fields can be read:
-- an object with known keys, a string metric and cohort, an ISO 8601 bucket_start with an offset,
-- whole non-negative counts and a finite value, all as JSON numbers (SPEC 4.4).
create or replace function chat_v11.sample_shape_problem(p_sample jsonb)
returns table (code text, problem text)
language sql
immutable
as $$
    with f as (
        select
            pg_catalog.jsonb_typeof(p_sample) as t,
            pg_catalog.jsonb_typeof(p_sample -> 'metric') as t_metric,
            pg_catalog.jsonb_typeof(p_sample -> 'cohort') as t_cohort,
            pg_catalog.jsonb_typeof(p_sample -> 'bucket_start') as t_bucket,
            pg_catalog.jsonb_typeof(p_sample -> 'numerator') as t_num,
            pg_catalog.jsonb_typeof(p_sample -> 'denominator') as t_den,
            pg_catalog.jsonb_typeof(p_sample -> 'value') as t_value
    ),
    checks as (
        select case
            when f.t is distinct from 'object' then 'the sample is not a JSON object'
            when exists (
                select from pg_catalog.jsonb_object_keys(p_sample) as k (key)
                 where k.key not in ('metric', 'cohort', 'bucket_start', 'numerator', 'denominator', 'value')
            ) then 'unknown key ' || (
                select pg_catalog.string_agg(pg_catalog.quote_literal(k.key), ', ')
                  from pg_catalog.jsonb_object_keys(p_sample) as k (key)
                 where k.key not in ('metric', 'cohort', 'bucket_start', 'numerator', 'denominator', 'value')
            )
            when f.t_metric is distinct from 'string' then 'metric must be a JSON string'
            when f.t_cohort is distinct from 'string' then 'cohort must be a JSON string: "canary" or "control"'
            when f.t_bucket is distinct from 'string'
                 or (p_sample ->> 'bucket_start')
                 !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|z|[+-]\d{2}(:?\d{2})?)$'
                then 'bucket_start must be an ISO 8601 timestamp with an offset, e.g. 2026-11-26T10:00:10Z'
            when f.t_num not in ('number', 'null') or f.t_den not in ('number', 'null')
                 or f.t_value not in ('number', 'null')
                then 'numerator, denominator and value must be JSON numbers (NaN and Infinity are not)'
            when (p_sample ->> 'numerator')::numeric < 0 or (p_sample ->> 'denominator')::numeric < 0
                then 'negative count'
            when (p_sample ->> 'numerator')::numeric <> pg_catalog.trunc((p_sample ->> 'numerator')::numeric)
                 or (p_sample ->> 'denominator')::numeric <> pg_catalog.trunc((p_sample ->> 'denominator')::numeric)
                then 'numerator and denominator are counts: whole numbers'
            when (p_sample ->> 'numerator')::numeric > 9223372036854775807
                 or (p_sample ->> 'denominator')::numeric > 9223372036854775807
                then 'count out of range'
            when abs((p_sample ->> 'value')::numeric) > 1e12
                then 'value must be between 0 and 1e12'
        end as problem
          from f
    )
    select 'RO022', c.problem from checks as c where c.problem is not null
$$;

revoke all on function chat_v11.sample_shape_problem(jsonb) from public;
comment on function chat_v11.sample_shape_problem(jsonb) is
'The JSON-shape problem of one ingestion sample (not an object, unknown key, wrong JSON type, NaN, '
'fractional or out-of-range count), or no row when its fields can be read as typed values.';

-- >>> sql/0375_function_sample_problem.sql
-- What is wrong with one typed metric sample, or no row when it may be stored (SPEC 4.4):
-- unknown metric (RO021), wrong cohort, negative or missing counts, numerator > denominator, NaN or
-- Infinity (RO022), bucket not aligned to 10 s (RO023), more than 5 minutes in the future (RO024).
create or replace function chat_v11.sample_problem(
    p_kind text,
    p_metric text,
    p_cohort text,
    p_bucket_start timestamptz,
    p_numerator bigint,
    p_denominator bigint,
    p_value double precision,
    p_now timestamptz
)
returns table (code text, problem text)
language sql
stable
as $$
    select pg_catalog.split_part(v.verdict, ':', 1), pg_catalog.substr(v.verdict, 7)
      from (
          select case
              when p_kind is null then 'RO021:unknown metric ' || coalesce(pg_catalog.quote_literal(p_metric), 'null')
              when p_cohort is null or p_cohort not in ('canary', 'control')
                  then 'RO022:cohort must be "canary" or "control"'
              when p_bucket_start is null then 'RO022:bucket_start is missing'
              when p_bucket_start in ('infinity', '-infinity') then 'RO022:bucket_start must be a finite timestamp'
              when p_numerator < 0 or p_denominator < 0 then 'RO022:negative count'
              when p_kind = 'rate' and (p_numerator is null or p_denominator is null)
                  then 'RO022:a rate needs numerator and denominator'
              when p_kind = 'rate' and p_numerator > p_denominator
                  then 'RO022:numerator is greater than denominator'
              when p_kind = 'count' and p_numerator is null then 'RO022:a count needs numerator'
              when p_kind = 'latency_ms' and p_value is null then 'RO022:a latency needs value (milliseconds)'
              when p_value in ('NaN', 'Infinity', '-Infinity') then 'RO022:value must be a finite number'
              when p_value < 0 or p_value > 1e12 then 'RO022:value must be between 0 and 1e12'
              when pg_catalog.date_trunc('second', p_bucket_start) <> p_bucket_start
                   or extract(second from p_bucket_start)::integer % 10 <> 0
                  then 'RO023:bucket_start is not aligned to 10 seconds'
              when p_bucket_start > p_now + interval '5 minutes'
                  then 'RO024:bucket_start is more than 5 minutes in the future'
          end as verdict
      ) as v
     where v.verdict is not null
$$;

revoke all on function chat_v11.sample_problem(
    text,
    text,
    text,
    timestamptz,
    bigint,
    bigint,
    double precision,
    timestamptz
) from public;
comment on function chat_v11.sample_problem(
    text,
    text,
    text,
    timestamptz,
    bigint,
    bigint,
    double precision,
    timestamptz
) is
'The SQLSTATE and problem of one typed ingestion sample, or no row when it may be stored.';

-- >>> sql/0380_function_is_timestamptz.sql
-- True when a text is a valid timestamptz (used only to name a malformed sample).
create or replace function chat_v11.is_timestamptz(p_text text)
returns boolean
language plpgsql
stable
as $$
begin
    perform p_text::timestamptz;
    return true;
exception when others then
    return false;
end
$$;

revoke all on function chat_v11.is_timestamptz(text) from public;
comment on function chat_v11.is_timestamptz(text) is
'True when the text casts to timestamptz (slow path of sample validation).';

-- >>> sql/0385_function_reject_sample.sql
-- Raises the refusal of a whole ingestion batch for its first bad sample (named by position).
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
        detail = format('Sample %s: %s. Nothing was written.', p_ord, pg_catalog.left(p_sample, 300)),
        hint = case p_code
            when 'RO021' then 'Use a metric of the catalog: ' || (
                select pg_catalog.string_agg(m.metric, ', ' order by m.ordinal) from chat_v11.metric as m)
            when 'RO023' then 'Round bucket_start down to a multiple of 10 seconds.'
            when 'RO024' then 'Check the writer''s clock: buckets may be at most 5 minutes ahead of the server.'
            when 'RO025' then 'Send each (metric, cohort, bucket_start) once per batch.'
            else 'Fix the sample and send the whole batch again; samples are '
                || '{metric, cohort, bucket_start, numerator, denominator, value}.'
        end;
end
$$;

revoke all on function chat_v11.reject_sample(bigint, bigint, text, text, text) from public;
comment on function chat_v11.reject_sample(bigint, bigint, text, text, text) is
'Raises the refusal of an ingestion batch naming its first bad sample (SQLSTATE RO021-RO025).';

-- >>> sql/0400_function_evaluate_checks.sql
-- One row per release-gate check at p_at for a given stage and kill switch (SPEC 4.5).
-- Samples count when bucket_start is in (p_at - window, p_at]. p_p0_window, when given, replaces the
-- P0 windows (the exit window of a resume). Missing, stale or thin data never passes.
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
language plpgsql
stable
-- the window queries always want the (metric, cohort, bucket_start) index: a generic plan is right, and
-- re-planning them on every call (custom plans) would make the cost grow with the history kept
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    m record;
    c record;
    b record;
    v_window interval;
    v_from timestamptz;
    v_events numeric;
    v_den numeric;
    v_buckets bigint;
    v_fresh boolean;
    v_c_fresh boolean;
    v_b_fresh boolean;
    v_c_rate numeric;
    v_b_rate numeric;
    v_limit numeric;
    v_se double precision;
    v_z double precision;
    v_p double precision;
    v_no_traffic text;
    v_at text := pg_catalog.to_char(p_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS');
begin
    v_no_traffic := case
        when p_kill_switch then 'not applicable: the kill switch is on, so there is no v1.1 traffic by design'
        when p_stage = 'off' then 'not applicable: stage off, so there is no v1.1 traffic by design'
    end;
    for m in select * from chat_v11.metric as x order by x.ordinal loop
        v_window := case when m.severity = 'P0' then coalesce(p_p0_window, m.window_length) else m.window_length end;
        v_from := p_at - v_window;
        select * into c from chat_v11.cohort_window(m.metric, 'canary', v_from, p_at);
        select * into b from chat_v11.cohort_window(m.metric, 'control', v_from, p_at);

        metric := m.metric;
        severity := m.severity;
        "window" := v_window;
        baseline := null;
        threshold := null;
        value := null;
        newest_bucket := greatest(c.newest, b.newest);
        oldest_bucket := least(c.oldest, b.oldest);
        v_buckets := c.buckets + b.buckets;
        v_fresh := newest_bucket is not null and newest_bucket >= p_at - m.freshness;

        if m.severity = 'P0' then
            -- P0: all cohorts; any event fails whatever the volume; volume and freshness decide pass
            v_events := coalesce(c.numerator, 0) + coalesce(b.numerator, 0);
            v_den := coalesce(c.denominator, 0) + coalesce(b.denominator, 0);
            scope := case when m.rule = 'threshold' then 'per cohort' else 'all cohorts' end;
            threshold := m.threshold;
            if m.kind = 'rate' then
                volume := v_den;
                value := case when v_den > 0 then round(v_events / v_den, 6) end;
            else
                volume := v_buckets;
                value := v_events;
            end if;
            if m.rule = 'threshold' then
                v_c_rate := case when c.denominator > 0 then c.numerator / c.denominator end;
                v_b_rate := case when b.denominator > 0 then b.numerator / b.denominator end;
                value := round(greatest(v_c_rate, v_b_rate), 6);
            end if;

            if m.rule in ('zero', 'no_new') and v_events > 0 then
                status := 'fail';
                explanation := format('%s events in the %s before %s UTC over all cohorts (canary %s, control %s)%s',
                                      v_events, v_window, v_at, coalesce(c.numerator, 0), coalesce(b.numerator, 0),
                                      case when m.kind = 'rate' and v_den > 0
                                          then format(', rate %s', round(v_events / v_den, 6)) else '' end);
            elsif m.rule = 'threshold' and (v_c_rate > m.threshold or v_b_rate > m.threshold) then
                status := 'fail';
                explanation := format('rate above the threshold %s in the %s before %s UTC: canary %s, control %s',
                                      m.threshold, v_window, v_at,
                                      coalesce(round(v_c_rate, 6)::text, 'no data'),
                                      coalesce(round(v_b_rate, 6)::text, 'no data'));
            elsif newest_bucket is null then
                status := 'inconclusive';
                explanation := format('no data: no samples in the %s before %s UTC', v_window, v_at);
            elsif volume < m.min_volume then
                status := 'inconclusive';
                explanation := format('too little data: volume %s, needs at least %s %s', volume, m.min_volume,
                                      case when m.kind = 'rate' then 'events' else 'buckets' end);
            elsif not v_fresh then
                status := 'inconclusive';
                explanation := format('stale: the newest bucket (%s UTC) is older than %s',
                                      pg_catalog.to_char(newest_bucket at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                                      m.freshness);
            else
                status := 'pass';
                explanation := format('no events in the %s before %s UTC (volume %s, newest bucket %s UTC)',
                                      v_window, v_at, volume,
                                      pg_catalog.to_char(newest_bucket at time zone 'UTC', 'HH24:MI:SS'));
                if m.rule = 'threshold' then
                    explanation := format('every cohort at or below %s in the %s before %s UTC (volume %s)',
                                          m.threshold, v_window, v_at, volume);
                end if;
            end if;
        else
            -- P1: canary against the control baseline (or the static baseline), per cohort
            scope := 'canary vs control';
            v_c_fresh := c.newest is not null and c.newest >= p_at - m.freshness;
            v_b_fresh := b.newest is not null and b.newest >= p_at - m.freshness;
            if m.kind = 'rate' then
                volume := coalesce(c.denominator, 0);
                v_c_rate := case when c.denominator > 0 then c.numerator / c.denominator end;
                v_b_rate := case
                    when coalesce(b.denominator, 0) >= m.min_volume and v_b_fresh then b.numerator / b.denominator
                    else m.static_baseline
                end;
            else
                volume := c.buckets;
                v_c_rate := c.median_value;
                v_b_rate := case
                    when b.buckets >= m.min_volume and v_b_fresh then b.median_value
                    else m.static_baseline
                end;
            end if;
            v_limit := v_b_rate * m.factor + coalesce(m.slack, 0);
            value := round(v_c_rate, case when m.kind = 'rate' then 6 else 1 end);
            baseline := round(v_b_rate, case when m.kind = 'rate' then 6 else 1 end);
            threshold := round(v_limit, case when m.kind = 'rate' then 6 else 1 end);

            if v_no_traffic is not null then
                status := 'not_applicable';
                explanation := v_no_traffic;
            elsif c.newest is null then
                status := 'inconclusive';
                explanation := format('no data: no canary samples in the %s before %s UTC', v_window, v_at);
            elsif volume < m.min_volume then
                status := 'inconclusive';
                explanation := format('too little canary data: volume %s, needs at least %s %s', volume,
                                      m.min_volume, case when m.kind = 'rate' then 'events' else 'buckets' end);
            elsif not v_c_fresh then
                status := 'inconclusive';
                explanation := format('stale: the newest canary bucket (%s UTC) is older than %s',
                                      pg_catalog.to_char(c.newest at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                                      m.freshness);
            elsif v_b_rate is null then
                status := 'inconclusive';
                explanation := format('no baseline: control volume %s (needs %s, fresh) and no static baseline '
                                      'configured', coalesce(case when m.kind = 'rate' then b.denominator
                                                                   else b.buckets end, 0), m.min_volume);
            elsif v_c_rate <= v_limit then
                status := 'pass';
                explanation := format('canary %s within baseline %s x %s + %s = %s%s', value,
                                      baseline, m.factor, coalesce(m.slack, 0), threshold,
                                      case when coalesce(b.denominator, b.buckets, 0) < m.min_volume or not v_b_fresh
                                          then ' (static baseline)' else '' end);
            elsif m.kind <> 'rate' then
                status := 'fail';
                explanation := format('canary median p95 %s ms above baseline %s ms x %s = %s ms (%s canary buckets)',
                                      round(v_c_rate, 1), round(v_b_rate, 1), m.factor, round(v_limit, 1), c.buckets);
            else
                -- one-sided unpooled two-proportion z test of H0: canary rate <= factor x baseline + slack
                v_se := sqrt(
                    (v_c_rate * (1 - v_c_rate) / c.denominator)::double precision
                    + case
                        when coalesce(b.denominator, 0) >= m.min_volume and v_b_fresh
                            then (m.factor ^ 2 * v_b_rate * (1 - v_b_rate) / b.denominator)::double precision
                        else 0
                    end
                );
                v_z := case when v_se > 0 then ((v_c_rate - v_limit)::double precision / v_se) end;
                v_p := case when v_se > 0 then 1 - chat_v11.normal_cdf(v_z) else 0 end;
                if v_p < m.alpha then
                    status := 'fail';
                else
                    status := 'inconclusive';
                end if;
                explanation := format('canary %s above baseline %s x %s + %s = %s; %s (z = %s, p = %s, alpha %s)',
                                      round(v_c_rate, 6), round(v_b_rate, 6), m.factor, coalesce(m.slack, 0),
                                      round(v_limit, 6),
                                      case when status = 'fail' then 'significant at this volume'
                                           else 'not significant at this volume yet' end,
                                      coalesce(round(v_z::numeric, 2)::text, 'inf'), round(v_p::numeric, 4), m.alpha);
            end if;
        end if;
        return next;
    end loop;
end
$$;

revoke all on function chat_v11.evaluate_checks(timestamptz, text, boolean, interval) from public;
comment on function chat_v11.evaluate_checks(timestamptz, text, boolean, interval) is
'Release-gate checks at p_at for the given stage and kill switch: pass, fail, inconclusive or not_applicable, '
'with value, baseline, threshold, volume and why. p_p0_window replaces the P0 windows (resume exit window).';

-- >>> sql/0540_function_auto_kill.sql
-- The P0 guardrail: when a P0 check fails at p_at and the auto_kill policy is on, engages the kill
-- switch (action auto_kill, actor guardrail) in the caller's transaction. Returns the new version or null.
create or replace function chat_v11.auto_kill(p_at timestamptz, p_source text)
returns bigint
language plpgsql
volatile
as $$
declare
    v_state record;
    v_failing text[];
    v_gates record;
    v_reason text;
    v_new record;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
    if not coalesce((select (p.value #>> '{}')::boolean from chat_v11.policy as p where p.key = 'auto_kill'), true) then
        return null;
    end if;
    select s.kill_switch, s.stage into v_state from chat_v11.rollout_state as s;
    if v_state.kill_switch then
        return null;  -- already stopped: nothing to add
    end if;
    select array_agg(format('%s = %s (%s)', c.metric, coalesce(c.value::text, 'n/a'), c.explanation)
                     order by c.metric)
      into v_failing
      from chat_v11.evaluate_checks(p_at, v_state.stage, false) as c
     where c.severity = 'P0' and c.status = 'fail';
    if v_failing is null then
        return null;
    end if;

    v_state := chat_v11.lock_state();
    if v_state.kill_switch then
        return null;  -- an operator got there first
    end if;
    v_reason := pg_catalog.left(format('auto_kill by the P0 guardrail (%s, evidence at %s UTC): %s',
                                       p_source, pg_catalog.to_char(p_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                                       array_to_string(v_failing, '; ')), 500);
    select g.* into v_gates from chat_v11.current_gates(p_at) as g;
    v_new := chat_v11.apply_transition(
        'auto_kill', v_state.stage, true, true, v_reason, null, v_gates.snapshot, 'guardrail'
    );
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    raise warning 'chat-rollout: %', v_reason;
    return v_new.version;
end
$$;

revoke all on function chat_v11.auto_kill(timestamptz, text) from public;
comment on function chat_v11.auto_kill(timestamptz, text) is
'P0 guardrail: engages the kill switch (auto_kill, actor guardrail) when a P0 check fails at p_at and the '
'auto_kill policy is on; returns the new state version, or null when nothing was done.';

-- >>> sql/0550_function_p0_exit_failures.sql
-- The P0 exit criteria of a resume (playbook section 5): every P0 check passes over the whole exit
-- window (policy p0_exit_window) with samples covering it. Returns what fails, empty when they hold.
create or replace function chat_v11.p0_exit_failures(p_at timestamptz)
returns text[]
language sql
stable
as $$
    with exit_window as (
        select coalesce(chat_v11.policy_interval('p0_exit_window'), interval '30 minutes') as w
    )
    select coalesce(
        array_agg(
            case
                when c.status <> 'pass'
                    then format('%s over the exit window of %s: %s: %s', c.metric, x.w, c.status, c.explanation)
                else format('%s: samples do not cover the exit window of %s (oldest bucket %s UTC, needs %s UTC '
                            'or earlier)', c.metric, x.w,
                            pg_catalog.to_char(c.oldest_bucket at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                            pg_catalog.to_char((p_at - x.w + m.freshness) at time zone 'UTC',
                                               'YYYY-MM-DD HH24:MI:SS'))
            end
            order by m.ordinal
        ),
        '{}'
    )
      from exit_window as x
     cross join lateral chat_v11.evaluate_checks(p_at, 'off', true, x.w) as c
      join chat_v11.metric as m on m.metric = c.metric
     where c.severity = 'P0'
       and (c.status <> 'pass' or c.oldest_bucket > p_at - x.w + m.freshness)
$$;

revoke all on function chat_v11.p0_exit_failures(timestamptz) from public;
comment on function chat_v11.p0_exit_failures(timestamptz) is
'What keeps the P0 exit criteria from holding at p_at: a P0 check failing or inconclusive over the exit '
'window, or samples not covering it. Empty when a controlled resume may go ahead.';

-- >>> sql/0560_function_put_samples.sql
-- Validates and stores a batch of typed samples (parallel arrays, position = sample number), all or
-- nothing; then judges any P0 event of the batch at once (chat_v11.auto_kill). Returns the count written.
create or replace function chat_v11.put_samples(
    p_metric text[],
    p_cohort text[],
    p_bucket_start timestamptz[],
    p_numerator bigint[],
    p_denominator bigint[],
    p_value double precision[]
)
returns integer
language plpgsql
volatile
as $$
declare
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_total integer := coalesce(pg_catalog.cardinality(p_metric), 0);
    v_bad record;
    v_written integer;
    v_evidence timestamptz;
begin
    -- VALIDATE: the first bad sample by position, then a bucket sent twice
    select x.ord, p.code, p.problem,
           pg_catalog.json_build_object('metric', x.metric, 'cohort', x.cohort, 'bucket_start', x.bucket_start,
                                        'numerator', x.numerator, 'denominator', x.denominator,
                                        'value', x.value)::text as sample
      into v_bad
      from unnest(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value)
               with ordinality as x (metric, cohort, bucket_start, numerator, denominator, value, ord)
      left join chat_v11.metric as m on m.metric = x.metric
     cross join lateral chat_v11.sample_problem(
         m.kind, x.metric, x.cohort, x.bucket_start, x.numerator, x.denominator, x.value, v_now
     ) as p
     order by x.ord
     limit 1;
    if v_bad.ord is null then
        select d.ord, 'RO025' as code,
               format('it repeats metric, cohort and bucket_start of sample %s', d.first_ord) as problem,
               pg_catalog.json_build_object('metric', d.metric, 'cohort', d.cohort,
                                            'bucket_start', d.bucket_start)::text as sample
          into v_bad
          from (
              select x.ord, x.metric, x.cohort, x.bucket_start,
                     pg_catalog.min(x.ord) over (partition by x.metric, x.cohort, x.bucket_start) as first_ord
                from unnest(p_metric, p_cohort, p_bucket_start) with ordinality as x (metric, cohort, bucket_start, ord)
          ) as d
         where d.ord <> d.first_ord
         order by d.ord
         limit 1;
    end if;
    if v_bad.ord is not null then
        perform chat_v11.reject_sample(v_bad.ord, v_total, v_bad.code, v_bad.problem, v_bad.sample);
    end if;

    -- WRITE: idempotent, a re-sent bucket replaces the stored one
    insert into chat_v11.metric_sample as s (metric, cohort, bucket_start, numerator, denominator, value)
    select x.metric, x.cohort, x.bucket_start, x.numerator, x.denominator, x.value
      from unnest(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value)
               as x (metric, cohort, bucket_start, numerator, denominator, value)
        on conflict (metric, cohort, bucket_start) do update
       set numerator = excluded.numerator,
           denominator = excluded.denominator,
           value = excluded.value,
           written_at = excluded.written_at;
    get diagnostics v_written = row_count;

    -- GUARD: a P0 event in this batch is judged now, at the newest bucket that carries one
    select pg_catalog.max(x.bucket_start)
      into v_evidence
      from unnest(p_metric, p_bucket_start, p_numerator) as x (metric, bucket_start, numerator)
      join chat_v11.metric as m on m.metric = x.metric
     where m.severity = 'P0' and x.numerator > 0;
    if v_evidence is not null then
        perform chat_v11.auto_kill(v_evidence, 'ingestion');
    end if;
    return v_written;
end
$$;

revoke all on function chat_v11.put_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) from public;
comment on function chat_v11.put_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) is
'Validates and stores typed samples all or nothing (a bad sample raises RO021-RO025 naming its position), '
'then judges P0 events of the batch at once (auto_kill). Returns the number of samples written.';

-- >>> sql/0640_function_chat_set_v11_rollout_state.sql
-- The playbook's control call: kill, resume, hold, rollback or promote, by its arguments (SPEC 4.6).
-- The kill switch is never refused for red gates or a wrong stage; everything else is guarded.
create or replace function public.chat_set_v11_rollout_state(p_stage text, p_kill_switch boolean, p_reason text)
returns table (
    stage text,
    traffic_percent numeric,
    kill_switch boolean,
    promotion_frozen boolean,
    reason text,
    changed_by text,
    actor text,
    changed_at timestamptz,
    version bigint,
    note text
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_reason text := chat_v11.checked_reason(p_reason);
    -- record, not chat_v11.rollout_state: a rowtype variable would wait for the table unbounded
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
    v_state record;
    v_gates record;
    v_now timestamptz;
    v_current_ordinal integer;
    v_target_ordinal integer;
    v_action text;
    v_to_stage text;
    v_to_kill boolean;
    v_frozen boolean;
    v_note text;
    v_new record;
    v_exit_failures text[];
begin
    if p_kill_switch is null then
        raise exception using
            errcode = 'RO011',
            message = 'p_kill_switch must be true or false',
            detail = 'A null kill switch does not say whether to stop or to resume.',
            hint = 'Pass true to engage the kill switch, false to hold, roll back, promote or resume.';
    end if;

    v_state := chat_v11.lock_state();
    v_now := pg_catalog.clock_timestamp();
    select s.ordinal into v_current_ordinal from chat_v11.stage as s where s.stage = v_state.stage;
    select s.ordinal into v_target_ordinal from chat_v11.stage as s where s.stage = p_stage;
    select g.* into v_gates from chat_v11.current_gates(v_now) as g;

    if p_kill_switch then
        -- KILL: always accepted; a lower stage also rolls back, anything else is noted, not refused
        v_action := 'kill';
        v_to_kill := true;
        v_frozen := true;
        v_to_stage := v_state.stage;
        if v_target_ordinal is null then
            v_note := format('stage %s is unknown: not applied, the kill switch is on at stage %s',
                             coalesce(quote_literal(p_stage), 'null'), v_state.stage);
        elsif v_target_ordinal > v_current_ordinal then
            v_note := format('stage %s is above the current stage %s: not applied, the kill switch is on at stage %s',
                             p_stage, v_state.stage, v_state.stage);
        else
            v_to_stage := p_stage;
        end if;
    else
        if v_target_ordinal is null then
            raise exception using
                errcode = 'RO002',
                message = format('unknown stage %s', coalesce(quote_literal(p_stage), 'null')),
                detail = format('Known stages, in order: %s.',
                                (select string_agg(s.stage, ', ' order by s.ordinal) from chat_v11.stage as s)),
                hint = 'Name one of the known stages; the kill switch (p_kill_switch = true) accepts any stage.';
        end if;
        v_to_stage := p_stage;
        v_to_kill := false;
        if v_state.kill_switch then
            -- GUARD: resume only through the P0 exit criteria, never upwards
            if v_target_ordinal > v_current_ordinal then
                raise exception using
                    errcode = 'RO008',
                    message = format('resume to a higher stage is refused: %s is above the current stage %s',
                                     p_stage, v_state.stage),
                    detail = 'A resume keeps the current stage or rolls back; promotion comes later, through the gate.',
                    hint = format('Resume at %s (or lower), then promote through the Go/No-Go.', v_state.stage);
            end if;
            if not v_gates.gate_p0_ok then
                raise exception using
                    errcode = 'RO007',
                    message = 'resume refused: the P0 exit criteria do not hold',
                    detail = format('gate_p0_ok is false. Failing P0 checks: %s.',
                                    coalesce((select string_agg(f, '; ') from unnest(v_gates.failing_checks) as f),
                                             'none')),
                    hint = format('Keep the kill switch on until every P0 check has passed for %s '
                                  '(policy p0_exit_window); watch chat_get_v11_gate_checks().',
                                  chat_v11.policy_interval('p0_exit_window'));
            end if;
            v_exit_failures := chat_v11.p0_exit_failures(v_now);
            if pg_catalog.cardinality(v_exit_failures) > 0 then
                raise exception using
                    errcode = 'RO007',
                    message = 'resume refused: the P0 exit criteria do not hold over the exit window',
                    detail = array_to_string(v_exit_failures, '; '),
                    hint = format('Keep the kill switch on until every P0 check has passed for %s with samples '
                                  'covering it (policy p0_exit_window); watch chat_get_v11_gate_checks().',
                                  chat_v11.policy_interval('p0_exit_window'));
            end if;
            v_action := 'resume';
            v_frozen := true;
        elsif v_target_ordinal = v_current_ordinal then
            v_action := 'hold';
            v_frozen := true;
        elsif v_target_ordinal < v_current_ordinal then
            v_action := 'rollback';
            v_frozen := true;
        else
            -- GUARD: promotion needs no freeze, the next stage only, the Go/No-Go and the observation window
            if v_state.promotion_frozen then
                raise exception using
                    errcode = 'RO004',
                    message = format('promotion to %s is refused: promotion is frozen', p_stage),
                    detail = format('Frozen since the last hold, rollback, kill or resume; current reason: %s',
                                    v_state.reason),
                    hint = 'Lift the freeze with chat_lift_v11_freeze(reason) once the gates are green.';
            end if;
            if p_stage is distinct from v_gates.next_stage then
                raise exception using
                    errcode = 'RO003',
                    message = format('promotion from %s to %s is refused: it skips a stage', v_state.stage, p_stage),
                    detail = format('The next stage after %s is %s.', v_state.stage, v_gates.next_stage),
                    hint = format('Promote one stage at a time: chat_set_v11_rollout_state(%L, false, reason).',
                                  v_gates.next_stage);
            end if;
            if pg_catalog.cardinality(v_gates.go_no_go_blockers) > 0 then
                raise exception using
                    errcode = 'RO005',
                    message = format('promotion to %s is refused: the Go/No-Go does not hold', p_stage),
                    detail = array_to_string(v_gates.go_no_go_blockers, '; '),
                    hint = 'Promote only with gate_p0_ok, gate_p1_ok, PROCEED and no open P0/P1 incident; '
                        || 'see chat_get_v11_release_gates() and chat_get_v11_gate_checks().';
            end if;
            if v_gates.observed_until is null or v_gates.observed_until > v_now then
                raise exception using
                    errcode = 'RO006',
                    message = format('promotion to %s is refused: stage %s has not been observed long enough',
                                     p_stage, v_state.stage),
                    detail = format('Observation window of %s ends at %s UTC.',
                                    (select s.min_observation from chat_v11.stage as s where s.stage = v_state.stage),
                                    coalesce(to_char(v_gates.observed_until at time zone 'UTC',
                                                     'YYYY-MM-DD HH24:MI:SS'), 'an unknown time')),
                    hint = 'Wait for the end of the observation window, then promote again.';
            end if;
            v_action := 'promote';
            v_frozen := false;
        end if;
    end if;

    v_new := chat_v11.apply_transition(
        v_action, v_to_stage, v_to_kill, v_frozen, v_reason, v_note, v_gates.snapshot, null
    );
    if v_note is not null then
        raise notice '%', v_note;
    end if;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return query
        select v_new.stage, t.traffic_percent, v_new.kill_switch, v_new.promotion_frozen, v_new.reason,
               v_new.changed_by, v_new.actor, v_new.changed_at, v_new.version, v_note
          from chat_v11.stage as t
         where t.stage = v_new.stage;
end
$$;

revoke all on function public.chat_set_v11_rollout_state(text, boolean, text) from public;
grant execute on function public.chat_set_v11_rollout_state(text, boolean, text) to chat_rollout_operator;
comment on function public.chat_set_v11_rollout_state(text, boolean, text) is
'Control the rollout: (stage, true, reason) = kill switch, never refused (a lower stage also rolls back); '
'(same stage, false) = hold (freeze promotion); (lower stage, false) = rollback; (next stage, false) = '
'promote through the Go/No-Go; (stage, false) while killed = resume through the P0 exit criteria. '
'Returns the new state; note says what was not applied.';

-- >>> sql/0690_function_chat_set_v11_metric_rule.sql
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
    select pg_catalog.to_jsonb(m.*) into v_old from chat_v11.metric as m where m.metric = p_metric for update;
    if v_old is null then
        raise exception using
            errcode = 'RO021',
            message = format('unknown metric %s', coalesce(quote_literal(p_metric), 'null')),
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
            message = format('invalid metric rule for %s: %s', p_metric, p_settings),
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

-- >>> sql/0700_function_chat_put_v11_metric_samples.sql
-- Writes metric samples (a JSON array), all or nothing; a re-sent bucket replaces the stored one.
-- A P0 event in the batch is judged in the same transaction: with auto_kill on, a failing P0 check
-- engages the kill switch before this call returns.
create or replace function public.chat_put_v11_metric_samples(p_samples jsonb)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_bad record;
    v_total integer;
    v_metric text[];
    v_cohort text[];
    v_bucket timestamptz[];
    v_numerator bigint[];
    v_denominator bigint[];
    v_value double precision[];
begin
    if p_samples is null or pg_catalog.jsonb_typeof(p_samples) is distinct from 'array' then
        raise exception using
            errcode = 'RO020',
            message = 'p_samples must be a JSON array of sample objects',
            detail = format('Got %s.', coalesce(pg_catalog.jsonb_typeof(p_samples), 'null')),
            hint = 'Pass [{"metric": ..., "cohort": "canary", "bucket_start": "2026-11-26T10:00:10Z", '
                || '"numerator": 0, "denominator": 1200}, ...].';
    end if;
    v_total := pg_catalog.jsonb_array_length(p_samples);

    -- VALIDATE the JSON shape: the first sample whose fields cannot be read
    select e.ord, p.code, p.problem, e.sample::text as sample
      into v_bad
      from pg_catalog.jsonb_array_elements(p_samples) with ordinality as e (sample, ord)
     cross join lateral chat_v11.sample_shape_problem(e.sample) as p
     order by e.ord
     limit 1;
    if v_bad.ord is not null then
        perform chat_v11.reject_sample(v_bad.ord, v_total, v_bad.code, v_bad.problem, v_bad.sample);
    end if;

    -- READ the fields into typed arrays (a date such as 2026-13-45 passes the pattern but not the cast)
    begin
        select array_agg(x.metric order by e.ord), array_agg(x.cohort order by e.ord),
               array_agg(x.bucket_start order by e.ord), array_agg(x.numerator order by e.ord),
               array_agg(x.denominator order by e.ord), array_agg(x.value order by e.ord)
          into v_metric, v_cohort, v_bucket, v_numerator, v_denominator, v_value
          from pg_catalog.jsonb_array_elements(p_samples) with ordinality as e (sample, ord)
         cross join lateral pg_catalog.jsonb_to_record(e.sample) as x (
             metric text, cohort text, bucket_start timestamptz, numerator bigint, denominator bigint,
             value double precision
         );
    exception when data_exception then
        select e.ord, e.sample::text as sample
          into v_bad
          from pg_catalog.jsonb_array_elements(p_samples) with ordinality as e (sample, ord)
         where not chat_v11.is_timestamptz(e.sample ->> 'bucket_start')
         order by e.ord
         limit 1;
        perform chat_v11.reject_sample(coalesce(v_bad.ord, 0), v_total, 'RO022',
                                       'bucket_start is not a valid timestamp', coalesce(v_bad.sample, ''));
    end;
    return chat_v11.put_samples(v_metric, v_cohort, v_bucket, v_numerator, v_denominator, v_value);
end
$$;

revoke all on function public.chat_put_v11_metric_samples(jsonb) from public;
grant execute on function public.chat_put_v11_metric_samples(jsonb) to chat_rollout_ingest;
comment on function public.chat_put_v11_metric_samples(jsonb) is
'Metric writers: store 10-second samples [{metric, cohort, bucket_start, numerator, denominator, value}], '
'all or nothing (a bad sample is named with a project SQLSTATE), a re-sent bucket replaces the old one. A P0 '
'event is judged in the same transaction: with auto_kill on, a failing P0 check engages the kill switch. '
'Returns the number of samples written. The columnar overload (arrays) is the fast bulk path.';

-- >>> sql/0705_function_chat_put_v11_metric_samples_columnar.sql
-- The fast bulk path: the same ingestion with one array per field (position = sample number), so a
-- writer sends binary arrays (psycopg adapts Python lists) instead of JSON text. Same rules, same guard.
create or replace function public.chat_put_v11_metric_samples(
    p_metric text[],
    p_cohort text[],
    p_bucket_start timestamptz[],
    p_numerator bigint[],
    p_denominator bigint[],
    p_value double precision[]
)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_n integer := coalesce(pg_catalog.cardinality(p_metric), 0);
begin
    if p_metric is null
       or coalesce(pg_catalog.cardinality(p_cohort), -1) <> v_n
       or coalesce(pg_catalog.cardinality(p_bucket_start), -1) <> v_n
       or coalesce(pg_catalog.cardinality(p_numerator), v_n) <> v_n
       or coalesce(pg_catalog.cardinality(p_denominator), v_n) <> v_n
       or coalesce(pg_catalog.cardinality(p_value), v_n) <> v_n
       or pg_catalog.array_ndims(p_metric) > 1 then
        raise exception using
            errcode = 'RO020',
            message = 'the sample arrays must be one-dimensional and of the same length',
            detail = format('metric %s, cohort %s, bucket_start %s, numerator %s, denominator %s, value %s elements.',
                            pg_catalog.cardinality(p_metric), pg_catalog.cardinality(p_cohort),
                            pg_catalog.cardinality(p_bucket_start), pg_catalog.cardinality(p_numerator),
                            pg_catalog.cardinality(p_denominator), pg_catalog.cardinality(p_value)),
            hint = 'Pass one element per sample in every array; numerator, denominator or value may be a null '
                || 'array when no sample has that field.';
    end if;
    return chat_v11.put_samples(p_metric, p_cohort, p_bucket_start, p_numerator, p_denominator, p_value);
end
$$;

revoke all on function public.chat_put_v11_metric_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) from public;
grant execute on function public.chat_put_v11_metric_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) to chat_rollout_ingest;
comment on function public.chat_put_v11_metric_samples(
    text[],
    text[],
    timestamptz[],
    bigint[],
    bigint[],
    double precision[]
) is
'Metric writers, fast bulk path: the same ingestion as the JSON form with one array per field (metric, cohort, '
'bucket_start, numerator, denominator, value; position = sample number). All or nothing, same SQLSTATEs, same '
'automatic kill.';

-- >>> sql/0710_function_chat_run_v11_guardrails.sql
-- The time-based guardrails, safe to run every few seconds (pg_cron or any scheduler), idempotent:
-- a P0 failure engages the kill switch, stale P0 data freezes promotion, old samples are pruned.
create or replace function public.chat_run_v11_guardrails()
returns table (action text, version bigint, detail text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_version bigint;
    v_state record;
    v_stale text[];
    v_gates record;
    v_new record;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
    v_retention interval := coalesce(chat_v11.policy_interval('retention'), interval '30 days');
    v_pruned bigint;
begin
    -- GUARD: a failing P0 check kills (the same rule as at ingestion, for evidence the writer missed)
    v_version := chat_v11.auto_kill(v_now, 'guardrail run');
    if v_version is not null then
        return query select 'auto_kill'::text, v_version, h.reason
                       from chat_v11.rollout_history as h where h.version = v_version;
    end if;

    -- GUARD: stale or missing P0 data freezes promotion while v1.1 traffic flows
    select s.stage, s.kill_switch, s.promotion_frozen into v_state from chat_v11.rollout_state as s;
    if v_state.stage <> 'off' and not v_state.kill_switch and not v_state.promotion_frozen then
        select array_agg(format('%s: %s', c.metric, c.explanation) order by c.metric)
          into v_stale
          from chat_v11.evaluate_checks(v_now, v_state.stage, false) as c
         where c.severity = 'P0' and c.status = 'inconclusive';
        if v_stale is not null then
            v_state := chat_v11.lock_state();
            if v_state.stage <> 'off' and not v_state.kill_switch and not v_state.promotion_frozen then
                select g.* into v_gates from chat_v11.current_gates(v_now) as g;
                v_new := chat_v11.apply_transition(
                    'hold', v_state.stage, false, true,
                    pg_catalog.left('guardrail: P0 data is stale or missing, promotion frozen: '
                                    || array_to_string(v_stale, '; '), 500),
                    null, v_gates.snapshot, 'guardrail'
                );
                return query select 'hold'::text, v_new.version, v_new.reason;
            end if;
        end if;
    end if;

    -- RETENTION: samples older than the retention policy
    delete from chat_v11.metric_sample as s where s.bucket_start < v_now - v_retention;
    get diagnostics v_pruned = row_count;
    if v_pruned > 0 then
        return query select 'prune'::text, null::bigint,
                            format('%s samples older than %s removed', v_pruned, v_retention);
    end if;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
end
$$;

revoke all on function public.chat_run_v11_guardrails() from public;
grant execute on function public.chat_run_v11_guardrails() to chat_rollout_ingest;
comment on function public.chat_run_v11_guardrails() is
'Guardrails to run every few seconds (idempotent): a failing P0 check engages the kill switch (auto_kill), '
'stale or missing P0 data freezes promotion (hold, actor guardrail), samples older than the retention policy '
'are removed. Returns one row per action taken.';
