-- >>> sql/0170_table_incident.sql
-- Incidents: the playbook's process as data (SPEC 4.8). One row per incident, changed only through the
-- incident functions; every change is also an append-only timeline entry.
create table chat_v11.incident (
    incident_id bigint generated always as identity,
    severity text not null,
    status text not null default 'open',
    summary text not null,
    opened_at timestamptz not null default pg_catalog.clock_timestamp(),
    opened_by text not null default session_user,
    opened_actor text,
    mitigated_at timestamptz,
    resolved_at timestamptz,
    closed_at timestamptz,
    postmortem jsonb,
    constraint incident_pkey primary key (incident_id),
    constraint incident_severity_valid check (severity in ('P0', 'P1', 'P2')),
    constraint incident_status_valid check (status in ('open', 'mitigated', 'resolved', 'closed')),
    constraint incident_summary_valid check (pg_catalog.char_length(summary) between 1 and 500),
    constraint incident_closed_has_postmortem check (status <> 'closed' or postmortem is not null)
);

create index incident_active_idx on chat_v11.incident (severity, opened_at)
where status in ('open', 'mitigated');

comment on table chat_v11.incident is
'Incidents of the Chat v1.1 rollout (severity P0/P1/P2, status open -> mitigated -> resolved -> closed). '
'Change with the public chat_*_v11_incident* functions.';

