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
