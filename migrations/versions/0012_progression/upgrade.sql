-- >>> migrations/versions/0012_progression/steps/a_progression.sql
-- covers: sql/0140_table_rollout_history.sql
-- covers: sql/0150_table_config_change.sql
-- Revision 0012: the history also records automatic promotions (action auto_promote, actor guardrail), and the
-- configuration audit records stage policies (target stage_policy). Both checks are replaced in place under the
-- migration's ACCESS EXCLUSIVE lock on the state table (migrations/env.py); the history and the audit are small (one
-- row per call or change), so the validating scans are short, and every existing row has one of the earlier values.
-- squawk-ignore ban-drop-constraint -- replaced at once by a wider check of the same name
alter table chat_v11.rollout_history drop constraint rollout_history_action_valid;
-- squawk-ignore constraint-missing-not-valid -- a scan of the small history under the migration's lock
alter table chat_v11.rollout_history add constraint rollout_history_action_valid check (
    action in ('init', 'promote', 'rollback', 'hold', 'kill', 'resume', 'unfreeze', 'auto_kill', 'auto_promote')
);
-- squawk-ignore ban-drop-constraint -- replaced at once by a wider check of the same name
alter table chat_v11.config_change drop constraint config_change_target_valid;
-- squawk-ignore constraint-missing-not-valid -- a scan of the small audit table under the migration's lock
alter table chat_v11.config_change add constraint config_change_target_valid check (
    target in ('stage', 'policy', 'metric_rule', 'metric_source', 'stage_policy')
);
comment on table chat_v11.config_change is
'Who changed which stage setting, stage policy, policy, metric rule or metric source, when, from what to what. '
'Append-only.';

-- >>> sql/0102_table_stage_policy.sql
-- Progression policy per stage (SPEC 9), keyed by the stage promoted INTO: auto_promote lets
-- public.chat_run_v11_progression() promote into it by itself, approvals_required is how many approvals (four eyes)
-- a promotion into it needs. A stage without a row has the defaults (false, 0), so every database decides exactly
-- as before until an admin sets a policy. A table of its own, not columns of chat_v11.stage: state calls hold that
-- table's rows while they wait for the state row a migration holds.
create table chat_v11.stage_policy (
    stage text not null,
    auto_promote boolean not null default false,
    -- squawk-ignore prefer-bigint-over-int -- at most 10 approvals
    approvals_required integer not null default 0,
    changed_at timestamptz not null default pg_catalog.clock_timestamp(),
    changed_by text not null default session_user,
    constraint stage_policy_pkey primary key (stage),
    constraint stage_policy_stage_fkey foreign key (stage) references chat_v11.stage (stage),
    constraint stage_policy_approvals_range check (approvals_required between 0 and 10)
);

comment on table chat_v11.stage_policy is
'Progression policy of promoting into a stage: auto_promote (default false), approvals_required (0-10, default 0); '
'no row means the defaults. Change with public.chat_set_v11_stage_policy(); audited in chat_v11.config_change.';

-- >>> sql/0116_table_approval_policy.sql
-- The rollout policy approval_ttl (SPEC 9): how long an approval counts at most. Set like every policy with
-- public.chat_set_v11_policy('approval_ttl', '"24 hours"') and audited as one, but kept in a table of its own: adding
-- a key to chat_v11.policy would alter that table, and a state call holds a lock on it while it waits for the state
-- row a migration holds (chat_v11.start_lock_budget): the two would deadlock (as sql/0112_table_alert_policy.sql).
create table chat_v11.approval_policy (
    key text not null default 'approval_ttl',
    value jsonb not null,
    description text not null,
    changed_at timestamptz not null default pg_catalog.now(),
    changed_by text not null default session_user,
    constraint approval_policy_pkey primary key (key),
    constraint approval_policy_key_known check (key = 'approval_ttl'),
    constraint approval_policy_value_valid check (pg_catalog.jsonb_typeof(value) = 'string')
);

comment on table chat_v11.approval_policy is
'The policy approval_ttl: how long a promotion approval counts at most (5 minutes - 7 days, default 24 hours). '
'Change with public.chat_set_v11_policy(); every change is kept in chat_v11.config_change.';

insert into chat_v11.approval_policy (key, value, description) values (
    'approval_ttl', '"24 hours"',
    'How long a promotion approval counts at most (5 minutes - 7 days); a stage or kill switch change voids it sooner.'
);

-- >>> sql/0147_table_promotion_approval.sql
-- Approvals of a promotion (SPEC 9, four eyes): append-only and hash-chained like the rollout history. Each row
-- names the stage it approves promoting into, who approved (session_user, never the claimed actor instead), the
-- claimed actor beside it, when and why, and the state version it saw with that version's history hash (so an
-- approval is bound to the history it approved). Validity is computed, never stored: chat_v11.valid_approvals().
create table chat_v11.promotion_approval (
    approval_id bigint not null,
    approved_at timestamptz not null,
    approved_by text not null,
    actor text,
    stage text not null,
    from_stage text not null,
    state_version bigint not null,
    history_hash text not null,
    reason text not null,
    prev_hash text not null,
    hash text not null,
    constraint promotion_approval_pkey primary key (approval_id),
    constraint promotion_approval_id_positive check (approval_id >= 1),
    constraint promotion_approval_hash_format check (
        hash ~ '^[0-9a-f]{64}$' and prev_hash ~ '^[0-9a-f]{64}$' and history_hash ~ '^[0-9a-f]{64}$'
    )
);

comment on table chat_v11.promotion_approval is
'Append-only approvals of promotions; hash = sha256(prev_hash || canonical row). Written by '
'public.chat_approve_v11_promotion(); valid ones listed by public.chat_get_v11_approvals().';

-- >>> sql/0212_function_approval_row_hash.sql
-- The hash of one approval row: sha256(prev_hash || canonical row), hex; the canonical row is a JSON array in column
-- order with approved_at in UTC, so no setting changes it (as chat_v11.history_row_hash).
create or replace function chat_v11.approval_row_hash(p_row chat_v11.promotion_approval)
returns text
language sql
stable
as $$
    select pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
        p_row.prev_hash || pg_catalog.jsonb_build_array(
            p_row.approval_id,
            pg_catalog.to_char(p_row.approved_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            p_row.approved_by, p_row.actor, p_row.stage, p_row.from_stage, p_row.state_version,
            p_row.history_hash, p_row.reason
        )::text,
        'UTF8'
    )), 'hex')
$$;

revoke all on function chat_v11.approval_row_hash(chat_v11.promotion_approval) from public;
comment on function chat_v11.approval_row_hash(chat_v11.promotion_approval) is
'sha256(prev_hash || canonical row) of a promotion approval row, as 64 hex digits.';