-- >>> sql/0180_table_incident_entry.sql
-- The incident timeline (the scribe's record): append-only, UTC, facts, decisions, actions and what the
-- system did (opened, severity, status, role, snapshot, escalation, postmortem).
create table chat_v11.incident_entry (
    entry_id bigint generated always as identity,
    incident_id bigint not null,
    at timestamptz not null default pg_catalog.clock_timestamp(),
    recorded_by text not null default session_user,
    actor text,
    kind text not null,
    body text not null,
    data jsonb,
    constraint incident_entry_pkey primary key (entry_id),
    constraint incident_entry_incident_fkey foreign key (incident_id) references chat_v11.incident (incident_id),
    constraint incident_entry_kind_valid check (
        kind in (
            'fact', 'decision', 'action', 'fallback_confirmed', 'root_cause',
            'opened', 'severity', 'status', 'role', 'snapshot', 'escalation', 'postmortem', 'exit_criteria'
        )
    ),
    constraint incident_entry_body_valid check (pg_catalog.char_length(body) between 1 and 2000)
);

create index incident_entry_incident_idx on chat_v11.incident_entry (incident_id, entry_id);

comment on table chat_v11.incident_entry is
'Append-only incident timeline: who recorded what, when (UTC), of which kind. Nobody rewrites an entry.';

-- >>> sql/0245_trigger_incident_entry_append_only.sql
-- The incident timeline is append-only.
create trigger incident_entry_no_update_delete
before update or delete on chat_v11.incident_entry
for each row execute function chat_v11.refuse_history_change();

create trigger incident_entry_no_truncate
before truncate on chat_v11.incident_entry
for each statement execute function chat_v11.refuse_history_change();

-- >>> sql/0390_function_open_incident_at.sql
-- The P0/P1 incident active at a moment (opened, not yet resolved): the most severe, then the oldest.
create or replace function chat_v11.open_incident_at(p_at timestamptz)
returns bigint
language sql
stable
as $$
    select i.incident_id
      from chat_v11.incident as i
     where i.severity in ('P0', 'P1')
       and case
           when p_at >= pg_catalog.now() then i.status in ('open', 'mitigated')
           else i.opened_at <= p_at and (i.resolved_at is null or i.resolved_at > p_at)
       end
     order by i.severity, i.opened_at, i.incident_id
     limit 1
$$;

revoke all on function chat_v11.open_incident_at(timestamptz) from public;
comment on function chat_v11.open_incident_at(timestamptz) is
'The P0/P1 incident active at p_at (opened and not resolved; now: status open or mitigated), most severe first.';

-- >>> sql/0392_function_incident_exit_failures.sql
-- The exit criteria of an incident of a severity at p_at (playbook sections 5 and 6), as what fails.
-- P0: gate_p0_ok, PROCEED, and every P0 check clean over the exit window; P1: P0 green and every P1 check
-- passing (near baseline) or not applicable; P2: none.
create or replace function chat_v11.incident_exit_failures(p_severity text, p_at timestamptz)
returns text[]
language plpgsql
stable
as $$
declare
    v_state record;
    v_failures text[] := '{}'::text[];
begin
    if p_severity = 'P2' then
        return v_failures;
    end if;
    select s.stage, s.kill_switch into v_state from chat_v11.rollout_state as s;
    select coalesce(array_agg(format('%s %s is %s: %s', c.severity, c.metric, c.status, c.explanation)
                              order by c.severity, c.metric), '{}'::text[])
      into v_failures
      from chat_v11.evaluate_checks(p_at, v_state.stage, v_state.kill_switch) as c
     where (c.severity = 'P0' and c.status <> 'pass')
        or (p_severity = 'P1' and c.severity = 'P1' and c.status not in ('pass', 'not_applicable'));
    if p_severity = 'P0' then
        v_failures := v_failures || chat_v11.p0_exit_failures(p_at);
    end if;
    return v_failures;
end
$$;

revoke all on function chat_v11.incident_exit_failures(text, timestamptz) from public;
comment on function chat_v11.incident_exit_failures(text, timestamptz) is
'What keeps the exit criteria of a P0/P1 incident from holding at p_at (empty when they hold; P2 has none).';

-- >>> sql/0393_function_checked_severity.sql
-- Validates an incident severity (playbook section 2) and returns it.
create or replace function chat_v11.checked_severity(p_severity text)
returns text
language plpgsql
immutable
as $$
begin
    if p_severity is null or p_severity not in ('P0', 'P1', 'P2') then
        raise exception using
            errcode = 'RO031',
            message = format('unknown severity %s', coalesce(quote_literal(p_severity), 'null')),
            detail = 'P0: write path lost or stuck, ACK -> receipt broken; P1: recovery/resync degraded without '
                || 'integrity loss; P2: version, schema or local errors without mass impact (playbook section 2).',
            hint = 'Pass ''P0'', ''P1'' or ''P2''.';
    end if;
    return p_severity;
end
$$;

revoke all on function chat_v11.checked_severity(text) from public;
comment on function chat_v11.checked_severity(text) is
'Returns the severity (P0, P1 or P2) or raises RO031.';

-- >>> sql/0394_function_incident_log.sql
-- Appends one entry to an incident's timeline and returns it.
create or replace function chat_v11.incident_log(p_incident_id bigint, p_kind text, p_body text, p_data jsonb)
returns chat_v11.incident_entry
language sql
volatile
as $$
    insert into chat_v11.incident_entry (incident_id, actor, kind, body, data)
    values (p_incident_id, chat_v11.claimed_actor(), p_kind, pg_catalog.left(p_body, 2000), p_data)
    returning *
$$;

revoke all on function chat_v11.incident_log(bigint, text, text, jsonb) from public;
comment on function chat_v11.incident_log(bigint, text, text, jsonb) is
'Appends an entry (kind, text, data) to an incident timeline, recorded by session_user with the claimed actor.';

-- >>> sql/0395_function_get_incident.sql
-- One incident by id, or RO030 when there is none.
create or replace function chat_v11.get_incident(p_incident_id bigint)
returns chat_v11.incident
language plpgsql
stable
as $$
declare
    v_incident chat_v11.incident;
begin
    select i.* into v_incident from chat_v11.incident as i where i.incident_id = p_incident_id;
    if not found then
        raise exception using
            errcode = 'RO030',
            message = format('unknown incident %s', coalesce(p_incident_id::text, 'null')),
            detail = 'No incident has that id.',
            hint = 'List the incidents with select * from public.chat_get_v11_incidents().';
    end if;
    return v_incident;
end
$$;

revoke all on function chat_v11.get_incident(bigint) from public;
comment on function chat_v11.get_incident(bigint) is
'The incident with that id, or RO030 when there is none.';

-- >>> sql/0396_function_incident_for_change.sql
-- Locks an incident for a change, or raises RO030 (unknown) / RO036 (closed: nothing changes any more).
create or replace function chat_v11.incident_for_change(p_incident_id bigint)
returns chat_v11.incident
language plpgsql
volatile
as $$
declare
    v_incident chat_v11.incident;
begin
    perform chat_v11.get_incident(p_incident_id);  -- RO030 when unknown
    select i.* into v_incident from chat_v11.incident as i where i.incident_id = p_incident_id for update;
    if v_incident.status = 'closed' then
        raise exception using
            errcode = 'RO036',
            message = format('incident %s is closed', p_incident_id),
            detail = format('Closed at %s UTC; a closed incident does not change.',
                            pg_catalog.to_char(v_incident.closed_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS')),
            hint = 'Open a new incident for a new problem.';
    end if;
    return v_incident;
end
$$;

revoke all on function chat_v11.incident_for_change(bigint) from public;
comment on function chat_v11.incident_for_change(bigint) is
'Locks an incident for a change; RO030 when unknown, RO036 when closed.';

-- >>> sql/0397_function_postmortem_problems.sql
-- What a postmortem lacks (playbook section 10), or an empty array when it is complete.
create or replace function chat_v11.postmortem_problems(p_postmortem jsonb)
returns text[]
language sql
stable
as $$
    select array_remove(array[
        case when jsonb_typeof(p_postmortem) is distinct from 'object' then 'the postmortem must be a JSON object' end,
        case when jsonb_typeof(p_postmortem) = 'object' and exists (
                 select from jsonb_object_keys(p_postmortem) as k
                  where k not in ('timeline', 'root_cause', 'what_worked', 'what_did_not_work', 'action_items',
                                  'decision_log'))
             then 'unknown keys: ' || (select string_agg(k, ', ') from jsonb_object_keys(p_postmortem) as k
                  where k not in ('timeline', 'root_cause', 'what_worked', 'what_did_not_work', 'action_items',
                                  'decision_log')) end,
        case when coalesce(jsonb_typeof(p_postmortem -> 'timeline'), 'null') not in ('string', 'array')
                  or coalesce(p_postmortem ->> 'timeline', '') in ('', '[]')
             then 'timeline (UTC) is missing' end,
        case when coalesce(btrim(p_postmortem #>> '{root_cause,technical}'), '') = ''
             then 'root_cause.technical is missing' end,
        case when coalesce(btrim(p_postmortem #>> '{root_cause,process}'), '') = ''
             then 'root_cause.process is missing' end,
        case when coalesce(p_postmortem ->> 'what_worked', '') in ('', '[]') then 'what_worked is missing' end,
        case when coalesce(p_postmortem ->> 'what_did_not_work', '') in ('', '[]')
             then 'what_did_not_work is missing' end,
        case when jsonb_typeof(p_postmortem -> 'action_items') is distinct from 'array'
             then 'action_items must be an array' end,
        (select string_agg(format('action item %s: %s', a.ord, p.problem), '; ')
           from jsonb_array_elements(case when jsonb_typeof(p_postmortem -> 'action_items') = 'array'
                                          then p_postmortem -> 'action_items' else '[]' end)
                    with ordinality as a (item, ord)
          cross join lateral (
              select case
                  when jsonb_typeof(a.item) is distinct from 'object' then 'not an object'
                  when coalesce(a.item ->> 'kind', '') not in ('test', 'alert', 'guardrail')
                      then 'kind must be test, alert or guardrail'
                  when coalesce(btrim(a.item ->> 'title'), '') = '' then 'title is missing'
                  when coalesce(btrim(a.item ->> 'owner'), '') = '' then 'owner is missing'
                  when coalesce(a.item ->> 'deadline', '') !~ '^\d{4}-\d{2}-\d{2}$' then 'deadline (YYYY-MM-DD) is missing'
              end as problem
          ) as p
          where p.problem is not null),
        (select 'action items lack the kinds: ' || string_agg(k.kind, ', ')
           from unnest(array['test', 'alert', 'guardrail']) as k (kind)
          where jsonb_typeof(p_postmortem -> 'action_items') = 'array'
            and not exists (select from jsonb_array_elements(p_postmortem -> 'action_items') as a (item)
                             where a.item ->> 'kind' = k.kind))
    ], null)
$$;

revoke all on function chat_v11.postmortem_problems(jsonb) from public;
comment on function chat_v11.postmortem_problems(jsonb) is
'What a postmortem lacks: UTC timeline, technical and process root cause, what worked and what did not, action '
'items of kinds test, alert and guardrail each with a title, an owner and a deadline.';

-- >>> sql/0398_function_incident_rollout_effect.sql
-- What an incident's severity does to the rollout (playbook section 4): P0 and P1 freeze promotion, P0
-- engages the kill switch unless it is on. Returns the new state version, or null when nothing changed.
create or replace function chat_v11.incident_rollout_effect(p_severity text, p_reason text, p_actor text)
returns bigint
language plpgsql
volatile
as $$
declare
    v_state record;
    v_gates record;
    v_new record;
    v_version bigint;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
    if p_severity not in ('P0', 'P1') then
        return null;
    end if;
    v_state := chat_v11.lock_state();
    select g.* into v_gates from chat_v11.current_gates(pg_catalog.clock_timestamp()) as g;
    if p_severity = 'P0' and not v_state.kill_switch then
        v_new := chat_v11.apply_transition('kill', v_state.stage, true, true, p_reason, null, v_gates.snapshot, p_actor);
        v_version := v_new.version;
    elsif not v_state.promotion_frozen then
        v_new := chat_v11.apply_transition(
            'hold', v_state.stage, v_state.kill_switch, true, p_reason, null, v_gates.snapshot, p_actor
        );
        v_version := v_new.version;
    end if;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
    return v_version;
end
$$;

revoke all on function chat_v11.incident_rollout_effect(text, text, text) from public;
comment on function chat_v11.incident_rollout_effect(text, text, text) is
'Freezes promotion for a P0/P1 incident and engages the kill switch for a P0 unless on; the new version or null.';

-- >>> sql/0399_function_set_incident_severity.sql
-- Sets an incident's severity, records it (kind severity, or escalation when raised) and applies the
-- new severity's effect on the rollout. Returns the rollout version written, or null.
create or replace function chat_v11.set_incident_severity(
    p_incident chat_v11.incident, p_severity text, p_reason text, p_evidence jsonb, p_actor text
)
returns bigint
language plpgsql
volatile
as $$
declare
    v_raised boolean := p_severity < p_incident.severity;  -- 'P0' < 'P1' < 'P2'
begin
    update chat_v11.incident as i set severity = p_severity where i.incident_id = p_incident.incident_id;
    perform chat_v11.incident_log(
        p_incident.incident_id,
        case when v_raised then 'escalation' else 'severity' end,
        format('severity %s -> %s: %s', p_incident.severity, p_severity, p_reason),
        coalesce(p_evidence, '{}'::jsonb) || jsonb_build_object('from', p_incident.severity, 'to', p_severity)
    );
    if not v_raised then
        return null;
    end if;
    return chat_v11.incident_rollout_effect(
        p_severity,
        pg_catalog.left(format('incident %s escalated to %s: %s', p_incident.incident_id, p_severity, p_reason), 500),
        p_actor
    );
end
$$;

revoke all on function chat_v11.set_incident_severity(chat_v11.incident, text, text, jsonb, text) from public;
comment on function chat_v11.set_incident_severity(chat_v11.incident, text, text, jsonb, text) is
'Sets an incident''s severity, logs it (escalation when raised) and applies the rollout effect of a raise.';

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
        v_go := v_go || (
            select format('incident %s (%s, %s: %s) is open', i.incident_id, i.severity, i.status, i.summary)
              from chat_v11.incident as i
             where i.incident_id = p_incident_id
        );
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
        p_reason, p_note, p_gate_snapshot, chat_v11.open_incident_at('infinity')
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
          p_at, s.stage, s.kill_switch, s.promotion_frozen, chat_v11.open_incident_at('infinity'), h.stage_since
      ) as g
$$;

revoke all on function chat_v11.current_gates(timestamptz) from public;
comment on function chat_v11.current_gates(timestamptz) is
'Gate verdict and Go/No-Go of the current state at p_at, with the jsonb snapshot kept in the history.';

-- >>> sql/0540_function_auto_kill.sql
-- The P0 guardrail. When a P0 check fails at p_at: an active P1/P2 incident escalates to P0 (playbook
-- section 7) with the evidence; with the auto_kill policy on and the kill switch off, the kill switch is
-- engaged (action auto_kill, actor guardrail) under a P0 incident, opened if none is active. All in the
-- caller's transaction. Returns the new state version, or null when the rollout was not changed.
create or replace function chat_v11.auto_kill(p_at timestamptz, p_source text)
returns bigint
language plpgsql
volatile
as $$
declare
    v_state record;
    v_failing text[];
    v_evidence jsonb;
    v_incident chat_v11.incident;
    v_auto boolean;
    v_gates record;
    v_reason text;
    v_new record;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
    select array_agg(format('%s = %s (%s)', c.metric, coalesce(c.value::text, 'n/a'), c.explanation)
                     order by c.metric),
           jsonb_agg(jsonb_build_object('metric', c.metric, 'value', c.value, 'volume', c.volume,
                                        'explanation', c.explanation) order by c.metric)
      into v_failing, v_evidence
      from chat_v11.evaluate_checks(p_at, 'off', false) as c
     where c.severity = 'P0' and c.status = 'fail';
    if v_failing is null then
        return null;
    end if;
    v_reason := pg_catalog.left(format('auto_kill by the P0 guardrail (%s, evidence at %s UTC): %s',
                                       p_source, pg_catalog.to_char(p_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                                       array_to_string(v_failing, '; ')), 500);
    v_auto := coalesce((select (p.value #>> '{}')::boolean from chat_v11.policy as p where p.key = 'auto_kill'), true);
    select s.kill_switch into v_state from chat_v11.rollout_state as s;

    -- INCIDENT: escalate the active incident to P0, or declare one for the automatic kill
    select i.* into v_incident
      from chat_v11.incident as i
     where i.status in ('open', 'mitigated')
     order by i.severity, i.opened_at
     limit 1
       for update;
    if v_incident.incident_id is not null and v_incident.severity <> 'P0' then
        update chat_v11.incident as i set severity = 'P0' where i.incident_id = v_incident.incident_id;
        perform chat_v11.incident_log(
            v_incident.incident_id, 'escalation',
            pg_catalog.left(format('severity %s -> P0 by the guardrail (playbook section 7): %s', v_incident.severity,
                                   array_to_string(v_failing, '; ')), 2000),
            jsonb_build_object('from', v_incident.severity, 'to', 'P0', 'evidence', v_evidence, 'at', p_at)
        );
    elsif v_incident.incident_id is null and v_auto and not v_state.kill_switch then
        insert into chat_v11.incident (severity, summary, opened_actor)
        values ('P0', pg_catalog.left('automatic kill: ' || array_to_string(v_failing, '; '), 500), 'guardrail')
        returning * into v_incident;
        perform chat_v11.incident_log(v_incident.incident_id, 'opened',
                                      'P0 incident declared by the guardrail: ' || v_reason,
                                      jsonb_build_object('evidence', v_evidence, 'at', p_at));
    end if;

    -- ROLLOUT: the automatic kill
    if not v_auto or v_state.kill_switch then
        return null;
    end if;
    v_state := chat_v11.lock_state();
    if v_state.kill_switch then
        perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
        return null;  -- an operator got there first
    end if;
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
'P0 guardrail: on a failing P0 check, escalates the active incident to P0 and, with auto_kill on, engages the '
'kill switch (auto_kill, actor guardrail) under a P0 incident; returns the new state version or null.';

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
           chat_v11.open_incident_at(coalesce(p_at, pg_catalog.now())), g.next_stage, coalesce(p_at, pg_catalog.now()), g.failing_checks, g.blockers
      from (select 1) as one
      left join chat_v11.state_at(coalesce(p_at, pg_catalog.now())) as h on true
     cross join lateral chat_v11.evaluate_gates(
         coalesce(p_at, pg_catalog.now()), coalesce(h.stage, 'off'), coalesce(h.kill_switch, false),
         coalesce(h.promotion_frozen, false), chat_v11.open_incident_at(coalesce(p_at, pg_catalog.now())),
         h.stage_since
     ) as g
$$;

revoke all on function public.chat_get_v11_release_gates(timestamptz) from public;
grant execute on function public.chat_get_v11_release_gates(timestamptz) to chat_rollout_reader;
comment on function public.chat_get_v11_release_gates(timestamptz) is
'Source of truth: the release gates as of p_at (default now). gate_p0_ok, gate_p1_ok, rollout_decision '
'(PROCEED | HOLD | ROLLBACK), promotion_allowed (the Go/No-Go) and blockers in words. Missing data never '
'passes. Read-only.';

-- >>> sql/0800_function_chat_open_v11_incident.sql
-- Declares an incident (playbook section 4, step 1): P0/P1 freeze promotion at once, P0 engages the kill switch.
create or replace function public.chat_open_v11_incident(p_severity text, p_summary text)
returns table (
    incident_id bigint,
    severity text,
    status text,
    summary text,
    opened_at timestamptz,
    opened_by text,
    rollout_version bigint
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_summary text := chat_v11.checked_reason(p_summary);
    v_incident chat_v11.incident;
    v_version bigint;
begin
    perform chat_v11.checked_severity(p_severity);
    insert into chat_v11.incident (severity, summary, opened_actor)
    values (p_severity, v_summary, chat_v11.claimed_actor())
    returning * into v_incident;
    perform chat_v11.incident_log(v_incident.incident_id, 'opened',
                                  format('%s incident declared: %s', p_severity, v_summary), null);
    v_version := chat_v11.incident_rollout_effect(
        p_severity, pg_catalog.left(format('incident %s %s: %s', v_incident.incident_id, p_severity, v_summary), 500),
        null
    );
    return query select v_incident.incident_id, v_incident.severity, v_incident.status, v_incident.summary,
                        v_incident.opened_at, v_incident.opened_by, v_version;
end
$$;

revoke all on function public.chat_open_v11_incident(text, text) from public;
grant execute on function public.chat_open_v11_incident(text, text) to chat_rollout_operator;
comment on function public.chat_open_v11_incident(text, text) is
'Declare an incident (P0, P1 or P2) with a summary. P0 and P1 freeze promotion at once; P0 also engages the '
'kill switch unless it is on (playbook section 4). Returns the incident and the rollout version it wrote.';

-- >>> sql/0810_function_chat_get_v11_incidents.sql
-- Every incident, newest first, with its roles, its last IC decision and whether the cadence is missed.
create or replace function public.chat_get_v11_incidents()
returns table (
    incident_id bigint,
    severity text,
    status text,
    summary text,
    opened_at timestamptz,
    opened_by text,
    roles text,
    last_decision_at timestamptz,
    decision_overdue boolean,
    mitigated_at timestamptz,
    resolved_at timestamptz,
    closed_at timestamptz,
    has_postmortem boolean,
    entries bigint
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select i.incident_id, i.severity, i.status, i.summary, i.opened_at, i.opened_by,
           (select string_agg(r.role || '=' || r.person, ', ' order by r.ord)
              from (select distinct on (e.data ->> 'role') e.data ->> 'role' as role, e.data ->> 'person' as person,
                           array_position(array['IC', 'backend', 'SRE', 'frontend', 'scribe'], e.data ->> 'role') as ord
                      from chat_v11.incident_entry as e
                     where e.incident_id = i.incident_id and e.kind = 'role'
                     order by e.data ->> 'role', e.entry_id desc) as r),
           d.last_decision_at,
           i.status in ('open', 'mitigated')
               and coalesce(d.last_decision_at, i.opened_at) < pg_catalog.now() - interval '10 minutes',
           i.mitigated_at, i.resolved_at, i.closed_at, i.postmortem is not null,
           (select count(*) from chat_v11.incident_entry as e where e.incident_id = i.incident_id)
      from chat_v11.incident as i
      left join lateral (
          select max(e.at) as last_decision_at
            from chat_v11.incident_entry as e
           where e.incident_id = i.incident_id and e.kind = 'decision'
      ) as d on true
     order by i.incident_id desc
$$;

revoke all on function public.chat_get_v11_incidents() from public;
grant execute on function public.chat_get_v11_incidents() to chat_rollout_reader;
comment on function public.chat_get_v11_incidents() is
'Every incident, newest first: severity, status, summary, roles (IC, backend, SRE, frontend, scribe), the IC''s '
'last decision and whether the 10-minute decision cadence is overdue, postmortem present. Read-only.';

-- >>> sql/0820_function_chat_log_v11_incident.sql
-- The scribe's record: a fact, a decision, an action, the client fallback confirmed, or the root cause by layer.
create or replace function public.chat_log_v11_incident(p_incident_id bigint, p_kind text, p_text text)
returns table (entry_id bigint, incident_id bigint, at timestamptz, recorded_by text, kind text, body text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_text text := chat_v11.checked_reason(p_text);
    v_entry chat_v11.incident_entry;
    v_layer text;
begin
    perform chat_v11.incident_for_change(p_incident_id);
    if p_kind is null or p_kind not in ('fact', 'decision', 'action', 'fallback_confirmed', 'root_cause') then
        raise exception using
            errcode = 'RO031',
            message = format('unknown timeline entry kind %s', coalesce(quote_literal(p_kind), 'null')),
            detail = 'Kinds: fact, decision, action, fallback_confirmed (the client fallback is confirmed), '
                || 'root_cause (''layer: cause'', layer one of backend, frontend, sre, database, network).',
            hint = 'For example: chat_log_v11_incident(7, ''decision'', ''keep the kill switch on'').';
    end if;
    if p_kind = 'root_cause' then
        v_layer := lower(split_part(v_text, ':', 1));
        if v_layer not in ('backend', 'frontend', 'sre', 'database', 'network') or position(':' in v_text) = 0 then
            raise exception using
                errcode = 'RO031',
                message = 'a root cause names its layer first',
                detail = 'Layers: backend (commit path, idempotency, receipt emission), frontend (fallback state '
                    || 'machine, pending/drift), sre (lag, throttling, saturation), database, network.',
                hint = 'For example: ''backend: receipt not emitted for duplicate ACKs''.';
        end if;
    end if;
    v_entry := chat_v11.incident_log(p_incident_id, p_kind, v_text,
                                     case when v_layer is not null then jsonb_build_object('layer', v_layer) end);
    return query select v_entry.entry_id, v_entry.incident_id, v_entry.at, v_entry.recorded_by, v_entry.kind,
                        v_entry.body;
end
$$;

revoke all on function public.chat_log_v11_incident(bigint, text, text) from public;
grant execute on function public.chat_log_v11_incident(bigint, text, text) to chat_rollout_operator;
comment on function public.chat_log_v11_incident(bigint, text, text) is
'Append to an incident''s UTC timeline: fact, decision (the IC''s, every 10 minutes), action, fallback_confirmed, '
'or root_cause (''layer: cause''). Entries are never rewritten.';

-- >>> sql/0830_function_chat_set_v11_incident_role.sql
-- Names who fills a role of the incident (playbook section 3): IC, backend, SRE, frontend, scribe.
create or replace function public.chat_set_v11_incident_role(p_incident_id bigint, p_role text, p_person text)
returns table (entry_id bigint, incident_id bigint, at timestamptz, role text, person text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_person text := chat_v11.checked_reason(p_person);
    v_role text;
    v_entry chat_v11.incident_entry;
begin
    perform chat_v11.incident_for_change(p_incident_id);
    v_role := case lower(coalesce(p_role, ''))
        when 'ic' then 'IC' when 'backend' then 'backend' when 'sre' then 'SRE'
        when 'frontend' then 'frontend' when 'scribe' then 'scribe'
    end;
    if v_role is null then
        raise exception using
            errcode = 'RO031',
            message = format('unknown incident role %s', coalesce(quote_literal(p_role), 'null')),
            detail = 'Roles: IC, backend, SRE, frontend, scribe (playbook section 3).',
            hint = 'For example: chat_set_v11_incident_role(7, ''IC'', ''alice'').';
    end if;
    v_entry := chat_v11.incident_log(p_incident_id, 'role', format('%s: %s', v_role, v_person),
                                     jsonb_build_object('role', v_role, 'person', v_person));
    return query select v_entry.entry_id, v_entry.incident_id, v_entry.at, v_role, v_person;
end
$$;

revoke all on function public.chat_set_v11_incident_role(bigint, text, text) from public;
grant execute on function public.chat_set_v11_incident_role(bigint, text, text) to chat_rollout_operator;
comment on function public.chat_set_v11_incident_role(bigint, text, text) is
'Name who fills an incident role: IC, backend, SRE, frontend or scribe (the latest entry per role counts).';

-- >>> sql/0840_function_chat_set_v11_incident_severity.sql
-- Changes an incident's severity. Up to P0 or P1 applies that severity's effect on the rollout at once
-- (P1 freezes, P0 also engages the kill switch); the change and its reason go to the timeline.
create or replace function public.chat_set_v11_incident_severity(p_incident_id bigint, p_severity text, p_reason text)
returns table (incident_id bigint, severity text, previous_severity text, status text, rollout_version bigint)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_reason text := chat_v11.checked_reason(p_reason);
    v_incident chat_v11.incident;
    v_version bigint;
begin
    v_incident := chat_v11.incident_for_change(p_incident_id);
    perform chat_v11.checked_severity(p_severity);
    v_version := chat_v11.set_incident_severity(v_incident, p_severity, v_reason, null, null);
    return query select v_incident.incident_id, p_severity, v_incident.severity, v_incident.status, v_version;
end
$$;

revoke all on function public.chat_set_v11_incident_severity(bigint, text, text) from public;
grant execute on function public.chat_set_v11_incident_severity(bigint, text, text) to chat_rollout_operator;
comment on function public.chat_set_v11_incident_severity(bigint, text, text) is
'Change an incident''s severity with a reason. Raising it to P1 freezes promotion, to P0 also engages the kill '
'switch (playbook sections 4 and 7). Recorded in the timeline.';

-- >>> sql/0850_function_chat_set_v11_incident_status.sql
-- Moves an incident: open -> mitigated -> resolved (only when its exit criteria hold), resolved -> open (reopen).
-- Closing is chat_close_v11_incident (it needs the postmortem).
create or replace function public.chat_set_v11_incident_status(p_incident_id bigint, p_status text, p_reason text)
returns table (incident_id bigint, severity text, status text, previous_status text, changed_at timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_reason text := chat_v11.checked_reason(p_reason);
    v_incident chat_v11.incident;
    v_now timestamptz := clock_timestamp();
    v_failures text[];
begin
    v_incident := chat_v11.incident_for_change(p_incident_id);
    if p_status is null
       or (v_incident.status, p_status) not in (
           ('open', 'mitigated'), ('open', 'resolved'), ('mitigated', 'resolved'), ('resolved', 'open'),
           ('mitigated', 'open')
       ) then
        raise exception using
            errcode = 'RO032',
            message = format('incident %s cannot go from %s to %s', p_incident_id, v_incident.status,
                             coalesce(p_status, 'null')),
            detail = 'Statuses: open -> mitigated -> resolved -> closed; a resolved incident may be reopened.',
            hint = case when p_status = 'closed' then 'Close with chat_close_v11_incident(id, reason).'
                        else 'Pass mitigated, resolved or open.' end;
    end if;
    if p_status = 'resolved' then
        -- GUARD: the exit criteria of the incident's severity (playbook sections 5 and 6)
        v_failures := chat_v11.incident_exit_failures(v_incident.severity, v_now);
        if cardinality(v_failures) > 0 then
            raise exception using
                errcode = 'RO033',
                message = format('incident %s cannot be resolved: its %s exit criteria do not hold',
                                 p_incident_id, v_incident.severity),
                detail = array_to_string(v_failures, '; '),
                hint = 'Keep mitigating; resolve once the gates show the exit criteria (chat_get_v11_gate_checks()).';
        end if;
        perform chat_v11.incident_log(p_incident_id, 'exit_criteria',
                                      format('%s exit criteria hold', v_incident.severity),
                                      (select to_jsonb(g) from chat_v11.current_gates(v_now) as g));
    end if;
    update chat_v11.incident as i
       set status = p_status,
           mitigated_at = case when p_status = 'mitigated' then v_now else i.mitigated_at end,
           resolved_at = case when p_status = 'resolved' then v_now when p_status = 'open' then null
                              else i.resolved_at end
     where i.incident_id = p_incident_id;
    perform chat_v11.incident_log(p_incident_id, 'status',
                                  format('status %s -> %s: %s', v_incident.status, p_status, v_reason),
                                  jsonb_build_object('from', v_incident.status, 'to', p_status));
    return query select v_incident.incident_id, v_incident.severity, p_status, v_incident.status, v_now;
end
$$;

revoke all on function public.chat_set_v11_incident_status(bigint, text, text) from public;
grant execute on function public.chat_set_v11_incident_status(bigint, text, text) to chat_rollout_operator;
comment on function public.chat_set_v11_incident_status(bigint, text, text) is
'Move an incident: open -> mitigated -> resolved (refused with RO033 while the exit criteria of its severity '
'fail), or reopen a resolved one. Recorded in the timeline.';

-- >>> sql/0860_function_chat_snapshot_v11_incident.sql
-- Playbook section 4, step 2 in one call: stores the gates, the checks, the state and the last 50 history
-- rows in the incident's timeline.
create or replace function public.chat_snapshot_v11_incident(p_incident_id bigint)
returns table (entry_id bigint, incident_id bigint, at timestamptz, body text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_entry chat_v11.incident_entry;
    v_gates jsonb;
begin
    perform chat_v11.incident_for_change(p_incident_id);
    select to_jsonb(g) into v_gates from public.chat_get_v11_release_gates() as g;
    v_entry := chat_v11.incident_log(
        p_incident_id, 'snapshot',
        format('SQL snapshot: gate_p0_ok=%s, gate_p1_ok=%s, rollout_decision=%s, stage %s, kill switch %s',
               v_gates ->> 'gate_p0_ok', v_gates ->> 'gate_p1_ok', v_gates ->> 'rollout_decision',
               v_gates ->> 'stage', v_gates ->> 'kill_switch'),
        jsonb_build_object(
            'release_gates', v_gates,
            'gate_checks', (select jsonb_agg(to_jsonb(c)) from public.chat_get_v11_gate_checks() as c),
            'rollout_state', (select to_jsonb(s) from public.chat_get_v11_rollout_state() as s),
            'rollout_history', (select jsonb_agg(to_jsonb(h)) from public.chat_get_v11_rollout_history(50) as h)
        )
    );
    return query select v_entry.entry_id, v_entry.incident_id, v_entry.at, v_entry.body;
end
$$;

revoke all on function public.chat_snapshot_v11_incident(bigint) from public;
grant execute on function public.chat_snapshot_v11_incident(bigint) to chat_rollout_operator;
comment on function public.chat_snapshot_v11_incident(bigint) is
'Take the SQL snapshot of playbook section 4 (release gates, gate checks, rollout state, history 50) into the '
'incident''s timeline.';

-- >>> sql/0870_function_chat_put_v11_postmortem.sql
-- Stores the incident's postmortem (playbook section 10), refused while anything required is missing.
create or replace function public.chat_put_v11_postmortem(p_incident_id bigint, p_postmortem jsonb)
returns table (incident_id bigint, status text, action_items integer, stored_at timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_incident chat_v11.incident;
    v_problems text[];
    v_entry chat_v11.incident_entry;
begin
    v_incident := chat_v11.incident_for_change(p_incident_id);
    v_problems := chat_v11.postmortem_problems(p_postmortem);
    if cardinality(v_problems) > 0 then
        raise exception using
            errcode = 'RO035',
            message = format('the postmortem of incident %s is incomplete', p_incident_id),
            detail = array_to_string(v_problems, '; ') || '.',
            hint = 'Send {"timeline": [...], "root_cause": {"technical": ..., "process": ...}, "what_worked": [...], '
                || '"what_did_not_work": [...], "action_items": [{"kind": "test|alert|guardrail", "title": ..., '
                || '"owner": ..., "deadline": "YYYY-MM-DD"}], "decision_log": [...]}.';
    end if;
    update chat_v11.incident as i set postmortem = p_postmortem where i.incident_id = p_incident_id;
    v_entry := chat_v11.incident_log(
        p_incident_id, 'postmortem',
        format('postmortem stored with %s action items', jsonb_array_length(p_postmortem -> 'action_items')),
        p_postmortem
    );
    return query select p_incident_id, v_incident.status, jsonb_array_length(p_postmortem -> 'action_items'),
                        v_entry.at;
end
$$;

revoke all on function public.chat_put_v11_postmortem(bigint, jsonb) from public;
grant execute on function public.chat_put_v11_postmortem(bigint, jsonb) to chat_rollout_operator;
comment on function public.chat_put_v11_postmortem(bigint, jsonb) is
'Store an incident''s postmortem: timeline, root_cause {technical, process}, what_worked, what_did_not_work, '
'action_items [{kind test|alert|guardrail, title, owner, deadline}], decision_log. Incomplete: RO035.';

-- >>> sql/0880_function_chat_get_v11_incident_checklist.sql
-- The playbook's on-call checklist (section 11) for one incident, item by item, from facts in the database,
-- plus the IC's 10-minute decision cadence.
create or replace function public.chat_get_v11_incident_checklist(p_incident_id bigint)
returns table (item integer, title text, status text, evidence text)
language plpgsql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_i chat_v11.incident;
    v_active boolean;
    v_entry record;
    v_row record;
    v_kill record;
    v_failures text[];
    v_problems text[];
    v_at_open record;
begin
    v_i := chat_v11.get_incident(p_incident_id);
    v_active := v_i.status in ('open', 'mitigated');
    select s.* into v_at_open from chat_v11.state_at(v_i.opened_at) as s;

    -- 1. Severity assigned
    item := 1; title := 'Severity assigned'; status := 'done';
    evidence := format('%s, declared %s UTC by %s', v_i.severity,
                       to_char(v_i.opened_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), v_i.opened_by);
    return next;

    -- 2. SQL snapshot taken
    select e.* into v_entry from chat_v11.incident_entry as e
     where e.incident_id = p_incident_id and e.kind = 'snapshot' order by e.entry_id limit 1;
    item := 2; title := 'SQL snapshot taken';
    status := case when v_entry.entry_id is null then 'not done' else 'done' end;
    evidence := case when v_entry.entry_id is null then 'no snapshot: call chat_snapshot_v11_incident(id)'
                     else format('snapshot at %s UTC by %s', to_char(v_entry.at at time zone 'UTC', 'HH24:MI:SS'),
                                 v_entry.recorded_by) end;
    return next;

    -- 3. Rollout freeze on
    select h.* into v_row from chat_v11.rollout_history as h
     where h.changed_at >= v_i.opened_at and h.promotion_frozen order by h.version limit 1;
    item := 3; title := 'Rollout freeze on';
    if v_i.severity = 'P2' then
        status := 'n/a'; evidence := 'P2: no freeze required';
    elsif coalesce(v_at_open.promotion_frozen, false) then
        status := 'done'; evidence := format('already frozen when declared (version %s)', v_at_open.version);
    elsif v_row.version is not null then
        status := 'done';
        evidence := format('%s at version %s, %s UTC', v_row.action, v_row.version,
                           to_char(v_row.changed_at at time zone 'UTC', 'HH24:MI:SS'));
    else
        status := 'not done'; evidence := 'promotion is not frozen';
    end if;
    return next;

    -- 4. Kill switch on for P0
    select h.* into v_kill from chat_v11.rollout_history as h
     where h.changed_at >= v_i.opened_at and h.to_kill_switch and not coalesce(h.from_kill_switch, false)
     order by h.version limit 1;
    item := 4; title := 'Kill switch on for P0';
    if v_i.severity <> 'P0' then
        status := 'n/a'; evidence := format('%s: no kill switch required', v_i.severity);
    elsif coalesce(v_at_open.kill_switch, false) then
        status := 'done'; evidence := format('already on when declared (version %s)', v_at_open.version);
    elsif v_kill.version is not null then
        status := 'done';
        evidence := format('%s at version %s, %s UTC', v_kill.action, v_kill.version,
                           to_char(v_kill.changed_at at time zone 'UTC', 'HH24:MI:SS'));
    else
        status := 'not done'; evidence := 'the kill switch has not been engaged';
    end if;
    return next;

    -- 5. Client fallback confirmed
    select e.* into v_entry from chat_v11.incident_entry as e
     where e.incident_id = p_incident_id and e.kind = 'fallback_confirmed' order by e.entry_id limit 1;
    item := 5; title := 'Client fallback confirmed';
    if v_i.severity <> 'P0' then
        status := 'n/a'; evidence := format('%s: the P0 runbook''s client fallback does not apply', v_i.severity);
    elsif v_entry.entry_id is null then
        status := 'not done'; evidence := 'no fallback_confirmed entry in the timeline';
    else
        status := 'done'; evidence := format('%s (%s UTC, %s)', v_entry.body,
                                             to_char(v_entry.at at time zone 'UTC', 'HH24:MI:SS'), v_entry.recorded_by);
    end if;
    return next;

    -- 6. Root cause localized by layer
    select e.* into v_entry from chat_v11.incident_entry as e
     where e.incident_id = p_incident_id and e.kind = 'root_cause' order by e.entry_id desc limit 1;
    item := 6; title := 'Root cause localized by layer';
    status := case when v_entry.entry_id is null then 'not done' else 'done' end;
    evidence := coalesce(v_entry.body, 'no root_cause entry (''layer: cause'') in the timeline');
    return next;

    -- 7. Exit criteria met
    item := 7; title := 'Exit criteria met';
    if v_i.severity = 'P2' then
        status := 'n/a'; evidence := 'P2: no exit criteria from the gates';
    elsif v_i.status in ('resolved', 'closed') then
        select e.* into v_entry from chat_v11.incident_entry as e
         where e.incident_id = p_incident_id and e.kind = 'exit_criteria' order by e.entry_id desc limit 1;
        status := 'done';
        evidence := format('held when resolved at %s UTC', to_char(v_i.resolved_at at time zone 'UTC', 'HH24:MI:SS'));
    else
        v_failures := chat_v11.incident_exit_failures(v_i.severity, pg_catalog.now());
        status := case when cardinality(v_failures) = 0 then 'done' else 'not done' end;
        evidence := case when cardinality(v_failures) = 0 then 'they hold now'
                         else array_to_string(v_failures, '; ') end;
    end if;
    return next;

    -- 8. Rollout resume only through the gate
    item := 8; title := 'Rollout resume only through the gate';
    if v_kill.version is null and not coalesce(v_at_open.kill_switch, false) then
        status := 'n/a'; evidence := 'the kill switch was not engaged';
    else
        select h.* into v_row from chat_v11.rollout_history as h
         where h.changed_at >= v_i.opened_at and h.action = 'resume' order by h.version desc limit 1;
        if v_row.version is null then
            status := 'not done'; evidence := 'the kill switch is still on: resume through the P0 exit criteria';
        else
            status := 'done';
            evidence := format('resume at version %s, %s UTC, through the P0 exit criteria', v_row.version,
                               to_char(v_row.changed_at at time zone 'UTC', 'HH24:MI:SS'));
        end if;
    end if;
    return next;

    -- 9. Postmortem created
    item := 9; title := 'Postmortem created';
    status := case when v_i.postmortem is null then 'not done' else 'done' end;
    evidence := case when v_i.postmortem is null then 'no postmortem: chat_put_v11_postmortem(id, ...)'
                     else 'stored' end;
    return next;

    -- 10. Action items assigned
    item := 10; title := 'Action items assigned';
    v_problems := case when v_i.postmortem is null then array['no postmortem yet']
                       else chat_v11.postmortem_problems(v_i.postmortem) end;
    status := case when cardinality(v_problems) = 0 then 'done' else 'not done' end;
    evidence := case when cardinality(v_problems) = 0
                     then format('%s action items, each with an owner and a deadline',
                                 jsonb_array_length(v_i.postmortem -> 'action_items'))
                     else array_to_string(v_problems, '; ') end;
    return next;

    -- 11. The IC decides every 10 minutes
    select e.* into v_entry from chat_v11.incident_entry as e
     where e.incident_id = p_incident_id and e.kind = 'decision' order by e.entry_id desc limit 1;
    item := 11; title := 'IC decision every 10 minutes';
    if not v_active then
        status := 'n/a'; evidence := format('incident %s', v_i.status);
    elsif coalesce(v_entry.at, v_i.opened_at) < pg_catalog.now() - interval '10 minutes' then
        status := 'overdue';
        evidence := format('last decision %s', coalesce(to_char(v_entry.at at time zone 'UTC', 'HH24:MI:SS') || ' UTC',
                                                        'none since the incident was declared'));
    else
        status := 'done';
        evidence := coalesce(format('last decision %s UTC: %s', to_char(v_entry.at at time zone 'UTC', 'HH24:MI:SS'),
                                    v_entry.body), 'declared less than 10 minutes ago');
    end if;
    return next;
end
$$;

revoke all on function public.chat_get_v11_incident_checklist(bigint) from public;
grant execute on function public.chat_get_v11_incident_checklist(bigint) to chat_rollout_reader;
comment on function public.chat_get_v11_incident_checklist(bigint) is
'The on-call checklist of playbook section 11 for an incident, from facts in the database: each item done, '
'not done or n/a with its evidence, plus the IC''s 10-minute decision cadence (overdue when missed). Read-only.';

-- >>> sql/0885_function_chat_get_v11_incident_timeline.sql
-- One UTC timeline for an incident: its entries, the rollout history and every change of the gate verdict
-- from 15 minutes before it was declared (or before the guardrail's evidence) until it was closed (or now):
-- the postmortem's first section.
create or replace function public.chat_get_v11_incident_timeline(p_incident_id bigint)
returns table (at timestamptz, source text, kind text, who text, body text)
language plpgsql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_i chat_v11.incident;
    v_from timestamptz;
    v_to timestamptz;
    v_step interval;
begin
    v_i := chat_v11.get_incident(p_incident_id);
    -- from 15 minutes before the declaration, or before the guardrail's evidence when that is older
    select least(v_i.opened_at, min((e.data ->> 'at')::timestamptz)) - interval '15 minutes'
      into v_from
      from chat_v11.incident_entry as e
     where e.incident_id = p_incident_id and e.kind in ('opened', 'escalation');
    v_to := coalesce(v_i.closed_at, pg_catalog.clock_timestamp());
    v_step := greatest(interval '1 minute', (v_to - v_from) / 500);
    return query
    with entries as (
        select e.at, 'incident'::text as source, e.kind, coalesce(e.actor || ' (' || e.recorded_by || ')', e.recorded_by),
               e.body
          from chat_v11.incident_entry as e
         where e.incident_id = p_incident_id
    ),
    rollout as (
        select h.changed_at, 'rollout'::text, h.action,
               coalesce(h.actor || ' (' || h.changed_by || ')', h.changed_by),
               format('version %s: %s -> %s, kill switch %s, %s: %s', h.version, coalesce(h.from_stage, '-'),
                      h.to_stage, case when h.to_kill_switch then 'on' else 'off' end,
                      case when h.promotion_frozen then 'frozen' else 'not frozen' end, h.reason)
          from chat_v11.rollout_history as h
         where h.changed_at between v_from and v_to
    ),
    verdicts as (
        select t.at, g.gate_p0_ok, g.gate_p1_ok, g.rollout_decision, g.failing_checks
          from generate_series(v_from, v_to, v_step) as t (at)
          left join chat_v11.state_at(t.at) as s on true
         cross join lateral chat_v11.evaluate_gates(
             t.at, coalesce(s.stage, 'off'), coalesce(s.kill_switch, false), coalesce(s.promotion_frozen, false),
             null, s.stage_since
         ) as g
    ),
    changes as (
        select v.at, 'gates'::text, 'verdict'::text, 'gates'::text,
               format('gate_p0_ok=%s, gate_p1_ok=%s, rollout_decision=%s%s', v.gate_p0_ok, v.gate_p1_ok,
                      v.rollout_decision,
                      case when cardinality(v.failing_checks) > 0
                          then ' (' || array_to_string(v.failing_checks, ', ') || ')' else '' end)
          from (
              select v.*, lag(row(v.gate_p0_ok, v.gate_p1_ok, v.rollout_decision, v.failing_checks)::text)
                              over (order by v.at) as previous
                from verdicts as v
          ) as v
         where v.previous is distinct from row(v.gate_p0_ok, v.gate_p1_ok, v.rollout_decision, v.failing_checks)::text
    )
    select * from entries
    union all select * from rollout
    union all select * from changes
    order by 1, 2;
end
$$;

revoke all on function public.chat_get_v11_incident_timeline(bigint) from public;
grant execute on function public.chat_get_v11_incident_timeline(bigint) to chat_rollout_reader;
comment on function public.chat_get_v11_incident_timeline(bigint) is
'One UTC timeline of an incident: its entries (facts, decisions, actions, roles, snapshots), the rollout history '
'and each change of the gate verdict from 15 minutes before it was declared until closed or now. Read-only.';

-- >>> sql/0890_function_chat_close_v11_incident.sql
-- Closes a resolved incident, only with a complete postmortem.
create or replace function public.chat_close_v11_incident(p_incident_id bigint, p_reason text)
returns table (incident_id bigint, severity text, status text, closed_at timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_reason text := chat_v11.checked_reason(p_reason);
    v_incident chat_v11.incident;
    v_now timestamptz := clock_timestamp();
begin
    v_incident := chat_v11.incident_for_change(p_incident_id);
    if v_incident.status <> 'resolved' then
        raise exception using
            errcode = 'RO032',
            message = format('incident %s cannot be closed: it is %s, not resolved', p_incident_id, v_incident.status),
            detail = 'An incident is closed after it is resolved (its exit criteria held).',
            hint = format('Resolve it first: chat_set_v11_incident_status(%s, ''resolved'', reason).', p_incident_id);
    end if;
    if v_incident.postmortem is null or cardinality(chat_v11.postmortem_problems(v_incident.postmortem)) > 0 then
        raise exception using
            errcode = 'RO034',
            message = format('incident %s cannot be closed without its postmortem', p_incident_id),
            detail = 'The playbook requires a postmortem (section 10): timeline, root cause, what worked and what '
                || 'did not, action items with owners and deadlines, decision log.',
            hint = format('Store it with chat_put_v11_postmortem(%s, ''{...}'').', p_incident_id);
    end if;
    update chat_v11.incident as i set status = 'closed', closed_at = v_now where i.incident_id = p_incident_id;
    perform chat_v11.incident_log(p_incident_id, 'status', format('status resolved -> closed: %s', v_reason),
                                  jsonb_build_object('from', 'resolved', 'to', 'closed'));
    return query select v_incident.incident_id, v_incident.severity, 'closed'::text, v_now;
end
$$;

revoke all on function public.chat_close_v11_incident(bigint, text) from public;
grant execute on function public.chat_close_v11_incident(bigint, text) to chat_rollout_operator;
comment on function public.chat_close_v11_incident(bigint, text) is
'Close a resolved incident; refused (RO032) before it is resolved and (RO034) without a complete postmortem.';
