-- >>> sql/0000_roles.sql
-- The four group roles of chat-rollout (NOLOGIN; DBAs grant them to login roles).
-- Created only when absent: roles are cluster-wide and may already exist.
do $roles$
declare
    v_role text;
begin
    foreach v_role in array array[
        'chat_rollout_reader', 'chat_rollout_operator',
        'chat_rollout_ingest', 'chat_rollout_admin'
    ] loop
        if not exists (select from pg_catalog.pg_roles where rolname = v_role) then
            execute format('create role %I nologin', v_role);
        end if;
    end loop;
    -- operators and admins read everything readers read
    if not pg_catalog.pg_has_role('chat_rollout_operator', 'chat_rollout_reader', 'member') then
        grant chat_rollout_reader to chat_rollout_operator;
    end if;
    if not pg_catalog.pg_has_role('chat_rollout_admin', 'chat_rollout_reader', 'member') then
        grant chat_rollout_reader to chat_rollout_admin;
    end if;
end
$roles$;

-- >>> sql/0010_schema_chat_v11.sql
-- Internal tables and helpers of the Chat v1.1 rollout control plane.
-- Nobody but the owner may use it directly: the API is the chat_*_v11_* functions in public.
create schema chat_v11;
revoke all on schema chat_v11 from public;
comment on schema chat_v11 is
'chat-rollout internals (Chat protocol v1.1 staged rollout). Write only through public.chat_*_v11_* functions.';

-- >>> sql/0100_table_stage.sql
-- The ordered stage catalog: traffic share and minimum observation window of each stage.
create table chat_v11.stage (
    stage text not null,
    -- squawk-ignore prefer-bigint-over-int -- ordinal only ranks a handful of stages
    ordinal integer not null,
    traffic_percent numeric(5, 2) not null,
    min_observation interval not null,
    constraint stage_pkey primary key (stage),
    constraint stage_ordinal_unique unique (ordinal),
    constraint stage_name_valid check (stage ~ '^[a-z][a-z0-9_]{0,62}$'),
    constraint stage_traffic_percent_range check (traffic_percent between 0 and 100),
    constraint stage_min_observation_not_negative check (min_observation >= interval '0')
);

comment on table chat_v11.stage is
'Rollout stages in promotion order (ordinal). Change with public.chat_set_v11_stage_settings().';

insert into chat_v11.stage (stage, ordinal, traffic_percent, min_observation) values
('off', 0, 0, interval '0'),
('canary_1', 1, 1, interval '30 minutes'),
('canary_5', 2, 5, interval '30 minutes'),
('canary_25', 3, 25, interval '30 minutes'),
('canary_50', 4, 50, interval '30 minutes'),
('full', 5, 100, interval '30 minutes');

-- >>> sql/0110_table_policy.sql
-- Rollout policies (auto_kill, p0_exit_window, state_lock_timeout, retention), one row per key.
create table chat_v11.policy (
    key text not null,
    value jsonb not null,
    description text not null,
    changed_at timestamptz not null default pg_catalog.now(),
    changed_by text not null default session_user,
    constraint policy_pkey primary key (key),
    constraint policy_key_known check (
        key in ('auto_kill', 'p0_exit_window', 'state_lock_timeout', 'retention')
    )
);

comment on table chat_v11.policy is
'Rollout policies. Change with public.chat_set_v11_policy(); every change is kept in chat_v11.config_change.';

insert into chat_v11.policy (key, value, description) values
(
    'auto_kill', 'true',
    'A P0 failure arriving with metric data engages the kill switch in the same transaction.'
),
(
    'p0_exit_window', '"30 minutes"',
    'How long every P0 check must pass before a controlled resume (30-60 minutes).'
),
(
    'state_lock_timeout', '"2 seconds"',
    'How long a state change waits for the state row before it fails naming the blocker.'
),
(
    'retention', '"30 days"',
    'How long metric samples are kept.'
);

-- >>> sql/0120_table_metric.sql
-- The metric catalog: every release-gate check and the rule that judges it (SPEC 4.4, 4.6.1).
create table chat_v11.metric (
    metric text not null,
    -- squawk-ignore prefer-bigint-over-int -- ordinal only ranks a handful of checks
    ordinal integer not null,
    kind text not null,
    severity text not null,
    rule text not null,
    window_length interval not null,
    freshness interval not null,
    min_volume numeric not null,
    factor numeric,
    slack numeric,
    threshold numeric,
    alpha numeric,
    static_baseline numeric,
    description text not null,
    constraint metric_pkey primary key (metric),
    constraint metric_ordinal_unique unique (ordinal),
    constraint metric_kind_valid check (kind in ('rate', 'count', 'latency_ms')),
    constraint metric_severity_valid check (severity in ('P0', 'P1')),
    constraint metric_rule_valid check (
        rule in ('zero', 'threshold', 'no_new', 'baseline_ratio')
    ),
    constraint metric_window_positive check (window_length > interval '0'),
    constraint metric_freshness_positive check (freshness > interval '0'),
    constraint metric_min_volume_not_negative check (min_volume >= 0),
    constraint metric_rule_settings_valid check (
        (rule <> 'threshold' or threshold is not null)
        and (rule <> 'baseline_ratio' or factor is not null)
        and (factor is null or factor >= 1)
        and (slack is null or slack >= 0)
        and (alpha is null or (alpha > 0 and alpha < 0.5))
        and (static_baseline is null or static_baseline >= 0)
    )
);

comment on table chat_v11.metric is
'Metric catalog with the playbook''s metric names and the rule of each release-gate check.';