-- >>> sql/0222_function_chain_approval_row.sql
-- Trigger function: links a new approval row to the chain (prev_hash, hash) and keeps ids contiguous. Writers
-- serialize on the table (chat_approve_v11_promotion locks it), so two approvals never share a predecessor.
create or replace function chat_v11.chain_approval_row()
returns trigger
language plpgsql
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_last_id bigint;
    v_last_hash text;
begin
    select a.approval_id, a.hash
      into v_last_id, v_last_hash
      from chat_v11.promotion_approval as a
     order by a.approval_id desc
     limit 1;
    if new.approval_id is distinct from coalesce(v_last_id, 0) + 1 then
        raise exception using
            errcode = 'RO012',
            message = format('approval %s does not follow approval %s', new.approval_id, v_last_id),
            detail = 'Approval ids are contiguous: each row follows the previous one by exactly 1.',
            hint = 'Approve through public.chat_approve_v11_promotion(); never insert approvals directly.';
    end if;
    new.prev_hash := coalesce(v_last_hash, pg_catalog.repeat('0', 64));
    new.hash := chat_v11.approval_row_hash(new);
    return new;
end
$$;

revoke all on function chat_v11.chain_approval_row() from public;
comment on function chat_v11.chain_approval_row() is
'Trigger: sets prev_hash and hash of a new promotion approval row; refuses a gap in ids (RO012).';

-- >>> sql/0232_trigger_promotion_approval_append_only.sql
-- Promotion approvals are append-only and hash-chained, like the rollout history.
create trigger promotion_approval_chain
before insert on chat_v11.promotion_approval
for each row execute function chat_v11.chain_approval_row();

create trigger promotion_approval_no_update_delete
before update or delete on chat_v11.promotion_approval
for each row execute function chat_v11.refuse_history_change();

create trigger promotion_approval_no_truncate
before truncate on chat_v11.promotion_approval
for each statement execute function chat_v11.refuse_history_change();

