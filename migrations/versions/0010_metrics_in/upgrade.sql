-- >>> migrations/versions/0010_metrics_in/steps/a_metrics_in.sql
-- covers: sql/0150_table_config_change.sql
-- Revision 0010: the configuration audit also records metric sources (target metric_source). The check is replaced
-- in place under the migration's ACCESS EXCLUSIVE lock (migrations/env.py); the audit is small (one row per
-- configuration change), so the validating scan is short, and every existing row has one of the earlier targets.
-- squawk-ignore ban-drop-constraint -- replaced at once by a wider check of the same name
alter table chat_v11.config_change drop constraint config_change_target_valid;
-- squawk-ignore constraint-missing-not-valid -- a scan of the small audit table under the migration's lock
alter table chat_v11.config_change add constraint config_change_target_valid check (
    target in ('stage', 'policy', 'metric_rule', 'metric_source')
);
comment on table chat_v11.config_change is
'Who changed which stage setting, policy, metric rule or metric source, when, from what to what. Append-only.';

-- >>> sql/0112_table_alert_policy.sql
-- The rollout policy alert_source (SPEC 7, "Active alerts"), set like every policy with
-- public.chat_set_v11_policy('alert_source', '{"required": ..., "max_age": ...}') and audited as one, but kept in a
-- table of its own: adding a key to chat_v11.policy would alter that table, and a state call holds a lock on it
-- while it waits for the state row a migration holds (chat_v11.start_lock_budget): the two would deadlock.
-- Not required by default, so every database decides exactly as before until an admin turns it on.
create table chat_v11.alert_policy (
    key text not null default 'alert_source',
    value jsonb not null,
    description text not null,
    changed_at timestamptz not null default pg_catalog.now(),
    changed_by text not null default session_user,
    constraint alert_policy_pkey primary key (key),
    constraint alert_policy_key_known check (key = 'alert_source'),
    constraint alert_policy_value_valid check (
        pg_catalog.jsonb_typeof(value -> 'required') = 'boolean'
        and pg_catalog.jsonb_typeof(value -> 'max_age') = 'string'
    )
);

comment on table chat_v11.alert_policy is
'The policy alert_source: whether the Go/No-Go requires a fresh, reachable Alertmanager read, and how fresh. '
'Change with public.chat_set_v11_policy(); every change is kept in chat_v11.config_change.';

insert into chat_v11.alert_policy (key, value, description) values (
    'alert_source', '{"required": false, "max_age": "2 minutes"}',
    'Whether the Go/No-Go requires a fresh, reachable read of Alertmanager (max_age 30 seconds - 1 hour).'
);

-- >>> sql/0125_table_metric_source.sql
-- Where the puller reads a metric (SPEC 7, "Prometheus in"): one PromQL expression per sample field, per metric and
-- cohort. Which fields a source has follows the metric's kind (a rate: numerator and denominator; a count:
-- numerator, optionally denominator; a latency: value), checked by public.chat_set_v11_metric_source, the only
-- writer (admin, audited in chat_v11.config_change). Each expression is evaluated at the END of the 10-second bucket
-- (`time=` bucket_start + 10 s), so a count is written as its change over the bucket: sum(x) - sum(x offset 10s)
-- (docs/prometheus-in.md: increase(x[10s]) can lose an event scraped first in a bucket).
create table chat_v11.metric_source (
    metric text not null,
    cohort text not null,
    -- "source" is a keyword to sqlfluff, not to PostgreSQL; the SPEC names the argument p_source
    source jsonb not null,  -- noqa: RF04
    changed_at timestamptz not null default pg_catalog.clock_timestamp(),
    changed_by text not null default session_user,
    constraint metric_source_pkey primary key (metric, cohort),
    constraint metric_source_metric_fkey foreign key (metric) references chat_v11.metric (metric),
    constraint metric_source_cohort_valid check (cohort in ('canary', 'control')),
    constraint metric_source_fields_valid check (
        pg_catalog.jsonb_typeof(source) = 'object'
        and source <> '{}'::jsonb
        and source - '{numerator,denominator,value}'::text[] = '{}'::jsonb
        and not pg_catalog.jsonb_path_exists(source, 'strict $.* ? (@.type() != "string")')
    )
);

comment on table chat_v11.metric_source is
'PromQL per metric, cohort and sample field (numerator, denominator, value) that chat-rollout pull evaluates at '
'the end of each 10-second bucket. Written only by public.chat_set_v11_metric_source (admin, audited).';