insert into chat_v11.metric (
    metric, ordinal, kind, severity, rule, window_length, freshness, min_volume,
    factor, slack, threshold, alpha, static_baseline, description
) values
(
    'ack_without_receipt_10s_rate', 1, 'rate', 'P0', 'zero',
    interval '15 minutes', interval '2 minutes', 1, null, null, 0, null, null,
    'ACK accepted|duplicate without a receipt within 10 s: must be exactly 0 over all cohorts.'
),
(
    'timeline_duplicate_detected_rate', 2, 'rate', 'P0', 'zero',
    interval '15 minutes', interval '2 minutes', 1, null, null, 0, null, null,
    'Duplicate timeline entries detected: must be exactly 0 over all cohorts.'
),
(
    'read_rollback_detected_rate', 3, 'rate', 'P0', 'zero',
    interval '15 minutes', interval '2 minutes', 1, null, null, 0, null, null,
    'Read position rolled back: must be exactly 0 over all cohorts.'
),
(
    'send_stall_rate', 4, 'rate', 'P0', 'threshold',
    interval '15 minutes', interval '2 minutes', 1, null, null, 0.01, null, null,
    'Mass user-facing send stall: at most the threshold in every cohort.'
),
(
    'pending_forever_count', 5, 'count', 'P0', 'no_new',
    interval '15 minutes', interval '2 minutes', 1, null, null, 0, null, null,
    'Messages pending forever: no new ones in the window.'
),
(
    'resync_range_unavailable_rate', 6, 'rate', 'P1', 'baseline_ratio',
    interval '30 minutes', interval '2 minutes', 1000, 1.5, 0.001, null, 0.01, null,
    'ERR_RESYNC_RANGE_UNAVAILABLE: canary at most baseline x factor + slack.'
),
(
    'full_state_rate', 7, 'rate', 'P1', 'baseline_ratio',
    interval '30 minutes', interval '2 minutes', 1000, 1.5, 0.001, null, 0.01, null,
    'Full-state dialog loads: canary at most baseline x factor + slack.'
),
(
    'forced_resync_rate', 8, 'rate', 'P1', 'baseline_ratio',
    interval '30 minutes', interval '2 minutes', 1000, 1.5, 0.001, null, 0.01, null,
    'Forced resyncs: canary at most baseline x factor + slack.'
),
(
    'recovery_p95_ms', 9, 'latency_ms', 'P1', 'baseline_ratio',
    interval '30 minutes', interval '2 minutes', 10, 1.2, 0, null, null, null,
    'p95 recovery time: canary median of bucket p95 at most baseline x factor.'
);

-- >>> sql/0130_table_rollout_state.sql
-- The rollout state: exactly one row, changed only by the state functions under a row lock.
create table chat_v11.rollout_state (
    singleton boolean not null default true,
    stage text not null,
    kill_switch boolean not null,
    promotion_frozen boolean not null,
    reason text not null,
    changed_by text not null,
    actor text,
    changed_at timestamptz not null,
    version bigint not null,
    constraint rollout_state_pkey primary key (singleton),
    constraint rollout_state_single_row check (singleton),
    constraint rollout_state_stage_fkey foreign key (stage) references chat_v11.stage (stage),
    constraint rollout_state_version_positive check (version >= 1)
);

comment on table chat_v11.rollout_state is
'The single rollout state row. Read with public.chat_get_v11_rollout_state().';

-- >>> sql/0140_table_rollout_history.sql
-- Append-only, hash-chained history: one row per accepted state call (SPEC 4.3).
create table chat_v11.rollout_history (
    version bigint not null,
    changed_at timestamptz not null,
    changed_by text not null,
    actor text,
    action text not null,
    from_stage text,
    to_stage text not null,
    from_kill_switch boolean,
    to_kill_switch boolean not null,
    promotion_frozen boolean not null,
    reason text not null,
    note text,
    gate_snapshot jsonb,
    incident_id bigint,
    prev_hash text not null,
    hash text not null,
    constraint rollout_history_pkey primary key (version),
    constraint rollout_history_action_valid check (
        action in ('init', 'promote', 'rollback', 'hold', 'kill', 'resume', 'unfreeze', 'auto_kill')
    ),
    constraint rollout_history_version_positive check (version >= 1),
    constraint rollout_history_hash_format check (hash ~ '^[0-9a-f]{64}$' and prev_hash ~ '^[0-9a-f]{64}$')
);

comment on table chat_v11.rollout_history is
'Append-only rollout history; hash = sha256(prev_hash || canonical row). Check with public.chat_verify_v11_history().';

-- >>> sql/0150_table_config_change.sql
-- Append-only audit of configuration changes (stages, policies, metric rules).
create table chat_v11.config_change (
    change_id bigint generated always as identity,
    changed_at timestamptz not null default pg_catalog.clock_timestamp(),
    changed_by text not null default session_user,
    actor text,
    target text not null,
    target_key text not null,
    old_value jsonb,
    new_value jsonb not null,
    constraint config_change_pkey primary key (change_id),
    constraint config_change_target_valid check (target in ('stage', 'policy', 'metric_rule'))
);

comment on table chat_v11.config_change is
'Who changed which stage setting, policy or metric rule, when, from what to what. Append-only.';

-- >>> sql/0200_function_refuse_history_change.sql
-- Trigger function: refuses UPDATE, DELETE and TRUNCATE of an append-only audit table, for every role.
create or replace function chat_v11.refuse_history_change()
returns trigger
language plpgsql
set search_path = pg_catalog, chat_v11, pg_temp
as $$
begin
    raise exception using
        errcode = 'RO012',
        message = format('%s on %s is refused: the table is append-only', tg_op, tg_table_name),
        detail = 'Audit rows of chat-rollout are never changed or removed, not even by the owner.',
        hint = 'Record a new decision through the public chat_*_v11_* functions instead.';