-- >>> sql/0406_function_valid_approvals.sql
-- The approvals that count at p_at (SPEC 9), for any promoter: the newest approval of each person for the next
-- stage after the stage in force at p_at, recorded at or before p_at, younger than the policy approval_ttl, and with
-- no stage or kill switch change in the history between the version it saw and the state in force at p_at (a hold
-- or an unfreeze does not void it). Whose approval must not count for whom is the caller's (chat_v11.approval_status).
create or replace function chat_v11.valid_approvals(p_at timestamptz)
returns setof chat_v11.promotion_approval
language sql
stable
as $$
    select distinct on (a.approved_by) a.*
      from chat_v11.state_at(p_at) as s
     cross join lateral (
         select n.stage
           from chat_v11.stage as n
          where n.ordinal > (select c.ordinal from chat_v11.stage as c where c.stage = s.stage)
          order by n.ordinal
          limit 1
     ) as nxt
      join chat_v11.promotion_approval as a on a.stage = nxt.stage
     where not s.kill_switch
       and a.state_version <= s.version
       and (p_at >= pg_catalog.now() or a.approved_at <= p_at)
       and a.approved_at > p_at - coalesce(
           (select (p.value #>> '{}')::interval from chat_v11.approval_policy as p where p.key = 'approval_ttl'),
           interval '24 hours'
       )
       and not exists (
           select
             from chat_v11.rollout_history as h
            where h.version > a.state_version
              and h.version <= s.version
              and (h.from_stage is distinct from h.to_stage or h.from_kill_switch is distinct from h.to_kill_switch)
       )
     order by a.approved_by, a.approval_id desc
$$;

revoke all on function chat_v11.valid_approvals(timestamptz) from public;
comment on function chat_v11.valid_approvals(timestamptz) is
'The newest valid approval per person at p_at: for the next stage only, younger than approval_ttl, and no stage or '
'kill switch change since the version it saw.';

-- >>> sql/0407_function_approval_status.sql
-- Approvals against the policy of the stage after p_stage at p_at, as the session user would count them when
-- promoting: required (the stage policy), valid (everyone else's valid approvals: one's own never counts for one's
-- own promotion), who approved, and a blocker in words when some are missing (null otherwise).
create or replace function chat_v11.approval_status(p_at timestamptz, p_next_stage text)
returns table (
    required integer,
    valid integer,
    approvers text[],
    own_approval boolean,
    blocker text
)
language sql
stable
as $$
    with policy as (
        select coalesce((select p.approvals_required from chat_v11.stage_policy as p where p.stage = p_next_stage),
                        0) as required
    ),
    counted as (
        select
            pg_catalog.count(*) filter (where a.approved_by <> session_user)::integer as valid,
            coalesce(array_agg(a.approved_by order by a.approved_by) filter (where a.approved_by <> session_user),
                     '{}') as approvers,
            coalesce(bool_or(a.approved_by = session_user), false) as own_approval
          from chat_v11.valid_approvals(p_at) as a
         where a.stage = p_next_stage
    )
    select p.required, c.valid, c.approvers, c.own_approval,
           case when p_next_stage is not null and c.valid < p.required then format(
               'approvals missing: promotion to %s needs %s approval(s) from someone other than %s, %s valid%s%s',
               p_next_stage, p.required, session_user, c.valid,
               case when c.valid > 0 then format(' (%s)', array_to_string(c.approvers, ', ')) else '' end,
               case when c.own_approval then format('; the approval of %s does not count for a promotion by %s',
                                                    session_user, session_user)
                    else '' end
           ) end
      from policy as p
     cross join counted as c
$$;

revoke all on function chat_v11.approval_status(timestamptz, text) from public;
comment on function chat_v11.approval_status(timestamptz, text) is
'Approvals required for promoting into p_next_stage and valid at p_at as the session user counts them (never its '
'own), the approvers, and a blocker text when some are missing.';

-- >>> sql/0410_function_evaluate_gates.sql
-- The gate verdict and the Go/No-Go of the playbook (section 9) for a given state at p_at. Missing approvals for the
-- next stage (SPEC 9) are blockers, not Go/No-Go checks: a promotion refuses them with RO041 of their own.
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
    v_approvals text;
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
    -- approvals (SPEC 9): the next stage's policy, counted as the session user would count them when promoting;
    -- one index probe when the next stage needs none (the kill path evaluates the gates too)
    if v_next is not null and exists (
        select from chat_v11.stage_policy as p where p.stage = v_next and p.approvals_required > 0
    ) then
        v_approvals := (select a.blocker from chat_v11.approval_status(p_at, v_next) as a);
        if v_approvals is not null then
            v_blockers := v_blockers || v_approvals;
        end if;
    end if;

    return query select
        v_p0_ok, v_p1_ok, v_decision, pg_catalog.cardinality(v_blockers) = 0,
        v_next, v_until, v_failing, v_go, v_blockers;
end
$$;

revoke all on function chat_v11.evaluate_gates(timestamptz, text, boolean, boolean, bigint, timestamptz) from public;
comment on function chat_v11.evaluate_gates(timestamptz, text, boolean, boolean, bigint, timestamptz) is
'Gate verdict (gate_p0_ok, gate_p1_ok, rollout_decision) and the Go/No-Go blockers for a state at p_at (active '
'P0/P1 alerts and the alert source included: chat_v11.alert_blockers); missing approvals of the next stage are '
'blockers (chat_v11.approval_status).';

-- >>> sql/0640_function_chat_set_v11_rollout_state.sql
-- The playbook's control call: kill, resume, hold, rollback or promote, by its arguments (SPEC 4.6).
-- The kill switch is never refused for red gates or a wrong stage; everything else is guarded. The result names
-- the action taken, and a NOTICE says in words what a rollback or a resume did (no surprise).
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
    action text,
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
    v_seen record;
    v_gates record;
    v_snapshot jsonb;
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
    v_clean_at timestamptz;
    v_clean_text text;
    v_incident record;
    v_notice text;
    v_timeout interval;
    v_percent numeric;
    v_approvals record;
begin
    perform chat_v11.begin_write('chat_set_v11_rollout_state');
    if p_kill_switch is null then
        raise exception using
            errcode = 'RO011',
            message = 'p_kill_switch must be true or false',
            detail = 'A null kill switch does not say whether to stop or to resume.',
            hint = 'Pass true to engage the kill switch, false to hold, roll back, promote or resume.';
    end if;

    -- LOCKS: every wait of this call (the policy, the state row, the catalog, the history, the metric store) ends
    -- within one budget of state_lock_timeout; a wait that runs out is RO010 naming the blockers, never a bare 55P03
    begin
        if not p_kill_switch then
            -- what the caller saw, for the guard below (a kill means the same whatever it waited for)
            select p.* into v_seen from chat_v11.peek_state() as p;
        end if;
        v_state := chat_v11.lock_state();
        v_timeout := pg_catalog.current_setting('chat_rollout.lock_budget')::interval;
        v_now := pg_catalog.clock_timestamp();
        -- GUARD: another call changed the state while this one waited, and this call now means something else
        -- (nested, so a kill plans nothing but what it needs: it stays correct across a migration it waited for)
        if not p_kill_switch then
            if v_state.version <> v_seen.version then
                if chat_v11.call_action(v_seen.stage, v_seen.kill_switch, p_stage, false)
                   <> chat_v11.call_action(v_state.stage, v_state.kill_switch, p_stage, false) then
                    raise exception using
                        errcode = 'RO017',
                        message = format('the rollout changed while this call waited: (%s, false) would now be a %s, '
                                         'not a %s',
                                         coalesce(p_stage, 'null'),
                                         chat_v11.call_action(v_state.stage, v_state.kill_switch, p_stage, false),
                                         chat_v11.call_action(v_seen.stage, v_seen.kill_switch, p_stage, false)),
                        detail = format('Version %s (stage %s, kill switch %s) became version %s '
                                        '(stage %s, kill switch %s, %s by %s).',
                                        v_seen.version, v_seen.stage, v_seen.kill_switch, v_state.version, v_state.stage,
                                        v_state.kill_switch, v_state.reason, v_state.changed_by),
                        hint = 'Read the state again (chat_get_v11_rollout_state()) and repeat the call if it still '
                            || 'makes sense.';
                end if;
            end if;
        end if;
        select s.ordinal into v_current_ordinal from chat_v11.stage as s where s.stage = v_state.stage;
        select s.ordinal into v_target_ordinal from chat_v11.stage as s where s.stage = p_stage;
        if p_kill_switch then
            -- The kill keeps the verdict of the state it stops (gate_snapshot, as chat_v11.current_gates builds it)
            -- and needs nothing else of the Go/No-Go: no stage start read from the history (its cost grows with
            -- the history), no incident. The metric store gets at most 50 ms of the lock budget: when maintenance or
            -- DDL holds it, the snapshot is the most recent evaluation in the history, stamped with its own time
            -- (SPEC 4.3). Only functions of every revision from here on: a kill that waited for a downgrade runs the
            -- restored ones.
            begin
                perform pg_catalog.set_config('lock_timeout', least(50, greatest(1, pg_catalog.ceil(
                    (pg_catalog.current_setting('chat_rollout.lock_deadline')::numeric
                     - extract(epoch from pg_catalog.clock_timestamp())) * 1000)))::bigint::text, true);
                select pg_catalog.jsonb_build_object(
                           'evaluated_at', pg_catalog.to_char(v_now at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                           'gate_p0_ok', g.gate_p0_ok,
                           'gate_p1_ok', g.gate_p1_ok,
                           'rollout_decision', g.rollout_decision,
                           'failing_checks', pg_catalog.to_jsonb(g.failing_checks)
                       )
                  into v_snapshot
                  from chat_v11.evaluate_gates(
                      v_now, v_state.stage, v_state.kill_switch, v_state.promotion_frozen, null, null
                  ) as g;
            exception when lock_not_available then
                select coalesce(h.gate_snapshot, '{}'::jsonb) || pg_catalog.jsonb_build_object(
                           'fallback', format('the metric store was locked at %s UTC: the most recent evaluation '
                                              '(history version %s) stands in', pg_catalog.to_char(
                                                  v_now at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), h.version)
                       )
                  into v_snapshot
                  from chat_v11.rollout_history as h
                 order by h.version desc
                 limit 1;
            end;
            perform pg_catalog.set_config('lock_timeout', greatest(1, pg_catalog.ceil(
                (pg_catalog.current_setting('chat_rollout.lock_deadline')::numeric
                 - extract(epoch from pg_catalog.clock_timestamp())) * 1000))::bigint::text, true);
        else
            select g.* into v_gates from chat_v11.current_gates(v_now) as g;
            v_snapshot := v_gates.snapshot;
        end if;

        if p_kill_switch then
            -- KILL: always accepted; a lower stage also rolls back, anything else is noted, not refused
            v_action := 'kill';
            v_to_kill := true;
            v_frozen := true;
            v_to_stage := v_state.stage;
            if v_target_ordinal is null then
                v_note := format('stage %s is unknown: not applied, the kill switch is on at stage %s',
                                 chat_v11.shown(p_stage), v_state.stage);
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
                    message = format('unknown stage %s', chat_v11.shown(p_stage)),
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
                -- the unresolved P0 incident, if any (its incident commander confirms the exit criteria by resolving it)
                select i.incident_id, i.status, i.opened_at, i.summary into v_incident
                  from chat_v11.incident as i
                 where i.severity = 'P0' and i.status in ('open', 'mitigated')
                 order by i.opened_at, i.incident_id
                 limit 1;
                -- GUARD: the P0 exit criteria now and over the whole exit window; a refusal names the earliest time
                -- the window can be clean, and tells an operator who meant "hold" that nothing more is needed
                if not v_gates.gate_p0_ok then
                    v_exit_failures := array['gate_p0_ok is false. Failing P0 checks: '
                                             || coalesce((select string_agg(f, '; ') from unnest(v_gates.failing_checks) as f),
                                                         'none')];
                else
                    v_exit_failures := chat_v11.p0_exit_failures(v_now);
                end if;
                if pg_catalog.cardinality(v_exit_failures) > 0 then
                    v_clean_at := chat_v11.p0_exit_clean_at(v_now);
                    v_clean_text := case
                        when v_clean_at is null
                            then 'No time can be named yet: a P0 metric has sent no sample in the exit window.'
                        else format('The exit window can be clean at %s UTC at the earliest, if samples keep arriving '
                                    'with no new P0 event.',
                                    pg_catalog.to_char(v_clean_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'))
                    end;
                    raise exception using
                        errcode = 'RO007',
                        message = format('the kill switch is on: (%s, false) asks to resume v1.1 traffic, and the resume '
                                         'is refused: the P0 exit criteria do not hold', p_stage),
                        detail = array_to_string(v_exit_failures, '; ') || '. ' || v_clean_text,
                        hint = format('To hold, do nothing: promotion is already frozen while the kill switch is on. To '
                                      'resume, keep the kill switch on until every P0 check has passed for %s with '
                                      'samples covering it (policy p0_exit_window), %sthen repeat this call; watch '
                                      'chat_get_v11_gate_checks().',
                                      coalesce(chat_v11.policy_interval('p0_exit_window'), interval '30 minutes'),
                                      case when v_incident.incident_id is not null
                                           then format('have P0 incident %s resolved, ', v_incident.incident_id)
                                           else '' end);
                end if;
                -- GUARD: the incident commander confirms the exit criteria by resolving the P0 incident first
                if v_incident.incident_id is not null then
                    raise exception using
                        errcode = 'RO018',
                        message = format('the kill switch is on: (%s, false) asks to resume v1.1 traffic, and the resume '
                                         'is refused: P0 incident %s is not resolved', p_stage, v_incident.incident_id),
                        detail = format('The P0 exit criteria hold, but incident %s (P0, status %s, opened %s UTC: %s) '
                                        'has not been resolved by its incident commander.', v_incident.incident_id,
                                        v_incident.status,
                                        pg_catalog.to_char(v_incident.opened_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                                        chat_v11.shown(v_incident.summary)),
                        hint = format('To hold, do nothing: promotion is already frozen while the kill switch is on. To '
                                      'resume, the incident commander resolves the incident first: select * from '
                                      'chat_set_v11_incident_status(%s, ''resolved'', reason); then repeat this call.',
                                      v_incident.incident_id);
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
                -- GUARD: four eyes (SPEC 9): the next stage's approvals, never the promoter's own
                select a.* into v_approvals from chat_v11.approval_status(v_now, p_stage) as a;
                if v_approvals.blocker is not null then
                    raise exception using
                        errcode = 'RO041',
                        message = format('promotion to %s is refused: approvals are missing', p_stage),
                        detail = format('%s of %s required approvals are valid for promotion to %s%s.%s',
                                        v_approvals.valid, v_approvals.required, p_stage,
                                        case when v_approvals.valid > 0
                                             then format(' (%s)', array_to_string(v_approvals.approvers, ', '))
                                             else '' end,
                                        case when v_approvals.own_approval
                                             then format(' The approval of %s does not count for a promotion by %s.',
                                                         session_user, session_user)
                                             else '' end),
                        hint = format('%s more approval(s) from someone other than %s (the promoter) are needed: '
                                      'select * from chat_approve_v11_promotion(%L, reason); an approval counts until '
                                      'the stage or the kill switch changes, at most for approval_ttl.',
                                      v_approvals.required - v_approvals.valid, session_user, p_stage);
                end if;
                v_action := 'promote';
                v_frozen := false;
            end if;
        end if;

        -- the write's other locks, still within the budget (the state row's own lock is taken above): the target
        -- stage's row, which the state row's foreign key and traffic percent need (a settings change may hold it)
        if v_to_stage is distinct from v_state.stage then
            perform from chat_v11.stage as t where t.stage = v_to_stage for key share;
        end if;
        lock table chat_v11.rollout_history in row exclusive mode;
        -- dynamic: a kill that waited for a downgrade below revision 0003 finds no incident table
        if pg_catalog.to_regclass('chat_v11.incident') is not null then
            execute 'lock table chat_v11.incident in access share mode';
        end if;
    exception when lock_not_available then
        perform chat_v11.raise_state_locked(
            coalesce(v_timeout, pg_catalog.current_setting('chat_rollout.lock_budget', true)::interval)
        );
    end;
    -- the write itself outside the block: the state row's new version belongs to the top transaction, so a
    -- call that waits behind it can name this backend (chat_v11.state_lockers)
    v_new := chat_v11.apply_transition(
        v_action, v_to_stage, v_to_kill, v_frozen, v_reason, v_note, v_snapshot, null
    );
    -- from the catalog, not the state row: a kill that waited for a downgrade below 0005 has no such column
    select t.traffic_percent into v_percent from chat_v11.stage as t where t.stage = v_new.stage;
    -- NO SURPRISE: say in words what moved traffic or the kill switch beyond what the stage argument says
    v_notice := case
        when v_action = 'resume' then format(
            'resume: the kill switch is now OFF and v1.1 traffic flows again at %s (%s %%); promotion stays frozen',
            v_new.stage, v_percent)
        when v_action = 'rollback' then format(
            'rollback: v1.1 traffic goes from %s to %s (%s %%); promotion is frozen', v_state.stage, v_new.stage,
            v_percent)
        when v_action = 'kill' and v_new.stage <> v_state.stage then format(
            'kill: the kill switch is ON and the stage is rolled back from %s to %s', v_state.stage, v_new.stage)
    end;
    if v_notice is not null then
        raise notice '%', v_notice;
    end if;
    if v_note is not null then
        raise notice '%', v_note;
    end if;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return query
        select v_new.stage, v_percent, v_new.kill_switch, v_new.promotion_frozen, v_new.reason,
               v_new.changed_by, v_new.actor, v_new.changed_at, v_new.version, v_action, v_note;
end
$$;

revoke all on function public.chat_set_v11_rollout_state(text, boolean, text) from public;
grant execute on function public.chat_set_v11_rollout_state(text, boolean, text) to chat_rollout_operator;
comment on function public.chat_set_v11_rollout_state(text, boolean, text) is
'Control the rollout: (stage, true, reason) = kill switch, never refused (a lower stage also rolls back); '
'(same stage, false) = hold (freeze promotion); (lower stage, false) = rollback; (next stage, false) = '
'promote through the Go/No-Go; (stage, false) while killed = resume through the P0 exit criteria. '
'Returns the new state and the action taken; note says what was not applied. A NOTICE says what a rollback or '
'a resume did; a resume also needs every open P0 incident resolved (RO018), a promotion the approvals its stage '
'policy requires, never counting the promoter''s own (RO041).';

-- >>> sql/0644_function_chat_approve_v11_promotion.sql
-- Records an approval for promoting into p_stage (SPEC 9, four eyes): only the next stage, never while the kill
-- switch is on; who = session_user (the claimed actor beside it), when, why, and the state version it saw (with that
-- version's history hash). One valid approval per person and stage change: repeating it while it still counts
-- records nothing and returns the approval that counts (NOTICE); after it was voided or expired, a new one is
-- recorded. No state lock: an approval that raced a stage or kill switch change saw the older version and is void.
create or replace function public.chat_approve_v11_promotion(p_stage text, p_reason text)
returns table (
    approval_id bigint,
    stage text,
    from_stage text,
    approved_by text,
    actor text,
    approved_at timestamptz,
    expires_at timestamptz,
    state_version bigint,
    reason text,
    hash text,
    recorded boolean
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_reason text := chat_v11.checked_reason(p_reason);
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
    v_state record;
    v_next text;
    v_timeout interval;
    v_row record;
    v_recorded boolean := false;
    v_ttl interval;
begin
    perform chat_v11.begin_write('chat_approve_v11_promotion');
    select p.* into v_state from chat_v11.peek_state() as p;
    v_timeout := pg_catalog.current_setting('chat_rollout.lock_budget')::interval;
    select n.stage into v_next
      from chat_v11.stage as n
     where n.ordinal > (select c.ordinal from chat_v11.stage as c where c.stage = v_state.stage)
     order by n.ordinal
     limit 1;
    if v_state.kill_switch then
        raise exception using
            errcode = 'RO043',
            message = format('approval of the promotion to %s is refused: the kill switch is on',
                             chat_v11.shown(p_stage)),
            detail = format('The rollout is killed at stage %s (version %s); the resume would void any approval.',
                            v_state.stage, v_state.version),
            hint = 'Resume and lift the freeze first (chat_set_v11_rollout_state(stage, false, reason), '
                || 'chat_lift_v11_freeze(reason)), then approve the next stage.';
    end if;
    if p_stage is distinct from v_next then
        raise exception using
            errcode = 'RO042',
            message = format('approval of the promotion to %s is refused: it is not the next stage',
                             coalesce(chat_v11.shown(p_stage), 'null')),
            detail = case
                when v_next is null then format('The rollout is at %s (version %s), the last stage: there is nothing '
                                                'to promote to.', v_state.stage, v_state.version)
                else format('The rollout is at %s (version %s); the next stage is %s. Known stages, in order: %s.',
                            v_state.stage, v_state.version, v_next,
                            (select string_agg(s.stage, ', ' order by s.ordinal) from chat_v11.stage as s))
            end,
            hint = case
                when v_next is null then 'Nothing to approve; see chat_get_v11_rollout_state().'
                else format('An approval counts only for the next stage: select * from '
                            'chat_approve_v11_promotion(%L, reason);', v_next)
            end;
    end if;
    -- writers serialize on the chained table (readers are not blocked), within the state calls' lock budget
    begin
        lock table chat_v11.promotion_approval in share row exclusive mode;
    exception when lock_not_available then
        perform chat_v11.raise_state_locked(v_timeout);
    end;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    v_ttl := coalesce(
        (select (p.value #>> '{}')::interval from chat_v11.approval_policy as p where p.key = 'approval_ttl'),
        interval '24 hours'
    );

    -- IDEMPOTENT: this person's approval of this stage change that still counts
    select a.* into v_row
      from chat_v11.valid_approvals(pg_catalog.clock_timestamp()) as a
     where a.approved_by = session_user and a.stage = p_stage and a.state_version <= v_state.version;
    if v_row.approval_id is null then
        insert into chat_v11.promotion_approval (
            approval_id, approved_at, approved_by, actor, stage, from_stage, state_version, history_hash, reason,
            prev_hash, hash
        ) values (
            coalesce((select max(a.approval_id) from chat_v11.promotion_approval as a), 0) + 1,
            pg_catalog.clock_timestamp(), session_user, chat_v11.claimed_actor(), p_stage, v_state.stage,
            v_state.version,
            (select h.hash from chat_v11.rollout_history as h where h.version = v_state.version),
            v_reason, '', ''
        )
        returning * into v_row;
        v_recorded := true;
    else
        raise notice '%', format('%s already approved the promotion to %s (approval %s at %s UTC): it still counts, '
                                 'nothing recorded', session_user, p_stage, v_row.approval_id,
                                 pg_catalog.to_char(v_row.approved_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'));
    end if;
    return query
        select v_row.approval_id, v_row.stage, v_row.from_stage, v_row.approved_by, v_row.actor, v_row.approved_at,
               v_row.approved_at + v_ttl, v_row.state_version, v_row.reason, v_row.hash, v_recorded;
end
$$;

revoke all on function public.chat_approve_v11_promotion(text, text) from public;
grant execute on function public.chat_approve_v11_promotion(text, text) to chat_rollout_operator;
comment on function public.chat_approve_v11_promotion(text, text) is
'Operator: approve promoting into p_stage (the next stage only, RO042; not while killed, RO043). Recorded append-only '
'and hash-chained with session_user, the claimed actor, the time, the reason and the state version seen. Counts '
'until the stage or the kill switch changes, at most approval_ttl, and never for a promotion by the approver. A '
'repeat while it counts records nothing and returns it (recorded false).';

-- >>> sql/0645_function_chat_get_v11_approvals.sql
-- The promotion approvals that count now (SPEC 9): the newest valid one per person, for the next stage only.
-- counts_for_you says whether it counts for a promotion by the caller (one's own approval never does).
create or replace function public.chat_get_v11_approvals()
returns table (
    approval_id bigint,
    stage text,
    from_stage text,
    approved_by text,
    actor text,
    approved_at timestamptz,
    expires_at timestamptz,
    state_version bigint,
    reason text,
    counts_for_you boolean,
    hash text
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select a.approval_id, a.stage, a.from_stage, a.approved_by, a.actor, a.approved_at,
           a.approved_at + coalesce(
               (select (p.value #>> '{}')::interval from chat_v11.approval_policy as p where p.key = 'approval_ttl'),
               interval '24 hours'
           ),
           a.state_version, a.reason, a.approved_by <> session_user, a.hash
      from chat_v11.valid_approvals(pg_catalog.now()) as a
     order by a.approved_at, a.approval_id
$$;

revoke all on function public.chat_get_v11_approvals() from public;
grant execute on function public.chat_get_v11_approvals() to chat_rollout_reader;
comment on function public.chat_get_v11_approvals() is
'The promotion approvals that count now: the newest per person for the next stage, younger than approval_ttl, '
'with no stage or kill switch change since; counts_for_you is false for your own (never counted for your own '
'promotion). Read-only.';

-- >>> sql/0646_function_chat_get_v11_progression.sql
-- Where the rollout goes next by itself (SPEC 9), for status and the exporter: the next stage's policy, the
-- approvals counted as the caller would count them, when chat_run_v11_progression would promote if nothing else
-- changes (null when it will not), the blockers, and whether the approval chain is intact.
create or replace function public.chat_get_v11_progression()
returns table (
    stage text,
    next_stage text,
    auto_promote boolean,
    approvals_required integer,
    approvals_valid integer,
    approvals_missing integer,
    next_promotion_at timestamptz,
    blockers text[],
    approval_ttl interval,
    approvals_chain_ok boolean
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    with gates as (
        select g.*, coalesce(h.stage, 'off') as current_stage
          from (select 1) as one
          left join chat_v11.state_at(pg_catalog.now()) as h on true
         cross join lateral chat_v11.evaluate_gates(
             pg_catalog.now(), coalesce(h.stage, 'off'), coalesce(h.kill_switch, false),
             coalesce(h.promotion_frozen, false), chat_v11.open_incident_at(pg_catalog.now()), h.stage_since
         ) as g
    ),
    chain as (
        select coalesce(bool_and(
                   a.prev_hash = coalesce(a.previous, pg_catalog.repeat('0', 64))
                   and a.hash = chat_v11.approval_row_hash(
                       row(a.approval_id, a.approved_at, a.approved_by, a.actor, a.stage, a.from_stage,
                           a.state_version, a.history_hash, a.reason, a.prev_hash, a.hash)::chat_v11.promotion_approval
                   )
               ), true) as ok
          from (
              select p.*, lag(p.hash) over (order by p.approval_id) as previous
                from chat_v11.promotion_approval as p
          ) as a
    )
    select g.current_stage, g.next_stage, coalesce(p.auto_promote, false), a.required, a.valid,
           greatest(a.required - a.valid, 0),
           case
               -- only the observation window (or nothing) stands between the rollout and its automatic promotion
               when coalesce(p.auto_promote, false)
                    and g.observed_until is not null
                    and (
                        g.promotion_allowed
                        or not exists (
                            select from pg_catalog.unnest(g.blockers) as b (line) where b.line !~ '^stage \S+ must be observed'
                        )
                    )
                   then greatest(g.observed_until, pg_catalog.now())
           end,
           g.blockers
           || case when g.next_stage is not null and not coalesce(p.auto_promote, false)
                   then array[format('auto_promote is off for %s: promote by hand, or set it with '
                                     'chat_set_v11_stage_policy(%L, ''{"auto_promote": true}'')',
                                     g.next_stage, g.next_stage)]
                   else '{}'::text[] end,
           coalesce((select (q.value #>> '{}')::interval from chat_v11.approval_policy as q where q.key = 'approval_ttl'),
                    interval '24 hours'),
           c.ok
      from gates as g
     cross join chain as c
      left join chat_v11.stage_policy as p on p.stage = g.next_stage
     cross join lateral chat_v11.approval_status(pg_catalog.now(), g.next_stage) as a
$$;

revoke all on function public.chat_get_v11_progression() from public;
grant execute on function public.chat_get_v11_progression() to chat_rollout_reader;
comment on function public.chat_get_v11_progression() is
'Progression now: the next stage, its auto_promote and approvals_required, the approvals valid for a promotion by '
'the caller and missing, next_promotion_at (when chat_run_v11_progression would promote if nothing else changes; '
'null when it will not), the blockers (auto_promote off included), approval_ttl and whether the approval hash chain '
'is intact. Read-only.';

-- >>> sql/0672_function_chat_set_v11_stage_policy.sql
-- Changes the progression policy of promoting into a stage (SPEC 9): auto_promote (JSON boolean) and
-- approvals_required (JSON integer 0-10); a key left out keeps its value, an unknown key or a bad value is refused
-- (RO044) and nothing is written. Audited in chat_v11.config_change (target stage_policy).
create or replace function public.chat_set_v11_stage_policy(p_stage text, p_settings jsonb)
returns table (
    stage text,
    auto_promote boolean,
    approvals_required integer,
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
    v_unknown text;
    v_problem text;
    v_old record;
    v_new record;
    v_required numeric;
begin
    perform chat_v11.begin_write('chat_set_v11_stage_policy');
    if not exists (select from chat_v11.stage as s where s.stage = p_stage) then
        raise exception using
            errcode = 'RO002',
            message = format('unknown stage %s', chat_v11.shown(p_stage)),
            detail = format('Known stages, in order: %s.',
                            (select string_agg(s.stage, ', ' order by s.ordinal) from chat_v11.stage as s)),
            hint = 'Name the stage a promotion goes into: its policy decides that promotion.';
    end if;
    if jsonb_typeof(p_settings) is distinct from 'object' or p_settings = '{}'::jsonb then
        v_problem := format('the settings must be a non-empty JSON object; got %s',
                            coalesce(chat_v11.shown(p_settings::text), 'null'));
    else
        select string_agg(k, ', ' order by k) into v_unknown
          from jsonb_object_keys(p_settings) as k
         where k not in ('auto_promote', 'approvals_required');
        if v_unknown is not null then
            v_problem := format('unknown setting(s) %s', chat_v11.shown(v_unknown));
        elsif p_settings ? 'auto_promote' and jsonb_typeof(p_settings -> 'auto_promote') is distinct from 'boolean' then
            v_problem := format('auto_promote takes a JSON boolean; got %s',
                                chat_v11.shown((p_settings -> 'auto_promote')::text));
        elsif p_settings ? 'approvals_required' then
            if jsonb_typeof(p_settings -> 'approvals_required') is distinct from 'number' then
                v_problem := format('approvals_required takes a JSON integer from 0 to 10; got %s',
                                    chat_v11.shown((p_settings -> 'approvals_required')::text));
            else
                v_required := (p_settings ->> 'approvals_required')::numeric;
                if v_required <> pg_catalog.trunc(v_required) or v_required not between 0 and 10 then
                    v_problem := format('approvals_required takes an integer from 0 to 10; got %s', v_required);
                end if;
            end if;
        end if;
    end if;
    if v_problem is not null then
        raise exception using
            errcode = 'RO044',
            message = format('invalid stage policy for stage %s', p_stage),
            detail = v_problem || '.',
            hint = 'Pass an object with auto_promote (true or false) and/or approvals_required (0 to 10), such as '
                || '''{"auto_promote": true, "approvals_required": 1}''; nothing was changed.';
    end if;

    insert into chat_v11.stage_policy as p (stage) values (p_stage) on conflict (stage) do nothing;
    select p.stage, p.auto_promote, p.approvals_required into v_old
      from chat_v11.stage_policy as p
     where p.stage = p_stage
       for update;
    update chat_v11.stage_policy as p
       set auto_promote = coalesce((p_settings ->> 'auto_promote')::boolean, v_old.auto_promote),
           approvals_required = coalesce(v_required::integer, v_old.approvals_required),
           changed_at = pg_catalog.clock_timestamp(),
           changed_by = session_user
     where p.stage = p_stage
    returning p.* into v_new;
    insert into chat_v11.config_change (actor, target, target_key, old_value, new_value)
    values (
        chat_v11.claimed_actor(), 'stage_policy', p_stage,
        jsonb_build_object('auto_promote', v_old.auto_promote, 'approvals_required', v_old.approvals_required),
        jsonb_build_object('auto_promote', v_new.auto_promote, 'approvals_required', v_new.approvals_required)
    );
    return query select v_new.stage, v_new.auto_promote, v_new.approvals_required, v_new.changed_at, v_new.changed_by;
end
$$;

revoke all on function public.chat_set_v11_stage_policy(text, jsonb) from public;
grant execute on function public.chat_set_v11_stage_policy(text, jsonb) to chat_rollout_admin;
comment on function public.chat_set_v11_stage_policy(text, jsonb) is
'Admin: set the progression policy of promoting INTO a stage: auto_promote (boolean, default false: '
'chat_run_v11_progression may promote into it) and approvals_required (0-10, default 0: approvals a promotion into '
'it needs, never the promoter''s own). Keys left out keep their value; unknown keys or bad values are refused '
'(RO044). Audited in chat_v11.config_change.';

-- >>> sql/0680_function_chat_set_v11_policy.sql
-- Changes a rollout policy, validated per key: auto_kill (boolean), p0_exit_window (30-60 minutes),
-- state_lock_timeout (100 ms - 60 s), retention (1-400 days), alert_source ({"required": boolean, "max_age":
-- 30 s - 1 h}), assignment_salt (1-200 characters, not blank; only while no traffic is in the canary: the state row
-- is taken first, in the state calls' lock order, so a racing promotion cannot slip between; RO040 otherwise),
-- approval_ttl (5 minutes - 7 days). A refusal (RO014) names the value and the range. A new salt is announced with
-- NOTIFY chat_v11_assignment.
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
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
    v_old chat_v11.policy;
    v_interval interval;
    v_problem text;
    v_state record;
begin
    perform chat_v11.begin_write('chat_set_v11_policy');
    if p_key = 'assignment_salt' then
        -- the salt moves users between buckets: it may change only while nobody is in the canary, and the state
        -- row is held until commit (lock order: state row, then policy row) so no promotion commits in between
        select l.stage, l.traffic_percent, l.kill_switch into v_state from chat_v11.lock_state() as l;
        perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    end if;
    select p.* into v_old from chat_v11.policy as p where p.key = p_key for update;
    if not found then
        -- alert_source and assignment_salt live in tables of their own (sql/0112_table_alert_policy.sql,
        -- sql/0114_table_assignment_policy.sql), same columns
        select p.* into v_old from chat_v11.alert_policy as p where p.key = p_key for update;
    end if;
    if not found then
        select p.* into v_old from chat_v11.assignment_policy as p where p.key = p_key for update;
    end if;
    if not found then
        -- approval_ttl too (sql/0116_table_approval_policy.sql), same columns
        select p.* into v_old from chat_v11.approval_policy as p where p.key = p_key for update;
    end if;
    if not found then
        raise exception using
            errcode = 'RO014',
            message = format('unknown policy %s', chat_v11.shown(p_key)),
            detail = format('Known policies: %s.', (
                select string_agg(k.key, ', ' order by k.key)
                  from (select p.key from chat_v11.policy as p
                        union all select a.key from chat_v11.alert_policy as a
                        union all select a.key from chat_v11.assignment_policy as a
                        union all select a.key from chat_v11.approval_policy as a) as k
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
    elsif p_key = 'assignment_salt' then
        if jsonb_typeof(p_value) is distinct from 'string' then
            v_problem := 'assignment_salt takes a JSON string, such as ''"chat_v11-2"''';
        elsif chat_v11.is_blank(p_value #>> '{}') or length(p_value #>> '{}') > 200 then
            v_problem := format('assignment_salt must be 1-200 characters and not blank; got %s characters',
                                length(p_value #>> '{}'));
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
                when p_key = 'approval_ttl' and v_interval not between interval '5 minutes' and interval '7 days'
                    then format('approval_ttl must be between 5 minutes and 7 days; got %s', v_interval)
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

    if p_key <> 'assignment_salt' or p_value is not distinct from v_old.value then
        null;  -- v_state is read only for the salt (it is unassigned for every other key)
    elsif v_state.traffic_percent > 0 then
        raise exception using
            errcode = 'RO040',
            message = 'the assignment salt cannot change while traffic is in the canary',
            detail = format('The rollout is at stage %s with %s %% of the traffic (kill switch %s): a new salt would '
                            'move most of the canary''s users out of it and others in.', v_state.stage,
                            v_state.traffic_percent, case when v_state.kill_switch then 'on' else 'off' end),
            hint = 'Change the salt only at stage off, before the first promotion or after a rollback to off; '
                || 'nothing was changed.';
    end if;

    update chat_v11.policy as p
       set value = p_value, changed_at = clock_timestamp(), changed_by = session_user
     where p.key = p_key;
    update chat_v11.alert_policy as p
       set value = p_value, changed_at = clock_timestamp(), changed_by = session_user
     where p.key = p_key;
    update chat_v11.approval_policy as p
       set value = p_value, changed_at = clock_timestamp(), changed_by = session_user
     where p.key = p_key;
    update chat_v11.assignment_policy as p
       set value = p_value, changed_at = clock_timestamp(), changed_by = session_user
     where p.key = p_key;
    if p_key = 'assignment_salt' then
        -- applications that assign locally (chat_rollout.client) reload the salt when they hear this
        perform pg_catalog.pg_notify('chat_v11_assignment', pg_catalog.json_build_object(
            'salt', p_value #>> '{}',
            'changed_at', pg_catalog.to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
        )::text);
        raise notice using message = format('assignment salt changed to %s: every user''s bucket is recomputed; '
                                            'nobody is in the canary now (stage %s)', chat_v11.shown(p_value #>> '{}'),
                                            v_state.stage);
    end if;
    insert into chat_v11.config_change (actor, target, target_key, old_value, new_value)
    values (chat_v11.claimed_actor(), 'policy', p_key, v_old.value, p_value);
    return query
        select p.key, p.value, p.description, p.changed_at, p.changed_by from chat_v11.policy as p where p.key = p_key
        union all
        select p.key, p.value, p.description, p.changed_at, p.changed_by
          from chat_v11.alert_policy as p
         where p.key = p_key
        union all
        select p.key, p.value, p.description, p.changed_at, p.changed_by
          from chat_v11.assignment_policy as p
         where p.key = p_key
        union all
        select p.key, p.value, p.description, p.changed_at, p.changed_by
          from chat_v11.approval_policy as p
         where p.key = p_key;
end
$$;

revoke all on function public.chat_set_v11_policy(text, jsonb) from public;
grant execute on function public.chat_set_v11_policy(text, jsonb) to chat_rollout_admin;
comment on function public.chat_set_v11_policy(text, jsonb) is
'Admin: set a rollout policy. auto_kill (boolean, default true), p0_exit_window (30-60 minutes, default '
'"30 minutes"), state_lock_timeout (100 ms - 60 s, default "2 seconds"), retention (1-400 days, default '
'"30 days"), alert_source ({"required": false, "max_age": "2 minutes"}; max_age 30 s - 1 h; required makes a '
'fresh, reachable Alertmanager read a Go condition), assignment_salt (1-200 characters, default "chat_v11"; only '
'while no traffic is in the canary, RO040; announced with NOTIFY chat_v11_assignment), approval_ttl (5 minutes - '
'7 days, default "24 hours": how long a promotion approval counts at most). Out-of-range values are refused '
'(RO014). Audited.';

-- >>> sql/0712_function_chat_run_v11_progression.sql
-- Automatic progression (SPEC 9), safe to run every few seconds from the scheduler that runs the guardrails, and
-- idempotent: promotes at most one stage per call, as action auto_promote with actor guardrail, when the policy of
-- the stage promoted INTO has auto_promote and the promotion a person could make now would pass every guard of
-- chat_set_v11_rollout_state: not killed, not frozen, the Go/No-Go (gates, no open P0/P1 incident, no active
-- alert), the observation window, and the approvals (never the scheduler login's own). A read first (no lock while
-- nothing is to be done); then the state lock (chat_v11.lock_state, RO010 when busy) and everything again under it:
-- a run that waited while anything changed the rollout (a kill, another run's promotion) promotes nothing, so
-- concurrent runs cannot promote twice and nothing promotes after a kill. Returns one row: what it did or why not.
create or replace function public.chat_run_v11_progression()
returns table (
    action text,
    stage text,
    next_stage text,
    version bigint,
    detail text,
    blockers text[]
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
    v_seen record;
    v_state record;
    v_gates record;
    v_blockers text[];
    v_timeout interval;
    v_new record;
    v_approvals record;
    v_percent numeric;
    v_reason text;
begin
    perform chat_v11.begin_write('chat_run_v11_progression');
    select p.* into v_seen from chat_v11.peek_state() as p;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    -- two passes: the read without the lock, then (only when it would promote) the same under the lock
    for v_pass in 1..2 loop
        if v_pass = 2 then
            begin
                v_state := chat_v11.lock_state();
                v_timeout := pg_catalog.current_setting('chat_rollout.lock_budget')::interval;
            exception when lock_not_available then
                perform chat_v11.raise_state_locked(
                    coalesce(v_timeout, pg_catalog.current_setting('chat_rollout.lock_budget', true)::interval)
                );
            end;
            -- GUARD: anything that changed the rollout while this run waited (a kill, a hold, another run's
            -- promotion) ends this run; the next run decides from the new state
            if v_state.version <> v_seen.version then
                perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
                return query select 'none'::text, v_state.stage, null::text, v_state.version,
                                    format('the rollout changed while this run waited (version %s became %s, %s by '
                                           '%s): nothing promoted, the next run decides', v_seen.version,
                                           v_state.version, v_state.reason, v_state.changed_by),
                                    '{}'::text[];
                return;
            end if;
        end if;
        select g.* into v_gates from chat_v11.current_gates(pg_catalog.clock_timestamp()) as g;
        v_blockers := v_gates.blockers;
        if v_gates.next_stage is not null and not coalesce(
            (select p.auto_promote from chat_v11.stage_policy as p where p.stage = v_gates.next_stage), false
        ) then
            v_blockers := array[format('auto_promote is off for %s: promote by hand, or set it with '
                                       'chat_set_v11_stage_policy(%L, ''{"auto_promote": true}'')',
                                       v_gates.next_stage, v_gates.next_stage)] || v_blockers;
        end if;
        if pg_catalog.cardinality(v_blockers) > 0 then
            perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
            return query select 'none'::text, v_seen.stage, v_gates.next_stage, v_seen.version,
                                format('no automatic promotion from %s: %s blocker(s)', v_seen.stage,
                                       pg_catalog.cardinality(v_blockers)),
                                v_blockers;
            return;
        end if;
    end loop;

    -- the write's other locks within the budget, as chat_set_v11_rollout_state takes them
    begin
        perform from chat_v11.stage as t where t.stage = v_gates.next_stage for key share;
        lock table chat_v11.rollout_history in row exclusive mode;
        lock table chat_v11.incident in access share mode;
    exception when lock_not_available then
        perform chat_v11.raise_state_locked(v_timeout);
    end;
    select a.* into v_approvals from chat_v11.approval_status(pg_catalog.clock_timestamp(), v_gates.next_stage) as a;
    v_reason := pg_catalog.left(format(
        'guardrail: automatic promotion from %s to %s: the Go/No-Go holds, %s observed since %s UTC, %s of %s '
        'approvals%s', v_state.stage, v_gates.next_stage, v_state.stage,
        pg_catalog.to_char((v_gates.observed_until - (select s.min_observation from chat_v11.stage as s
                                                      where s.stage = v_state.stage)) at time zone 'UTC',
                           'YYYY-MM-DD HH24:MI:SS'),
        v_approvals.valid, v_approvals.required,
        case when v_approvals.valid > 0 then format(' (%s)', array_to_string(v_approvals.approvers, ', '))
             else '' end
    ), 500);
    v_new := chat_v11.apply_transition(
        'auto_promote', v_gates.next_stage, false, false, v_reason, null, v_gates.snapshot, 'guardrail'
    );
    select t.traffic_percent into v_percent from chat_v11.stage as t where t.stage = v_new.stage;
    -- NO SURPRISE: the database moved traffic by itself; say so
    raise notice '%', format('auto_promote: v1.1 traffic goes from %s to %s (%s %%), version %s',
                             v_state.stage, v_new.stage, v_percent, v_new.version);
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return query select 'auto_promote'::text, v_new.stage, v_gates.next_stage, v_new.version, v_reason,
                        '{}'::text[];
end
$$;

revoke all on function public.chat_run_v11_progression() from public;
grant execute on function public.chat_run_v11_progression() to chat_rollout_ingest;
comment on function public.chat_run_v11_progression() is
'Automatic progression to run every few seconds (idempotent): promotes one stage (action auto_promote, actor '
'guardrail) when the next stage''s policy has auto_promote and every guard of a manual promotion holds now: not '
'killed or frozen, the Go/No-Go (no open P0/P1 incident), the observation window, the approvals (never the '
'scheduler login''s own). Re-checked under the state lock; a run that waited while the rollout changed promotes '
'nothing. Returns one row: auto_promote, or none with the blockers. A NOTICE says when it promotes.';