-- >>> sql/0165_table_metric_pull.sql
-- What the puller read (SPEC 7, "Prometheus in"): per metric, cohort, bucket and sample field, the query as it was
-- sent (PromQL and the explicit time=), what came of it, the value read before any rounding, and the sha256 and a
-- bounded excerpt of the raw answer, so a postmortem sees what was read and not only what was queried
-- (flagger#1815). Written with the samples of the bucket in one transaction (public.chat_put_v11_metric_pulls);
-- a re-pulled bucket replaces its record. An empty or NaN answer is kept here too: it wrote no sample.
create table chat_v11.metric_pull (
    metric text not null,
    cohort text not null,
    bucket_start timestamptz not null,
    field text not null,
    query text not null,
    query_time timestamptz not null,
    outcome text not null,
    value double precision,
    answer_sha256 text not null,
    answer_excerpt text not null,
    pulled_at timestamptz not null default pg_catalog.clock_timestamp(),
    pulled_by text not null default session_user,
    constraint metric_pull_pkey primary key (metric, cohort, bucket_start, field),
    constraint metric_pull_metric_fkey foreign key (metric) references chat_v11.metric (metric),
    constraint metric_pull_cohort_valid check (cohort in ('canary', 'control')),
    constraint metric_pull_field_valid check (field in ('numerator', 'denominator', 'value')),
    constraint metric_pull_outcome_valid check (outcome in ('value', 'empty', 'nan', 'multiple_series')),
    constraint metric_pull_bucket_aligned_utc check (
        pg_catalog.date_bin('10 seconds'::interval, bucket_start, '2000-01-01 00:00:00+00'::timestamptz) = bucket_start
    ),
    constraint metric_pull_value_valid check ((outcome = 'value') = (value is not null)),
    constraint metric_pull_sha256_valid check (answer_sha256 ~ '^[0-9a-f]{64}$'),
    constraint metric_pull_bounded check (
        pg_catalog.length(query) <= 4500 and pg_catalog.length(answer_excerpt) <= 2000
    )
);

create index metric_pull_bucket_start on chat_v11.metric_pull (bucket_start);

comment on table chat_v11.metric_pull is
'Provenance of pulled buckets: the query sent (PromQL and time=), the outcome (value, empty, nan, multiple_series), '
'the value read, sha256 and excerpt (at most 2000 characters) of the raw Prometheus answer. Write with '
'public.chat_put_v11_metric_pulls(); read with public.chat_get_v11_metric_pulls().';

-- >>> sql/0168_table_alert_source.sql
-- What the puller last read from Alertmanager (SPEC 7, "Active alerts"): one row, replaced by every read
-- (public.chat_put_v11_active_alerts). reachable = false with the error when Alertmanager could not be read; the
-- alerts are the active P0/P1 alerts as read (alertname, severity, startsAt, fingerprint, silenced), and after a
-- failed read the ones of the last successful read (an alert we know of is never forgotten by an outage).
create table chat_v11.alert_source (
    singleton boolean not null default true,
    checked_at timestamptz not null default pg_catalog.now(),
    checked_by text not null default session_user,
    reachable boolean not null,
    error text,
    unreachable_since timestamptz,
    alerts jsonb not null default '[]'::jsonb,
    constraint alert_source_pkey primary key (singleton),
    constraint alert_source_singleton check (singleton),
    constraint alert_source_error_valid check (reachable = (error is null) and reachable = (unreachable_since is null)),
    constraint alert_source_alerts_array check (pg_catalog.jsonb_typeof(alerts) = 'array'),
    constraint alert_source_bounded check (
        pg_catalog.length(error) <= 2000 and pg_catalog.jsonb_array_length(alerts) <= 200
    )
);

comment on table chat_v11.alert_source is
'The last read of Alertmanager by chat-rollout pull: when, reachable or the error (and since when it fails), and the '
'active P0/P1 alerts '
'[{alertname, severity, startsAt, fingerprint, silenced}]. One row. Write with public.chat_put_v11_active_alerts(); '
'read with public.chat_get_v11_active_alerts().';

-- >>> sql/0405_function_alert_blockers.sql
-- The Go/No-Go blockers of active alerts at p_at (SPEC 7, "Active alerts"; playbook section 9: no active P0/P1
-- alerts). Read from the latest Alertmanager read only, and only when it was made at or before p_at (an earlier
-- p_at has no read to go by). Every active P0/P1 alert of that read blocks, whatever the policy: an alert we know of
-- is never ignored; a silence mutes the page, not the evidence, so a silenced P0 still blocks and a silenced P1
-- does not. With the policy alert_source required, an unreachable Alertmanager, a read older than max_age and no
-- read at all block too (fail closed). The policy is read as it is now.
create or replace function chat_v11.alert_blockers(p_at timestamptz)
returns text[]
language plpgsql
stable
as $$
declare
    v_policy jsonb;
    v_required boolean;
    v_max_age interval;
    v_source chat_v11.alert_source;
    v_blockers text[] := '{}'::text[];
begin
    select p.value into v_policy from chat_v11.alert_policy as p where p.key = 'alert_source';
    v_required := coalesce((v_policy ->> 'required')::boolean, false);
    v_max_age := coalesce((v_policy ->> 'max_age')::interval, interval '2 minutes');
    select s.* into v_source from chat_v11.alert_source as s where s.checked_at <= p_at;

    if v_required then
        if v_source.checked_at is null then
            v_blockers := v_blockers || case
                when exists (select from chat_v11.alert_source)
                    then format('alert source stale: no Alertmanager read at or before %s UTC (max_age %s)',
                                pg_catalog.to_char(p_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), v_max_age)
                else format('alert source stale: Alertmanager never checked (max_age %s)', v_max_age)
            end;
        else
            if not v_source.reachable then
                v_blockers := v_blockers || format(
                    'alert source unreachable since %s UTC: %s',
                    pg_catalog.to_char(v_source.unreachable_since at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                    v_source.error
                );
            end if;
            if v_source.checked_at < p_at - v_max_age then
                v_blockers := v_blockers || format(
                    'alert source stale: last checked at %s UTC (max_age %s)',
                    pg_catalog.to_char(v_source.checked_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), v_max_age
                );
            end if;
        end if;
    end if;

    if v_source.checked_at is not null then
        v_blockers := v_blockers || coalesce((
            select array_agg(
                       format('alert %s (%s) firing since %s UTC%s', a ->> 'alertname', a ->> 'severity',
                              pg_catalog.to_char((a ->> 'startsAt')::timestamptz at time zone 'UTC',
                                                 'YYYY-MM-DD HH24:MI:SS'),
                              case when (a ->> 'silenced')::boolean then ', silenced (a silenced P0 still blocks)'
                                   else '' end)
                       order by a ->> 'severity', (a ->> 'startsAt')::timestamptz, a ->> 'alertname'
                   )
              from pg_catalog.jsonb_array_elements(v_source.alerts) as a
             where not ((a ->> 'severity') = 'P1' and (a ->> 'silenced')::boolean)
        ), '{}'::text[]);
    end if;
    return v_blockers;
end
$$;

revoke all on function chat_v11.alert_blockers(timestamptz) from public;
comment on function chat_v11.alert_blockers(timestamptz) is
'Go/No-Go blockers of active alerts at p_at: every active P0/P1 alert of the latest Alertmanager read made at or '
'before p_at (a silenced P1 excepted), and, when the policy alert_source is required, an unreachable, stale or '
'missing read.';

-- >>> sql/0410_function_evaluate_gates.sql
-- The gate verdict and the Go/No-Go of the playbook (section 9) for a given state at p_at.
create or replace function chat_v11.evaluate_gates(
    p_at timestamptz,
    p_stage text,
    p_kill_switch boolean,
    p_promotion_frozen boolean,
    p_incident_id bigint,
    p_stage_since timestamptz
)
returns table (
    gate_p0_ok boolean,
    gate_p1_ok boolean,
    rollout_decision text,
    promotion_allowed boolean,
    next_stage text,
    observed_until timestamptz,
    failing_checks text[],
    go_no_go_blockers text[],
    blockers text[]
)
language plpgsql
stable
as $$
declare
    v_p0_fail boolean;
    v_p0_ok boolean;
    v_p1_ok boolean;
    v_any_inconclusive boolean;
    v_decision text;
    v_failing text[];
    v_check_lines text[];
    v_next text;
    v_min_observation interval;
    v_until timestamptz;
    v_go text[] := '{}'::text[];
    v_blockers text[] := '{}'::text[];
begin
    select
        coalesce(bool_or(c.severity = 'P0' and c.status = 'fail'), false),
        coalesce(bool_and(c.status = 'pass') filter (where c.severity = 'P0'), false),
        coalesce(bool_and(c.status in ('pass', 'not_applicable')) filter (where c.severity = 'P1'), true),
        coalesce(bool_or(c.status = 'inconclusive'), false),
        coalesce(
            array_agg(c.metric || ': ' || c.status order by c.severity, c.metric)
                filter (where c.status in ('fail', 'inconclusive')),
            '{}'
        ),
        coalesce(
            array_agg(format('%s %s is %s: %s', c.severity, c.metric, c.status, c.explanation)
                      order by c.severity, c.metric)
                filter (where c.status in ('fail', 'inconclusive')),
            '{}'
        )
      into v_p0_fail, v_p0_ok, v_p1_ok, v_any_inconclusive, v_failing, v_check_lines
      from chat_v11.evaluate_checks(p_at, p_stage, p_kill_switch) as c;

    v_decision := case
        when v_p0_fail then 'ROLLBACK'
        when v_any_inconclusive or not v_p1_ok then 'HOLD'
        else 'PROCEED'
    end;

    select s.stage into v_next
      from chat_v11.stage as s
     where s.ordinal > (select c.ordinal from chat_v11.stage as c where c.stage = p_stage)
     order by s.ordinal
     limit 1;
    select s.min_observation into v_min_observation from chat_v11.stage as s where s.stage = p_stage;
    v_until := p_stage_since + v_min_observation;

    -- GUARD: the Go/No-Go of playbook section 9 (gates green, nothing open, no active P0/P1 alerts)
    if not v_p0_ok then
        v_go := v_go || 'gate_p0_ok is false'::text;
    end if;
    if not v_p1_ok then
        v_go := v_go || 'gate_p1_ok is false'::text;
    end if;
    if v_decision <> 'PROCEED' then
        v_go := v_go || format('rollout_decision is %s, not PROCEED', v_decision);
    end if;
    v_go := v_go || v_check_lines;
    if p_incident_id is not null then
        v_go := v_go || (
            select format('incident %s (%s, %s: %s) is open', i.incident_id, i.severity, i.status, i.summary)
              from chat_v11.incident as i
             where i.incident_id = p_incident_id
        );
    end if;
    -- no active P0/P1 alerts (a Go condition, not a metric gate: the verdict above is unchanged)
    v_go := v_go || chat_v11.alert_blockers(p_at);

    -- Everything else that stops a promotion now
    if p_kill_switch then
        v_blockers := v_blockers || 'the kill switch is on: only a controlled resume can lift it'::text;
    end if;
    if p_promotion_frozen then
        v_blockers := v_blockers
            || 'promotion is frozen: lift it with chat_lift_v11_freeze() once the gates are green'::text;
    end if;
    if v_next is null then
        v_blockers := v_blockers || format('stage %s is the last stage: there is nothing to promote to', p_stage);
    end if;
    v_blockers := v_blockers || v_go;
    if v_until is null or v_until > p_at then
        v_blockers := v_blockers || format(
            'stage %s must be observed for %s: %s',
            p_stage, v_min_observation,
            case
                when v_until is null then 'the stage start is unknown'
                else format('observed since %s UTC, until %s UTC',
                            pg_catalog.to_char(p_stage_since at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                            pg_catalog.to_char(v_until at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'))
            end
        );
    end if;

    return query select
        v_p0_ok, v_p1_ok, v_decision, pg_catalog.cardinality(v_blockers) = 0,
        v_next, v_until, v_failing, v_go, v_blockers;
end
$$;

revoke all on function chat_v11.evaluate_gates(timestamptz, text, boolean, boolean, bigint, timestamptz) from public;
comment on function chat_v11.evaluate_gates(timestamptz, text, boolean, boolean, bigint, timestamptz) is
'Gate verdict (gate_p0_ok, gate_p1_ok, rollout_decision) and the Go/No-Go blockers for a state at p_at (active '
'P0/P1 alerts and the alert source included: chat_v11.alert_blockers).';

-- >>> sql/0636_function_chat_get_v11_metric_sources.sql
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

-- >>> sql/0638_function_chat_get_v11_metric_pulls.sql
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

-- >>> sql/0639_function_chat_get_v11_active_alerts.sql
-- The last Alertmanager read (SPEC 7, "Active alerts") with the policy that weighs it: what the Go/No-Go sees of
-- active alerts. No row when Alertmanager was never read.
create or replace function public.chat_get_v11_active_alerts()
returns table (
    checked_at timestamptz,
    checked_by text,
    reachable boolean,
    unreachable_since timestamptz,
    error text,
    alerts jsonb,
    required boolean,
    max_age interval
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select s.checked_at, s.checked_by, s.reachable, s.unreachable_since, s.error, s.alerts,
           coalesce((p.value ->> 'required')::boolean, false), (p.value ->> 'max_age')::interval
      from chat_v11.alert_source as s
      left join chat_v11.alert_policy as p on p.key = 'alert_source'
$$;

revoke all on function public.chat_get_v11_active_alerts() from public;
grant execute on function public.chat_get_v11_active_alerts() to chat_rollout_reader, chat_rollout_ingest;
comment on function public.chat_get_v11_active_alerts() is
'The last Alertmanager read: when and by whom, reachable (or the error and since when), the active P0/P1 alerts '
'[{alertname, severity, startsAt, fingerprint, silenced}], and the policy alert_source (required, max_age). No row '
'when never read. Read-only; readers and the ingest login of the puller.';

-- >>> sql/0680_function_chat_set_v11_policy.sql
-- Changes a rollout policy, validated per key: auto_kill (boolean), p0_exit_window (30-60 minutes),
-- state_lock_timeout (100 ms - 60 s), retention (1-400 days), alert_source ({"required": boolean, "max_age":
-- 30 s - 1 h}). A refusal (RO014) names the value and the range.
create or replace function public.chat_set_v11_policy(p_key text, p_value jsonb)
returns table (
    key text,
    value jsonb,
    description text,
    changed_at timestamptz,
    changed_by text
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_old chat_v11.policy;
    v_interval interval;
    v_problem text;
begin
    perform chat_v11.begin_write('chat_set_v11_policy');
    select p.* into v_old from chat_v11.policy as p where p.key = p_key for update;
    if not found then
        -- alert_source lives in a table of its own (sql/0112_table_alert_policy.sql), same columns
        select p.* into v_old from chat_v11.alert_policy as p where p.key = p_key for update;
    end if;
    if not found then
        raise exception using
            errcode = 'RO014',
            message = format('unknown policy %s', chat_v11.shown(p_key)),
            detail = format('Known policies: %s.', (
                select string_agg(k.key, ', ' order by k.key)
                  from (select p.key from chat_v11.policy as p union all select a.key from chat_v11.alert_policy as a) as k
            )),
            hint = 'Name one of the known policies.';
    end if;

    if p_key = 'auto_kill' then
        if jsonb_typeof(p_value) is distinct from 'boolean' then
            v_problem := 'auto_kill takes a JSON boolean: ''true'' or ''false''';
        end if;
    elsif p_key = 'alert_source' then
        if jsonb_typeof(p_value) is distinct from 'object'
           or (select array_agg(k order by k) from jsonb_object_keys(p_value) as k) is distinct from '{max_age,required}'
           or jsonb_typeof(p_value -> 'required') is distinct from 'boolean'
           or jsonb_typeof(p_value -> 'max_age') is distinct from 'string' then
            v_problem := 'alert_source takes a JSON object with exactly a boolean and an interval string, such as '
                || '''{"required": true, "max_age": "2 minutes"}''';
        else
            begin
                v_interval := (p_value ->> 'max_age')::interval;
            exception when others then
                v_problem := format('%s is not an interval', chat_v11.shown(p_value ->> 'max_age'));
            end;
            -- the age limit sizes a freshness check (p_at - max_age): bounded like every interval policy
            if v_problem is null and v_interval not between interval '30 seconds' and interval '1 hour' then
                v_problem := format('alert_source max_age must be between 30 seconds and 1 hour; got %s', v_interval);
            end if;
        end if;
    elsif jsonb_typeof(p_value) is distinct from 'string' then
        v_problem := format('%s takes a JSON string holding an interval, such as ''"30 minutes"''', p_key);
    else
        begin
            v_interval := (p_value #>> '{}')::interval;
        exception when others then
            v_problem := format('%s is not an interval', chat_v11.shown(p_value #>> '{}'));
        end;
        if v_problem is null then
            -- every interval policy feeds a computation (now() - window, a lock timeout, a partition cutoff): an
            -- unbounded value overflows a timestamp (22008) or disables the guard it sizes
            v_problem := case
                when p_key = 'p0_exit_window' and v_interval not between interval '30 minutes' and interval '60 minutes'
                    then format('p0_exit_window must be between 30 and 60 minutes (playbook section 5); got %s',
                                v_interval)
                when p_key = 'state_lock_timeout'
                     and v_interval not between interval '100 milliseconds' and interval '60 seconds'
                    then format('state_lock_timeout must be between 100 milliseconds and 60 seconds; got %s',
                                v_interval)
                when p_key = 'retention' and v_interval not between interval '1 day' and interval '400 days'
                    then format('retention must be between 1 day and 400 days; got %s', v_interval)
            end;
        end if;
    end if;
    if v_problem is not null then
        raise exception using
            errcode = 'RO014',
            message = format('invalid value %s for policy %s', chat_v11.shown(p_value::text), p_key),
            detail = v_problem || '.',
            hint = format('Current value: %s; nothing was changed.', v_old.value);
    end if;

    update chat_v11.policy as p
       set value = p_value, changed_at = clock_timestamp(), changed_by = session_user
     where p.key = p_key;
    update chat_v11.alert_policy as p
       set value = p_value, changed_at = clock_timestamp(), changed_by = session_user
     where p.key = p_key;
    insert into chat_v11.config_change (actor, target, target_key, old_value, new_value)
    values (chat_v11.claimed_actor(), 'policy', p_key, v_old.value, p_value);
    return query
        select p.key, p.value, p.description, p.changed_at, p.changed_by from chat_v11.policy as p where p.key = p_key
        union all
        select p.key, p.value, p.description, p.changed_at, p.changed_by
          from chat_v11.alert_policy as p
         where p.key = p_key;
end
$$;

revoke all on function public.chat_set_v11_policy(text, jsonb) from public;
grant execute on function public.chat_set_v11_policy(text, jsonb) to chat_rollout_admin;
comment on function public.chat_set_v11_policy(text, jsonb) is
'Admin: set a rollout policy. auto_kill (boolean, default true), p0_exit_window (30-60 minutes, default '
'"30 minutes"), state_lock_timeout (100 ms - 60 s, default "2 seconds"), retention (1-400 days, default '
'"30 days"), alert_source ({"required": false, "max_age": "2 minutes"}; max_age 30 s - 1 h; required makes a '
'fresh, reachable Alertmanager read a Go condition). Out-of-range values are refused (RO014). Audited.';

-- >>> sql/0692_function_chat_set_v11_metric_source.sql
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

-- >>> sql/0715_function_chat_run_v11_maintenance.sql
-- Partition maintenance of the metric store: daily partitions created ahead, days past the retention policy dropped
-- whole. Each DDL waits at most 50 ms for its locks (else that step is skipped and reported); the locks it got last
-- until the caller's commit, so run it alone in its own transaction (autocommit, as pg_cron does), never inside one.
create or replace function public.chat_run_v11_maintenance()
returns table (action text, detail text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_today date := (pg_catalog.clock_timestamp() at time zone 'UTC')::date;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
    v_retention interval := coalesce(chat_v11.policy_interval('retention'), interval '30 days');
    v_xmax xid;
    v_holders text;
    v_day date;
    v_created text[] := '{}'::text[];
    v_busy text[] := '{}'::text[];
    v_dropped text[] := '{}'::text[];
    v_deleted bigint := 0::bigint;
    v_pulls_deleted bigint := 0::bigint;
begin
    perform chat_v11.begin_write('chat_run_v11_maintenance');
    -- one run at a time, under a row lock that only the project's functions can take (the table grants nothing):
    -- a busy lock is reported, never waited for
    perform from chat_v11.maintenance as m where m.job = 'metric_sample' for update skip locked;
    if not found then
        select m.xmax into v_xmax from chat_v11.maintenance as m where m.job = 'metric_sample';
        select pg_catalog.string_agg(pg_catalog.format('pid %s', l.pid), ', ' order by l.pid)
          into v_holders
          from pg_catalog.pg_locks as l
         where l.locktype = 'transactionid'
           and l.mode = 'ExclusiveLock'
           and l.granted
           and l.transactionid in (select h.x from chat_v11.xmax_holders(v_xmax) as h (x))
           and l.pid <> pg_catalog.pg_backend_pid();
        return query select 'skipped'::text,
                            pg_catalog.format('metric store maintenance skipped: another maintenance run holds the '
                                              || 'maintenance lock (%s); the next run retries',
                                              coalesce(v_holders, 'a transaction that has just ended'));
        return;
    end if;

    perform pg_catalog.set_config('lock_timeout', '50ms', true);
    -- AHEAD: at least 3 days ahead at all times; when a day in that span is missing, up to a week ahead at once (DDL
    -- every few days, not at every midnight). One day per subtransaction: a busy day is skipped, the others are made.
    if exists (
        select
          from pg_catalog.generate_series(-1, 3) as g (d)
         where pg_catalog.to_regclass('chat_v11.metric_sample_p' || pg_catalog.to_char(v_today + g.d, 'YYYYMMDD'))
               is null
    ) then
        for v_day in select v_today + g.d from pg_catalog.generate_series(-1, 7) as g (d) order by g.d loop
            if pg_catalog.to_regclass('chat_v11.metric_sample_p' || pg_catalog.to_char(v_day, 'YYYYMMDD')) is null then
                begin
                    perform chat_v11.ensure_sample_partitions(v_day, v_day);
                    v_created := v_created || pg_catalog.to_char(v_day, 'YYYY-MM-DD');
                exception when lock_not_available then
                    v_busy := v_busy || pg_catalog.format('creating the partition of %s',
                                                          pg_catalog.to_char(v_day, 'YYYY-MM-DD'));
                end;
            end if;
        end loop;
    end if;

    -- RETENTION: whole days dropped (ACCESS EXCLUSIVE on the parent for a moment), the straddling day trimmed
    begin
        select p.dropped, p.deleted into v_dropped, v_deleted from chat_v11.prune_samples(v_now - v_retention) as p;
    exception when lock_not_available then
        v_busy := v_busy || pg_catalog.format('removing the samples older than %s', v_retention);
    end;
    -- the pull provenance (0010) follows the samples it explains: records past the same retention go, one index range
    begin
        delete from chat_v11.metric_pull as mp where mp.bucket_start < v_now - v_retention;
        get diagnostics v_pulls_deleted = row_count;
    exception when lock_not_available then
        v_busy := v_busy || pg_catalog.format('removing the pull records older than %s', v_retention);
    end;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);

    if pg_catalog.cardinality(v_created) > 0 then
        return query select 'partition'::text,
                            pg_catalog.format('%s daily partitions of the metric store created ahead (%s .. %s)',
                                              pg_catalog.cardinality(v_created), v_created[1],
                                              v_created[pg_catalog.cardinality(v_created)]);
    end if;
    if v_deleted > 0 or pg_catalog.cardinality(v_dropped) > 0 then
        return query select 'prune'::text,
                            pg_catalog.format('samples older than %s removed: %s daily partitions dropped whole%s, '
                                              || '%s rows deleted one by one', v_retention,
                                              pg_catalog.cardinality(v_dropped),
                                              case when pg_catalog.cardinality(v_dropped) > 0
                                                   then pg_catalog.format(' (%s .. %s)', v_dropped[1],
                                                        v_dropped[pg_catalog.cardinality(v_dropped)])
                                                   else '' end,
                                              v_deleted);
    end if;
    if v_pulls_deleted > 0 then
        return query select 'prune'::text,
                            pg_catalog.format('pull records older than %s removed: %s rows', v_retention,
                                              v_pulls_deleted);
    end if;
    if pg_catalog.cardinality(v_busy) > 0 then
        return query select 'skipped'::text,
                            pg_catalog.format('metric store maintenance step skipped, a lock was busy for 50 ms: %s; '
                                              || 'the next run retries', pg_catalog.array_to_string(v_busy, ', '));
    end if;
end
$$;

revoke all on function public.chat_run_v11_maintenance() from public;
grant execute on function public.chat_run_v11_maintenance() to chat_rollout_ingest;
comment on function public.chat_run_v11_maintenance() is
'Ingest: partition maintenance of the metric store, to schedule on its own (e.g. hourly with pg_cron, in '
'autocommit): daily partitions kept 3 to 7 days ahead, days past the retention policy dropped whole. One run at a '
'time (a busy run says skipped); each DDL waits at most 50 ms for a lock, else skipped and retried next run. Pull '
'records (chat-rollout pull) past the same retention are deleted. Its '
'locks last until the caller commits: never call it inside a longer transaction. One row per action: partition, '
'prune, skipped.';

-- >>> sql/0720_function_chat_put_v11_metric_pulls.sql
-- Keeps what the puller read (SPEC 7, "Prometheus in"), a JSON array of records
-- {metric, cohort, bucket_start, field, query, query_time, outcome, value, answer_sha256, answer_excerpt}, all or
-- nothing; a re-pulled (metric, cohort, bucket_start, field) replaces its record. chat-rollout pull calls it in the
-- transaction that writes the bucket's samples, so a stored sample always has its provenance and a sample that was
-- not written (an empty or NaN answer) has its reason.
create or replace function public.chat_put_v11_metric_pulls(p_pulls jsonb)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_bad record;
    v_count integer;
begin
    perform chat_v11.begin_write('chat_put_v11_metric_pulls');
    if p_pulls is null or pg_catalog.jsonb_typeof(p_pulls) is distinct from 'array' then
        raise exception using
            errcode = 'RO020',
            message = 'p_pulls must be a JSON array of pull records',
            detail = format('Got %s.', coalesce(pg_catalog.jsonb_typeof(p_pulls), 'null')),
            hint = 'Pass [{"metric": ..., "cohort": "canary", "bucket_start": "2026-11-26T10:00:10Z", "field": '
                || '"numerator", "query": ..., "query_time": ..., "outcome": "value", "value": 0, '
                || '"answer_sha256": ..., "answer_excerpt": ...}, ...].';
    end if;
    -- the first record that cannot be stored, by position, with its problem (the table's constraints, named)
    select e.ord, v.problem, v.code into v_bad
      from pg_catalog.jsonb_array_elements(p_pulls) with ordinality as e (pull, ord)
     cross join lateral (
         select case
             when pg_catalog.jsonb_typeof(e.pull) is distinct from 'object' then 'RO022:the record is not a JSON object'
             when e.pull - '{metric,cohort,bucket_start,field,query,query_time,outcome,value,answer_sha256,'
                           'answer_excerpt}'::text[] <> '{}'::jsonb
                 then 'RO022:unknown key in ' || chat_v11.shown(e.pull::text)
             when pg_catalog.jsonb_path_exists(e.pull, 'strict $.* ? (@.type() != "string" && @.type() != "number" '
                                                       '&& @.type() != "null")')
                 then 'RO022:every field is a JSON string, number or null'
             when not exists (select from chat_v11.metric as m where m.metric = e.pull ->> 'metric')
                 then 'RO021:unknown metric ' || chat_v11.shown(e.pull ->> 'metric')
             when (e.pull ->> 'cohort') is null or (e.pull ->> 'cohort') not in ('canary', 'control')
                 then 'RO022:cohort must be "canary" or "control"'
             when (e.pull ->> 'field') is null or (e.pull ->> 'field') not in ('numerator', 'denominator', 'value')
                 then 'RO022:field must be numerator, denominator or value'
             when (e.pull ->> 'outcome') is null
                  or (e.pull ->> 'outcome') not in ('value', 'empty', 'nan', 'multiple_series')
                 then 'RO022:outcome must be value, empty, nan or multiple_series'
             when ((e.pull ->> 'outcome') = 'value') <> (pg_catalog.jsonb_typeof(e.pull -> 'value') = 'number')
                 then 'RO022:value is a JSON number exactly when the outcome is value'
             when coalesce(e.pull ->> 'answer_sha256', '') !~ '^[0-9a-f]{64}$'
                 then 'RO022:answer_sha256 must be 64 lowercase hex digits'
             when chat_v11.is_blank(e.pull ->> 'query') or pg_catalog.length(e.pull ->> 'query') > 4500
                 then 'RO022:query must be the query sent, at most 4500 characters'
             when (e.pull ->> 'answer_excerpt') is null or pg_catalog.length(e.pull ->> 'answer_excerpt') > 2000
                 then 'RO022:answer_excerpt must be a string of at most 2000 characters'
             when coalesce(e.pull ->> 'bucket_start', '')
                  !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|z|[+-]\d{2}(:?\d{2})?)$'
                  or coalesce(e.pull ->> 'query_time', '')
                  !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|z|[+-]\d{2}(:?\d{2})?)$'
                 then 'RO022:bucket_start and query_time must be ISO 8601 timestamps with an offset'
         end as verdict
     ) as c
     cross join lateral (select pg_catalog.split_part(c.verdict, ':', 1) as code,
                                pg_catalog.substr(c.verdict, 7) as problem) as v
     where c.verdict is not null
     order by e.ord
     limit 1;
    if v_bad.ord is not null then
        raise exception using
            errcode = v_bad.code,
            message = format('pull record %s of %s: %s', v_bad.ord, pg_catalog.jsonb_array_length(p_pulls),
                             v_bad.problem),
            detail = 'Nothing was written.',
            hint = 'Fix the record and send the whole batch again.';
    end if;
    begin
        insert into chat_v11.metric_pull as p (
            metric, cohort, bucket_start, field, query, query_time, outcome, value, answer_sha256, answer_excerpt
        )
        select x.metric, x.cohort, x.bucket_start, x.field, x.query, x.query_time, x.outcome, x.value,
               x.answer_sha256, x.answer_excerpt
          from pg_catalog.jsonb_to_recordset(p_pulls) as x (
              metric text, cohort text, bucket_start timestamptz, field text, query text, query_time timestamptz,
              outcome text, value double precision, answer_sha256 text, answer_excerpt text
          )
        on conflict on constraint metric_pull_pkey do update
            set query = excluded.query, query_time = excluded.query_time, outcome = excluded.outcome,
                value = excluded.value, answer_sha256 = excluded.answer_sha256,
                answer_excerpt = excluded.answer_excerpt, pulled_at = pg_catalog.clock_timestamp(),
                pulled_by = session_user;
        get diagnostics v_count = row_count;
    exception
        when cardinality_violation then
            raise exception using
                errcode = 'RO025',
                message = 'the same (metric, cohort, bucket_start, field) twice in one batch of pull records',
                detail = 'Nothing was written.',
                hint = 'Send each record once.';
        when data_exception or check_violation then
            raise exception using
                errcode = case when sqlerrm ~ 'aligned' then 'RO023' else 'RO022' end,
                message = format('a pull record could not be stored: %s', chat_v11.shown(sqlerrm)),
                detail = 'bucket_start is aligned to 10 seconds in UTC; value is a finite number. Nothing was written.',
                hint = 'Fix the record and send the whole batch again.';
    end;
    return v_count;
end
$$;

revoke all on function public.chat_put_v11_metric_pulls(jsonb) from public;
grant execute on function public.chat_put_v11_metric_pulls(jsonb) to chat_rollout_ingest;
comment on function public.chat_put_v11_metric_pulls(jsonb) is
'Metric pullers: keep what was read per metric, cohort, bucket and field [{metric, cohort, bucket_start, field, '
'query, query_time, outcome, value, answer_sha256, answer_excerpt}], all or nothing; a re-pulled record replaces '
'the old one. Returns the number of records written.';

-- >>> sql/0725_function_chat_put_v11_active_alerts.sql
-- Keeps what the puller read from Alertmanager (SPEC 7, "Active alerts"), replacing the one record atomically.
-- p_alerts: the active P0/P1 alerts as read, a JSON array of {alertname, severity ("P0" or "P1"), startsAt,
-- fingerprint, silenced}; p_error non-null: Alertmanager could not be read (p_alerts null or empty), the record says
-- so and keeps the alerts of the last successful read, so an outage never hides an alert already known.
create or replace function public.chat_put_v11_active_alerts(p_alerts jsonb, p_error text default null)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_bad record;
    v_count integer;
begin
    perform chat_v11.begin_write('chat_put_v11_active_alerts');
    if p_error is not null then
        if chat_v11.is_blank(p_error) or pg_catalog.length(p_error) > 2000
           or coalesce(p_alerts, '[]'::jsonb) <> '[]'::jsonb then
            raise exception using
                errcode = 'RO022',
                message = format('an unreachable Alertmanager is said with an error of 1-2000 characters and no '
                                 'alerts, not %s with %s', chat_v11.shown(p_error),
                                 chat_v11.shown(p_alerts::text)),
                detail = 'Nothing was written.',
                hint = 'Call chat_put_v11_active_alerts(null, ''connection refused'') when the read failed, '
                    || 'chat_put_v11_active_alerts(''[...]'') when it succeeded.';
        end if;
    else
        if p_alerts is null or pg_catalog.jsonb_typeof(p_alerts) is distinct from 'array'
           or pg_catalog.jsonb_array_length(p_alerts) > 200 then
            raise exception using
                errcode = 'RO020',
                message = 'p_alerts must be a JSON array of at most 200 alerts',
                detail = format('Got %s.', case
                    when pg_catalog.jsonb_typeof(p_alerts) = 'array'
                        then format('%s alerts', pg_catalog.jsonb_array_length(p_alerts))
                    else coalesce(pg_catalog.jsonb_typeof(p_alerts), 'null')
                end),
                hint = 'Pass [{"alertname": "ChatAckSpike", "severity": "P1", "startsAt": "2026-11-26T10:00:00Z", '
                    || '"fingerprint": "4a0e4b0c2c3d1e2f", "silenced": false}, ...].';
        end if;
        -- the first alert that cannot be stored, by position, with its problem
        select e.ord, c.problem into v_bad
          from pg_catalog.jsonb_array_elements(p_alerts) with ordinality as e (alert, ord)
         cross join lateral (
             select case
                 when pg_catalog.jsonb_typeof(e.alert) is distinct from 'object' then 'the alert is not a JSON object'
                 when (select array_agg(k order by k) from pg_catalog.jsonb_object_keys(e.alert) as k)
                      is distinct from '{alertname,fingerprint,severity,silenced,startsAt}'::text[]
                     then 'the keys must be exactly alertname, severity, startsAt, fingerprint and silenced, not '
                         || chat_v11.shown(e.alert::text)
                 when pg_catalog.jsonb_typeof(e.alert -> 'alertname') is distinct from 'string'
                      or chat_v11.is_blank(e.alert ->> 'alertname') or pg_catalog.length(e.alert ->> 'alertname') > 200
                     then 'alertname must be a string of 1-200 characters'
                 when pg_catalog.jsonb_typeof(e.alert -> 'severity') is distinct from 'string'
                      or (e.alert ->> 'severity') not in ('P0', 'P1')
                     then 'severity must be "P0" or "P1", not ' || chat_v11.shown(e.alert ->> 'severity')
                 when pg_catalog.jsonb_typeof(e.alert -> 'startsAt') is distinct from 'string'
                      or (e.alert ->> 'startsAt')
                      !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|z|[+-]\d{2}(:?\d{2})?)$'
                      or not chat_v11.is_timestamptz(e.alert ->> 'startsAt')
                     then 'startsAt must be an ISO 8601 timestamp with an offset'
                 when pg_catalog.jsonb_typeof(e.alert -> 'fingerprint') is distinct from 'string'
                      or chat_v11.is_blank(e.alert ->> 'fingerprint')
                      or pg_catalog.length(e.alert ->> 'fingerprint') > 100
                     then 'fingerprint must be a string of 1-100 characters'
                 when pg_catalog.jsonb_typeof(e.alert -> 'silenced') is distinct from 'boolean'
                     then 'silenced must be a JSON boolean'
             end as problem
         ) as c
         where c.problem is not null
         order by e.ord
         limit 1;
        if v_bad.ord is not null then
            raise exception using
                errcode = 'RO022',
                message = format('alert %s of %s: %s', v_bad.ord, pg_catalog.jsonb_array_length(p_alerts),
                                 v_bad.problem),
                detail = 'Nothing was written.',
                hint = 'Fix the alert and send the whole read again.';
        end if;
    end if;

    insert into chat_v11.alert_source as s (singleton, reachable, error, unreachable_since, alerts)
    values (
        true, p_error is null, p_error, case when p_error is not null then pg_catalog.now() end,
        coalesce(p_alerts, '[]'::jsonb)
    )
    on conflict on constraint alert_source_pkey do update
        set checked_at = pg_catalog.now(),
            checked_by = session_user,
            reachable = excluded.reachable,
            error = excluded.error,
            unreachable_since = case
                when excluded.reachable then null
                else coalesce(s.unreachable_since, excluded.unreachable_since)
            end,
            alerts = case when excluded.reachable then excluded.alerts else s.alerts end;
    select pg_catalog.jsonb_array_length(s.alerts) into v_count from chat_v11.alert_source as s;
    return v_count;
end
$$;

revoke all on function public.chat_put_v11_active_alerts(jsonb, text) from public;
grant execute on function public.chat_put_v11_active_alerts(jsonb, text) to chat_rollout_ingest;
comment on function public.chat_put_v11_active_alerts(jsonb, text) is
'Alert pullers: replace the record of the last Alertmanager read with the active P0/P1 alerts [{alertname, '
'severity, startsAt, fingerprint, silenced}] (at most 200), or with p_error when Alertmanager could not be read '
'(the alerts of the last successful read are kept). Returns the number of alerts on record. RO020/RO022 for '
'malformed input.';