end
$$;

revoke all on function chat_v11.refuse_history_change() from public;
comment on function chat_v11.refuse_history_change() is
'Trigger: refuses UPDATE, DELETE and TRUNCATE on append-only audit tables (SQLSTATE RO012).';

-- >>> sql/0210_function_history_row_hash.sql
-- The hash of one history row: sha256(prev_hash || canonical row), hex.
-- The canonical row is a JSON array in column order with changed_at in UTC, so no setting changes it.
create or replace function chat_v11.history_row_hash(p_row chat_v11.rollout_history)
returns text
language sql
stable
as $$
    select pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
        p_row.prev_hash || pg_catalog.jsonb_build_array(
            p_row.version,
            pg_catalog.to_char(p_row.changed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            p_row.changed_by, p_row.actor, p_row.action,
            p_row.from_stage, p_row.to_stage, p_row.from_kill_switch, p_row.to_kill_switch,
            p_row.promotion_frozen, p_row.reason, p_row.note, p_row.gate_snapshot, p_row.incident_id
        )::text,
        'UTF8'
    )), 'hex')
$$;

revoke all on function chat_v11.history_row_hash(chat_v11.rollout_history) from public;
comment on function chat_v11.history_row_hash(chat_v11.rollout_history) is
'sha256(prev_hash || canonical row) of a rollout history row, as 64 hex digits.';

-- >>> sql/0220_function_chain_history_row.sql
-- Trigger function: links a new history row to the chain (prev_hash, hash) and keeps versions contiguous.
create or replace function chat_v11.chain_history_row()
returns trigger
language plpgsql
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_last_version bigint;
    v_last_hash text;
begin
    select h.version, h.hash
      into v_last_version, v_last_hash
      from chat_v11.rollout_history as h
     order by h.version desc
     limit 1;
    if new.version is distinct from coalesce(v_last_version, 0) + 1 then
        raise exception using
            errcode = 'RO012',
            message = format('history version %s does not follow version %s', new.version, v_last_version),
            detail = 'History versions are contiguous: each row follows the previous one by exactly 1.',
            hint = 'Change the state through public.chat_set_v11_rollout_state(); never insert history directly.';
    end if;
    new.prev_hash := coalesce(v_last_hash, repeat('0', 64));
    new.hash := chat_v11.history_row_hash(new);
    return new;
end
$$;

revoke all on function chat_v11.chain_history_row() from public;
comment on function chat_v11.chain_history_row() is
'Trigger: sets prev_hash and hash of a new rollout history row; refuses a gap in versions (RO012).';

-- >>> sql/0230_trigger_rollout_history_append_only.sql
-- Rollout history is append-only and hash-chained.
create trigger rollout_history_chain
before insert on chat_v11.rollout_history
for each row execute function chat_v11.chain_history_row();

create trigger rollout_history_no_update_delete
before update or delete on chat_v11.rollout_history
for each row execute function chat_v11.refuse_history_change();

create trigger rollout_history_no_truncate
before truncate on chat_v11.rollout_history
for each statement execute function chat_v11.refuse_history_change();

-- >>> sql/0240_trigger_config_change_append_only.sql
-- The configuration audit is append-only.
create trigger config_change_no_update_delete
before update or delete on chat_v11.config_change
for each row execute function chat_v11.refuse_history_change();

create trigger config_change_no_truncate
before truncate on chat_v11.config_change
for each statement execute function chat_v11.refuse_history_change();

-- >>> sql/0300_function_claimed_actor.sql
-- Who claims the change beside session_user: the application's chat.actor setting, or null.
create or replace function chat_v11.claimed_actor()
returns text
language sql
stable
as $$
    select pg_catalog.left(nullif(pg_catalog.btrim(pg_catalog.current_setting('chat.actor', true)), ''), 200)
$$;

revoke all on function chat_v11.claimed_actor() from public;
comment on function chat_v11.claimed_actor() is
'The actor an application claims with SET chat.actor (kept beside session_user, never instead of it).';

-- >>> sql/0310_function_checked_reason.sql
-- Validates a reason (required, trimmed, 1-500 characters, any Unicode) and returns it trimmed.
create or replace function chat_v11.checked_reason(p_reason text)
returns text
language plpgsql
stable
as $$
declare
    v_reason text := pg_catalog.regexp_replace(p_reason, '^[[:space:]]+|[[:space:]]+$', '', 'g');
begin
    if v_reason is null or v_reason = '' or pg_catalog.char_length(v_reason) > 500 then
        raise exception using
            errcode = 'RO001',
            message = 'a reason is required: 1 to 500 characters after trimming',
            detail = case
                when p_reason is null then 'The reason is null.'
                when v_reason = '' then 'The reason is empty or only white space.'
                else format('The reason has %s characters.', pg_catalog.char_length(v_reason))
            end,
            hint = 'Say why in a few words, for example ''incident P0'' or ''hold''; the reason is kept in the history.';
    end if;
    return v_reason;
end
$$;

revoke all on function chat_v11.checked_reason(text) from public;
comment on function chat_v11.checked_reason(text) is
'Returns the trimmed reason or raises RO001 when it is missing, blank or longer than 500 characters.';

-- >>> sql/0320_function_policy_interval.sql
-- The value of an interval policy (p0_exit_window, state_lock_timeout, retention).
create or replace function chat_v11.policy_interval(p_key text)
returns interval
language sql
stable
as $$
    select (p.value #>> '{}')::interval from chat_v11.policy as p where p.key = p_key
$$;

revoke all on function chat_v11.policy_interval(text) from public;
comment on function chat_v11.policy_interval(text) is
'The interval value of a rollout policy, or null when the key is unknown.';

-- >>> sql/0330_function_state_at.sql
-- The rollout state in force at a moment, from the history (no row: before the first history row).
-- A moment at or after the transaction start sees the newest committed row.
create or replace function chat_v11.state_at(p_at timestamptz)
returns table (
    stage text,
    kill_switch boolean,
    promotion_frozen boolean,
    incident_id bigint,
    version bigint,
    stage_since timestamptz
)
language sql
stable
as $$
    select
        h.to_stage,
        h.to_kill_switch,
        h.promotion_frozen,
        h.incident_id,
        h.version,
        (
            select max(s.changed_at)
              from chat_v11.rollout_history as s
             where s.version <= h.version
               and (s.action = 'init' or s.from_stage is distinct from s.to_stage)
        )
      from chat_v11.rollout_history as h
     where p_at >= pg_catalog.now() or h.changed_at <= p_at
     order by h.version desc
     limit 1
$$;

revoke all on function chat_v11.state_at(timestamptz) from public;
comment on function chat_v11.state_at(timestamptz) is
'Stage, kill switch, freeze, incident, version and stage start in force at p_at, read from the history.';

-- >>> sql/0400_function_evaluate_checks.sql
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

    -- GUARD: the Go/No-Go of playbook section 9 (gates green, nothing open)
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
        v_go := v_go || format('incident %s is open', p_incident_id);
    end if;

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
'Gate verdict (gate_p0_ok, gate_p1_ok, rollout_decision) and the Go/No-Go blockers for a state at p_at.';

-- >>> sql/0495_function_xmax_holders.sql
-- The transaction ids that may hold a row lock: the row's xmax, and its members when it is a MultiXactId
-- (a row locked in a subtransaction and then updated carries a MultiXactId).
create or replace function chat_v11.xmax_holders(p_xmax xid)
returns setof xid
language plpgsql
volatile
as $$
begin
    if p_xmax is null then
        return;
    end if;
    return next p_xmax;
    begin
        return query select m.xid from pg_catalog.pg_get_multixact_members(p_xmax) as m;
    exception when others then
        return;  -- not a MultiXactId (or no longer one): the plain xid above is the answer
    end;
end
$$;

revoke all on function chat_v11.xmax_holders(xid) from public;
comment on function chat_v11.xmax_holders(xid) is
'Transaction ids that may hold a row lock: the xmax itself and, if it is a MultiXactId, its members.';

-- >>> sql/0500_function_state_lockers.sql
-- Describes the backends that hold (or queue ahead of us for) the rollout state row or table.
create or replace function chat_v11.state_lockers()
returns text
language plpgsql
volatile
as $$
declare
    v_xmax xid;
    v_lockers text;
begin
    -- the row's locker, if the table itself can be read (an ACCESS EXCLUSIVE holder forbids even that)
    perform pg_catalog.set_config('lock_timeout', '50ms', true);
    begin
        select s.xmax into v_xmax from chat_v11.rollout_state as s;
    exception when lock_not_available then
        v_xmax := null;
    end;

    with lockers as (
        select l.pid, l.granted, l.mode, l.locktype
          from pg_catalog.pg_locks as l
         where l.locktype = 'transactionid'
           and l.mode = 'ExclusiveLock'
           and l.granted
           and l.transactionid in (select h.x from chat_v11.xmax_holders(v_xmax) as h (x))
           and l.pid <> pg_catalog.pg_backend_pid()
        union
        select l.pid, l.granted, l.mode, l.locktype
          from pg_catalog.pg_locks as l
         where l.locktype = 'relation'
           and l.relation = 'chat_v11.rollout_state'::regclass
           and l.mode in ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
           and l.pid <> pg_catalog.pg_backend_pid()
    )
    select pg_catalog.string_agg(
        format(
            'pid %s (%s%s, user %s, application %s, %s since %s UTC, query: %s)',
            k.pid,
            case when k.granted then 'holds ' else 'waits for ' end,
            case when k.locktype = 'transactionid' then 'the state row' else k.mode || ' on the state table' end,
            coalesce(a.usename::text, '?'),
            coalesce(nullif(a.application_name, ''), '?'),
            coalesce(a.state, '?'),
            coalesce(pg_catalog.to_char(coalesce(a.xact_start, a.state_change) at time zone 'UTC',
                                        'YYYY-MM-DD HH24:MI:SS'), '?'),
            coalesce(pg_catalog.left(pg_catalog.regexp_replace(a.query, '[[:space:]]+', ' ', 'g'), 120), '?')
        ),
        '; ' order by k.pid
    )
      into v_lockers
      from lockers as k
      left join pg_catalog.pg_stat_activity as a on a.pid = k.pid;
    return v_lockers;
end
$$;

revoke all on function chat_v11.state_lockers() from public;
comment on function chat_v11.state_lockers() is
'Human-readable list of the backends holding or queuing for the rollout state lock (pid, user, query).';

-- >>> sql/0510_function_lock_state.sql
-- Bounds this transaction's lock waits by the state_lock_timeout policy, then locks the state row.
-- On timeout raises RO010 naming the blocking backends: a state call never hangs.
-- Call it first: a caller that declares a chat_v11.rollout_state variable already waited for the
-- table's rowtype (an AccessShareLock taken at block entry) with no bound. The caller restores lock_timeout.
create or replace function chat_v11.lock_state()
returns chat_v11.rollout_state
language plpgsql
volatile
as $$
declare
    v_state record;
    v_timeout interval := coalesce(chat_v11.policy_interval('state_lock_timeout'), interval '2 seconds');
    v_lockers text;
begin
    perform pg_catalog.set_config(
        'lock_timeout', (ceil(extract(epoch from v_timeout) * 1000))::bigint::text, true
    );
    begin
        select s.* into strict v_state from chat_v11.rollout_state as s for update;
    exception when lock_not_available then
        v_lockers := chat_v11.state_lockers();
        raise exception using
            errcode = 'RO010',
            message = format('the rollout state is locked by another session: gave up after %s', v_timeout),
            detail = format('Blocked by %s.',
                            coalesce(v_lockers, 'a backend that released the lock meanwhile')),
            hint = 'Retry the call. If the blocker is stuck (idle in transaction), end it with '
                || 'SELECT pg_terminate_backend(<pid>) and retry.';
    end;
    return v_state;
end
$$;

revoke all on function chat_v11.lock_state() from public;
comment on function chat_v11.lock_state() is
'Bounds lock waits by state_lock_timeout and locks the rollout state row, or raises RO010 naming the blocker.';

-- >>> sql/0520_function_apply_transition.sql
-- Writes one accepted state change: the state row, its history row, a durable commit and a NOTIFY.
-- The caller holds the state lock (chat_v11.lock_state) and has checked every guard.
create or replace function chat_v11.apply_transition(
    p_action text,
    p_to_stage text,
    p_to_kill_switch boolean,
    p_promotion_frozen boolean,
    p_reason text,
    p_note text,
    p_gate_snapshot jsonb,
    p_actor text
)
returns chat_v11.rollout_state
language plpgsql
volatile
as $$
declare
    v_old chat_v11.rollout_state;
    v_new chat_v11.rollout_state;
    v_now timestamptz := pg_catalog.clock_timestamp();
begin
    -- durable even where the database default is off; lasts until this transaction ends
    perform pg_catalog.set_config('synchronous_commit', 'on', true);

    select s.* into strict v_old from chat_v11.rollout_state as s;
    update chat_v11.rollout_state as s
       set stage = p_to_stage,
           kill_switch = p_to_kill_switch,
           promotion_frozen = p_promotion_frozen,
           reason = p_reason,
           changed_by = session_user,
           actor = coalesce(p_actor, chat_v11.claimed_actor()),
           changed_at = v_now,
           version = s.version + 1
    returning s.* into strict v_new;

    insert into chat_v11.rollout_history (
        version, changed_at, changed_by, actor, action,
        from_stage, to_stage, from_kill_switch, to_kill_switch, promotion_frozen,
        reason, note, gate_snapshot, incident_id
    ) values (
        v_new.version, v_now, v_new.changed_by, v_new.actor, p_action,
        v_old.stage, v_new.stage, v_old.kill_switch, v_new.kill_switch, v_new.promotion_frozen,
        p_reason, p_note, p_gate_snapshot, null
    );

    perform pg_catalog.pg_notify('chat_v11_rollout', pg_catalog.json_build_object(
        'version', v_new.version,
        'action', p_action,
        'stage', v_new.stage,
        'traffic_percent', (select t.traffic_percent from chat_v11.stage as t where t.stage = v_new.stage),
        'kill_switch', v_new.kill_switch,
        'promotion_frozen', v_new.promotion_frozen,
        'changed_at', pg_catalog.to_char(v_now at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
        'changed_by', v_new.changed_by,
        'actor', v_new.actor
    )::text);
    return v_new;
end
$$;

revoke all on function chat_v11.apply_transition(text, text, boolean, boolean, text, text, jsonb, text) from public;
comment on function chat_v11.apply_transition(text, text, boolean, boolean, text, text, jsonb, text) is
'Writes an accepted state change (state row + history row + NOTIFY chat_v11_rollout), committed durably.';

-- >>> sql/0530_function_gate_snapshot.sql
-- The gate verdict of the current (locked) state, as stored in a history row's gate_snapshot.
create or replace function chat_v11.current_gates(p_at timestamptz)
returns table (
    gate_p0_ok boolean,
    gate_p1_ok boolean,
    rollout_decision text,
    promotion_allowed boolean,
    next_stage text,
    observed_until timestamptz,
    failing_checks text[],
    go_no_go_blockers text[],
    blockers text[],
    snapshot jsonb
)
language sql
stable
as $$
    select g.*,
           pg_catalog.jsonb_build_object(
               'evaluated_at', pg_catalog.to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'gate_p0_ok', g.gate_p0_ok,
               'gate_p1_ok', g.gate_p1_ok,
               'rollout_decision', g.rollout_decision,
               'failing_checks', pg_catalog.to_jsonb(g.failing_checks)
           )
      from chat_v11.rollout_state as s
      cross join lateral chat_v11.state_at('infinity') as h
      cross join lateral chat_v11.evaluate_gates(
          p_at, s.stage, s.kill_switch, s.promotion_frozen, h.incident_id, h.stage_since
      ) as g
$$;

revoke all on function chat_v11.current_gates(timestamptz) from public;
comment on function chat_v11.current_gates(timestamptz) is
'Gate verdict and Go/No-Go of the current state at p_at, with the jsonb snapshot kept in the history.';

-- >>> sql/0600_function_chat_get_v11_rollout_state.sql
-- The rollout state now: stage, traffic, kill switch, freeze, who changed it, when, version.
create or replace function public.chat_get_v11_rollout_state()
returns table (
    stage text,
    traffic_percent numeric,
    kill_switch boolean,
    promotion_frozen boolean,
    reason text,
    changed_by text,
    actor text,
    changed_at timestamptz,
    version bigint
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select s.stage, t.traffic_percent, s.kill_switch, s.promotion_frozen, s.reason,
           s.changed_by, s.actor, s.changed_at, s.version
      from chat_v11.rollout_state as s
      join chat_v11.stage as t on t.stage = s.stage
$$;

revoke all on function public.chat_get_v11_rollout_state() from public;
grant execute on function public.chat_get_v11_rollout_state() to chat_rollout_reader;
comment on function public.chat_get_v11_rollout_state() is
'Source of truth: the rollout state now (stage, traffic %, kill switch, promotion freeze, reason, '
'changed_by = session_user, claimed actor, changed_at, version). Read-only.';

-- >>> sql/0610_function_chat_get_v11_rollout_history.sql
-- The newest p_limit history rows, newest first, with their hash chain.
create or replace function public.chat_get_v11_rollout_history(p_limit integer default 50)
returns table (
    version bigint,
    changed_at timestamptz,
    changed_by text,
    actor text,
    action text,
    from_stage text,
    to_stage text,
    from_kill_switch boolean,
    to_kill_switch boolean,
    promotion_frozen boolean,
    reason text,
    note text,
    gate_snapshot jsonb,
    incident_id bigint,
    prev_hash text,
    hash text
)
language plpgsql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
begin
    if p_limit is null or p_limit < 1 then
        raise exception using
            errcode = 'RO011',
            message = format('p_limit must be a positive number of rows, not %s', coalesce(p_limit::text, 'null')),
            detail = 'chat_get_v11_rollout_history(p_limit) returns the newest p_limit rows.',
            hint = 'Call chat_get_v11_rollout_history(50), as the playbook does.';
    end if;
    return query
        select h.version, h.changed_at, h.changed_by, h.actor, h.action, h.from_stage, h.to_stage,
               h.from_kill_switch, h.to_kill_switch, h.promotion_frozen, h.reason, h.note,
               h.gate_snapshot, h.incident_id, h.prev_hash, h.hash
          from chat_v11.rollout_history as h
         order by h.version desc
         limit p_limit;
end
$$;

revoke all on function public.chat_get_v11_rollout_history(integer) from public;
grant execute on function public.chat_get_v11_rollout_history(integer) to chat_rollout_reader;
comment on function public.chat_get_v11_rollout_history(integer) is
'Source of truth: the newest p_limit (default 50) rollout history rows, newest first: who, when, '
'what (action, stages, kill switch, freeze), why (reason), the gate snapshot and the hash chain. Read-only.';

-- >>> sql/0620_function_chat_get_v11_gate_checks.sql
-- Every release-gate check as of p_at, one row per check, with its explanation.
create or replace function public.chat_get_v11_gate_checks(p_at timestamptz default pg_catalog.now())
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
    explanation text
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select c.metric, c.severity, c.scope, c."window", c.value, c.baseline, c.threshold, c.volume, c.status,
           c.explanation
      from (select 1) as one
      left join chat_v11.state_at(coalesce(p_at, pg_catalog.now())) as h on true
     cross join lateral chat_v11.evaluate_checks(
         coalesce(p_at, pg_catalog.now()), coalesce(h.stage, 'off'), coalesce(h.kill_switch, false)
     ) as c
$$;

revoke all on function public.chat_get_v11_gate_checks(timestamptz) from public;
grant execute on function public.chat_get_v11_gate_checks(timestamptz) to chat_rollout_reader;
comment on function public.chat_get_v11_gate_checks(timestamptz) is
'One row per release-gate check as of p_at (default now): metric, scope, window, value, baseline, '
'threshold, volume, status (pass | fail | inconclusive | not_applicable) and why. Read-only.';

-- >>> sql/0630_function_chat_get_v11_release_gates.sql
-- The release gates as of p_at: gate_p0_ok, gate_p1_ok, rollout_decision and the Go/No-Go with blockers.
create or replace function public.chat_get_v11_release_gates(p_at timestamptz default pg_catalog.now())
returns table (
    gate_p0_ok boolean,
    gate_p1_ok boolean,
    rollout_decision text,
    promotion_allowed boolean,
    stage text,
    kill_switch boolean,
    promotion_frozen boolean,
    open_incident_id bigint,
    next_stage text,
    evaluated_at timestamptz,
    failing_checks text[],
    blockers text[]
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select g.gate_p0_ok, g.gate_p1_ok, g.rollout_decision, g.promotion_allowed,
           coalesce(h.stage, 'off'), coalesce(h.kill_switch, false), coalesce(h.promotion_frozen, false),
           h.incident_id, g.next_stage, coalesce(p_at, pg_catalog.now()), g.failing_checks, g.blockers
      from (select 1) as one
      left join chat_v11.state_at(coalesce(p_at, pg_catalog.now())) as h on true
     cross join lateral chat_v11.evaluate_gates(
         coalesce(p_at, pg_catalog.now()), coalesce(h.stage, 'off'), coalesce(h.kill_switch, false),
         coalesce(h.promotion_frozen, false), h.incident_id, h.stage_since
     ) as g
$$;

revoke all on function public.chat_get_v11_release_gates(timestamptz) from public;
grant execute on function public.chat_get_v11_release_gates(timestamptz) to chat_rollout_reader;
comment on function public.chat_get_v11_release_gates(timestamptz) is
'Source of truth: the release gates as of p_at (default now). gate_p0_ok, gate_p1_ok, rollout_decision '
'(PROCEED | HOLD | ROLLBACK), promotion_allowed (the Go/No-Go) and blockers in words. Missing data never '
'passes. Read-only.';

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

-- >>> sql/0650_function_chat_lift_v11_freeze.sql
-- Lifts the promotion freeze, only through the gate (kill switch off, gates green, no open incident).
create or replace function public.chat_lift_v11_freeze(p_reason text)
returns table (
    stage text,
    traffic_percent numeric,
    kill_switch boolean,
    promotion_frozen boolean,
    reason text,
    changed_by text,
    actor text,
    changed_at timestamptz,
    version bigint
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
    v_new record;
begin
    v_state := chat_v11.lock_state();
    select g.* into v_gates from chat_v11.current_gates(pg_catalog.clock_timestamp()) as g;
    -- GUARD: unfreeze only through the gate
    if v_state.kill_switch then
        raise exception using
            errcode = 'RO009',
            message = 'unfreeze refused: the kill switch is on',
            detail = format('Kill switch engaged at stage %s; reason: %s', v_state.stage, v_state.reason),
            hint = 'Resume first with chat_set_v11_rollout_state(stage, false, reason) once the P0 exit criteria hold.';
    end if;
    if pg_catalog.cardinality(v_gates.go_no_go_blockers) > 0 then
        raise exception using
            errcode = 'RO009',
            message = 'unfreeze refused: the gates are not green',
            detail = array_to_string(v_gates.go_no_go_blockers, '; '),
            hint = 'Lift the freeze only with gate_p0_ok, gate_p1_ok, PROCEED and no open P0/P1 incident; '
                || 'see chat_get_v11_release_gates().';
    end if;
    v_new := chat_v11.apply_transition(
        'unfreeze', v_state.stage, false, false, v_reason, null, v_gates.snapshot, null
    );
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return query
        select v_new.stage, t.traffic_percent, v_new.kill_switch, v_new.promotion_frozen, v_new.reason,
               v_new.changed_by, v_new.actor, v_new.changed_at, v_new.version
          from chat_v11.stage as t
         where t.stage = v_new.stage;
end
$$;

revoke all on function public.chat_lift_v11_freeze(text) from public;
grant execute on function public.chat_lift_v11_freeze(text) to chat_rollout_operator;
comment on function public.chat_lift_v11_freeze(text) is
'Lift the promotion freeze: only with the kill switch off, gate_p0_ok, gate_p1_ok, PROCEED and no open '
'P0/P1 incident (refused with RO009 otherwise). Returns the new state.';

-- >>> sql/0660_function_chat_verify_v11_history.sql
-- Walks the hash chain of the rollout history and reports the first broken version, or none.
create or replace function public.chat_verify_v11_history()
returns table (
    ok boolean,
    rows_checked bigint,
    first_broken_version bigint,
    problem text
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    with chain as (
        select h.version,
               h.prev_hash,
               h.hash,
               chat_v11.history_row_hash(h) as recomputed,
               lag(h.version) over (order by h.version) as prev_version,
               lag(h.hash) over (order by h.version) as prev_row_hash
          from chat_v11.rollout_history as h
    ),
    problems as (
        select c.version,
               case
                   when c.version <> coalesce(c.prev_version, 0) + 1
                       then format('version %s follows version %s: rows are missing',
                                   c.version, coalesce(c.prev_version, 0))
                   when c.prev_hash <> coalesce(c.prev_row_hash, repeat('0', 64))
                       then format('prev_hash of version %s does not match the hash of version %s',
                                   c.version, c.prev_version)
                   when c.hash <> c.recomputed
                       then format('version %s was changed after it was written: its hash does not match its content',
                                   c.version)
               end as problem
          from chain as c
    ),
    first_problem as (
        select p.version, p.problem from problems as p where p.problem is not null order by p.version limit 1
    ),
    tail as (
        select s.version as state_version, (select max(h.version) from chat_v11.rollout_history as h) as last_version
          from chat_v11.rollout_state as s
    )
    select
        f.version is null and t.state_version = t.last_version,
        (select count(*) from chat_v11.rollout_history),
        coalesce(f.version, case when t.state_version <> t.last_version then least(t.state_version, t.last_version) + 1 end),
        coalesce(
            f.problem,
            case when t.state_version <> t.last_version
                then format('the state is at version %s but the history ends at version %s',
                            t.state_version, t.last_version)
            end
        )
      from tail as t
      left join first_problem as f on true
$$;

revoke all on function public.chat_verify_v11_history() from public;
grant execute on function public.chat_verify_v11_history() to chat_rollout_reader;
comment on function public.chat_verify_v11_history() is
'Verifies the hash chain of the rollout history: ok, rows checked, the first broken version and what is '
'wrong with it (null when the chain is intact). Read-only.';

-- >>> sql/0670_function_chat_set_v11_stage_settings.sql
-- Changes a stage's traffic percent and minimum observation window (null keeps the current value).
create or replace function public.chat_set_v11_stage_settings(
    p_stage text,
    p_traffic_percent numeric default null,
    p_min_observation interval default null
)
returns table (
    stage text,
    ordinal integer,
    traffic_percent numeric,
    min_observation interval
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_old chat_v11.stage;
    v_new chat_v11.stage;
    v_lower numeric;
    v_upper numeric;
begin
    select s.* into v_old from chat_v11.stage as s where s.stage = p_stage for update;
    if not found then
        raise exception using
            errcode = 'RO002',
            message = format('unknown stage %s', coalesce(quote_literal(p_stage), 'null')),
            detail = format('Known stages, in order: %s.',
                            (select string_agg(s.stage, ', ' order by s.ordinal) from chat_v11.stage as s)),
            hint = 'Name one of the known stages.';
    end if;
    v_new := v_old;
    v_new.traffic_percent := coalesce(p_traffic_percent, v_old.traffic_percent);
    v_new.min_observation := coalesce(p_min_observation, v_old.min_observation);

    select max(s.traffic_percent) filter (where s.ordinal < v_old.ordinal),
           min(s.traffic_percent) filter (where s.ordinal > v_old.ordinal)
      into v_lower, v_upper
      from chat_v11.stage as s;
    if v_new.traffic_percent = 'NaN'::numeric
       or v_new.traffic_percent not between 0 and 100
       or (v_old.stage = 'off' and v_new.traffic_percent <> 0)
       or v_new.traffic_percent < coalesce(v_lower, 0)
       or v_new.traffic_percent > coalesce(v_upper, 100) then
        raise exception using
            errcode = 'RO015',
            message = format('traffic percent %s is not valid for stage %s', v_new.traffic_percent, p_stage),
            detail = format('Stage %s must stay within %s..%s %% (the previous and next stages), and off is 0 %%.',
                            p_stage, coalesce(v_lower, 0), coalesce(v_upper, 100)),
            hint = 'Traffic grows along the stage order; change the neighbouring stages first.';
    end if;
    if v_new.min_observation < interval '0' then
        raise exception using
            errcode = 'RO015',
            message = format('minimum observation %s is not valid for stage %s', v_new.min_observation, p_stage),
            detail = 'The observation window is a duration of zero or more.',
            hint = 'Pass an interval such as ''30 minutes'' (or ''0'' for no waiting).';
    end if;

    update chat_v11.stage as s
       set traffic_percent = v_new.traffic_percent,
           min_observation = v_new.min_observation
     where s.stage = p_stage;
    insert into chat_v11.config_change (actor, target, target_key, old_value, new_value)
    values (
        chat_v11.claimed_actor(), 'stage', p_stage,
        jsonb_build_object('traffic_percent', v_old.traffic_percent, 'min_observation', v_old.min_observation),
        jsonb_build_object('traffic_percent', v_new.traffic_percent, 'min_observation', v_new.min_observation)
    );
    return query select v_new.stage, v_new.ordinal, v_new.traffic_percent, v_new.min_observation;
end
$$;

revoke all on function public.chat_set_v11_stage_settings(text, numeric, interval) from public;
grant execute on function public.chat_set_v11_stage_settings(text, numeric, interval) to chat_rollout_admin;
comment on function public.chat_set_v11_stage_settings(text, numeric, interval) is
'Admin: set a stage''s traffic percent (0-100, growing along the stage order, off = 0) and minimum '
'observation window (>= 0); null keeps the current value. Every change is audited in chat_v11.config_change.';

-- >>> sql/0680_function_chat_set_v11_policy.sql
-- Changes a rollout policy (auto_kill, p0_exit_window, state_lock_timeout, retention), validated per key.
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
    select p.* into v_old from chat_v11.policy as p where p.key = p_key for update;
    if not found then
        raise exception using
            errcode = 'RO014',
            message = format('unknown policy %s', coalesce(quote_literal(p_key), 'null')),
            detail = format('Known policies: %s.', (select string_agg(p.key, ', ' order by p.key) from chat_v11.policy as p)),
            hint = 'Name one of the known policies.';
    end if;

    if p_key = 'auto_kill' then
        if jsonb_typeof(p_value) is distinct from 'boolean' then
            v_problem := 'auto_kill takes a JSON boolean: ''true'' or ''false''';
        end if;
    elsif jsonb_typeof(p_value) is distinct from 'string' then
        v_problem := format('%s takes a JSON string holding an interval, such as ''"30 minutes"''', p_key);
    else
        begin
            v_interval := (p_value #>> '{}')::interval;
        exception when others then
            v_problem := format('%s is not an interval', p_value);
        end;
        if v_problem is null then
            v_problem := case
                when p_key = 'p0_exit_window' and v_interval not between interval '30 minutes' and interval '60 minutes'
                    then 'p0_exit_window must be between 30 and 60 minutes (playbook section 5)'
                when p_key = 'state_lock_timeout' and v_interval not between interval '1 millisecond' and interval '1 minute'
                    then 'state_lock_timeout must be between 1 millisecond and 1 minute'
                when p_key = 'retention' and v_interval < interval '1 day'
                    then 'retention must be at least 1 day'
            end;
        end if;
    end if;
    if v_problem is not null then
        raise exception using
            errcode = 'RO014',
            message = format('invalid value %s for policy %s', coalesce(p_value::text, 'null'), p_key),
            detail = v_problem || '.',
            hint = format('Current value: %s.', v_old.value);
    end if;

    update chat_v11.policy as p
       set value = p_value, changed_at = clock_timestamp(), changed_by = session_user
     where p.key = p_key;
    insert into chat_v11.config_change (actor, target, target_key, old_value, new_value)
    values (chat_v11.claimed_actor(), 'policy', p_key, v_old.value, p_value);
    return query
        select p.key, p.value, p.description, p.changed_at, p.changed_by from chat_v11.policy as p where p.key = p_key;
end
$$;

revoke all on function public.chat_set_v11_policy(text, jsonb) from public;
grant execute on function public.chat_set_v11_policy(text, jsonb) to chat_rollout_admin;
comment on function public.chat_set_v11_policy(text, jsonb) is
'Admin: set a rollout policy. auto_kill (boolean, default true), p0_exit_window (30-60 minutes, default '
'"30 minutes"), state_lock_timeout (default "2 seconds"), retention (default "30 days"). Audited.';

-- >>> sql/0900_data_initial_state.sql
-- The initial rollout state (off, kill switch off, not frozen, version 1) and its init history row.
insert into chat_v11.rollout_state (
    stage, kill_switch, promotion_frozen, reason, changed_by, actor, changed_at, version
) values (
    'off', false, false, 'init', session_user, null, pg_catalog.clock_timestamp(), 1
);

insert into chat_v11.rollout_history (
    version, changed_at, changed_by, actor, action, from_stage, to_stage,
    from_kill_switch, to_kill_switch, promotion_frozen, reason
)
select
    s.version, s.changed_at, s.changed_by, s.actor, 'init' as action, null as from_stage, s.stage,
    null as from_kill_switch, s.kill_switch, s.promotion_frozen, s.reason
from chat_v11.rollout_state as s;
