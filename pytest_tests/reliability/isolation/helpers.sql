-- Test-only helpers for the isolation specs: the driver (test_isolation.py) installs them as the superuser
-- into the fresh clone of the migrated template before pg_isolation_regress runs. They print only stable
-- values: actions, stages, the kill switch, version deltas from a mark taken by each spec's setup, counts,
-- and SQLSTATE-bearing error lines. Timestamps, hashes and reasons with timestamps never reach the output.

-- the mark: the state version and the last incident when the permutation's setup ended
create table public.iso_mark (v bigint not null, i bigint not null);

create function public.iso_mark_now() returns void
language sql as $$
    delete from public.iso_mark;
    insert into public.iso_mark
    select (select s.version from chat_v11.rollout_state as s),
           coalesce((select max(i.incident_id) from chat_v11.incident as i), 0);
$$;

create function public.iso_v() returns bigint
language sql stable as $$ select m.v from public.iso_mark as m $$;

-- put the rollout at a stage (the same internal path as arrange_state of pytest_tests/support/calls.py)
create function public.iso_arrange(p_stage text, p_kill boolean, p_frozen boolean) returns void
language sql as $$
    select chat_v11.lock_state();
    select chat_v11.apply_transition('promote', p_stage, p_kill, p_frozen, 'isolation arrangement',
                                     null, null, 'test');
$$;

-- setup hygiene between permutations: incidents of an earlier permutation would change auto_kill's path (one
-- incident at a time: a resolved one is reopened, so they are closed here, with a stand-in postmortem)
create function public.iso_resolve_incidents() returns void
language sql as $$
    update chat_v11.incident
       set status = 'closed', resolved_at = coalesce(resolved_at, clock_timestamp()), closed_at = clock_timestamp(),
           postmortem = coalesce(postmortem, '{"isolation": "setup hygiene"}'::jsonb)
     where status <> 'closed';
$$;

-- 40 minutes of healthy 10-second buckets for every metric and both cohorts, ending at the current bucket
create function public.iso_healthy() returns integer
language sql as $$
    select public.chat_put_v11_metric_samples((
        select jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                   'metric', m.metric, 'cohort', c.cohort, 'bucket_start', b.t,
                   'numerator', case when m.kind <> 'latency_ms' then 0 end,
                   'denominator', case when m.kind = 'rate' then 20000 end,
                   'value', case when m.kind = 'latency_ms' then 800 end)))
          from chat_v11.metric as m
         cross join (values ('canary'), ('control')) as c (cohort)
         cross join generate_series(date_bin('10 seconds', now(), 'epoch') - interval '40 minutes',
                                    date_bin('10 seconds', now(), 'epoch'), interval '10 seconds') as b (t)
    ));
$$;

-- one P0 event (an ACK without receipt) in the current bucket of a cohort; the warning of an automatic
-- kill carries a timestamp, so it is not sent to the client
create function public.iso_put_p0_event(p_cohort text default 'canary') returns text
language plpgsql
set client_min_messages = error
as $$
begin
    return 'written ' || public.chat_put_v11_metric_samples(jsonb_build_array(jsonb_build_object(
        'metric', 'ack_without_receipt_10s_rate', 'cohort', p_cohort,
        'bucket_start', date_bin('10 seconds', now(), 'epoch'), 'numerator', 1, 'denominator', 200)));
exception when others then
    return format('%s: %s', sqlstate, sqlerrm);
end
$$;

-- a state call: the action it wrote (or SQLSTATE: message), the new state and the version delta
create function public.iso_call(p_stage text, p_kill boolean, p_reason text)
returns table (result text, stage text, kill_switch boolean, promotion_frozen boolean, dv bigint, note text)
language plpgsql as $$
declare
    r record;
begin
    select * into r from public.chat_set_v11_rollout_state(p_stage, p_kill, p_reason);
    return query
        select h.action, r.stage, r.kill_switch, r.promotion_frozen, r.version - public.iso_v(), r.note
          from chat_v11.rollout_history as h where h.version = r.version;
exception when others then
    return query select format('%s: %s', sqlstate, sqlerrm), null::text, null::boolean, null::boolean,
                        null::bigint, null::text;
end
$$;

-- a guardrail run: the actions it took with their version delta (details carry timestamps)
create function public.iso_guardrails() returns table (result text, dv bigint)
language plpgsql
set client_min_messages = error
as $$
begin
    return query select g.action, g.version - public.iso_v() from public.chat_run_v11_guardrails() as g;
    if not found then
        return query select 'no action'::text, null::bigint;
    end if;
exception when others then
    return query select format('%s: %s', sqlstate, sqlerrm), null::bigint;
end
$$;

-- the history rows written since the mark (reasons of automatic rows carry timestamps: show the actor)
create function public.iso_history()
returns table (dv bigint, action text, from_stage text, to_stage text, from_kill boolean, to_kill boolean,
               frozen boolean, who text)
language sql stable as $$
    select h.version - public.iso_v(), h.action, h.from_stage, h.to_stage, h.from_kill_switch,
           h.to_kill_switch, h.promotion_frozen, coalesce(h.actor, h.reason)
      from chat_v11.rollout_history as h
     where h.version > public.iso_v()
     order by h.version;
$$;

-- the invariants: state version = newest history version, versions contiguous, chain verified, incidents
create function public.iso_check()
returns table (state_dv bigint, contiguous boolean, chain_ok boolean, incidents_opened bigint,
               active_incidents bigint)
language sql stable as $$
    select (select s.version from chat_v11.rollout_state as s) - public.iso_v(),
           (select count(*) = max(h.version) and min(h.version) = 1
                   and max(h.version) = (select s.version from chat_v11.rollout_state as s)
              from chat_v11.rollout_history as h),
           (select v.ok from public.chat_verify_v11_history() as v),
           (select count(*) from chat_v11.incident as i where i.incident_id > (select m.i from public.iso_mark as m)),
           (select count(*) from chat_v11.incident as i where i.status in ('open', 'mitigated'));
$$;

-- a progression run: what it did, the stage after it and the version delta (details and blockers carry versions
-- and timestamps); the NOTICE of a promotion is not sent to the client
create function public.iso_progression() returns table (result text, stage text, dv bigint)
language plpgsql
set client_min_messages = error
as $$
begin
    return query select p.action, p.stage, p.version - public.iso_v() from public.chat_run_v11_progression() as p;
exception when others then
    return query select format('%s: %s', sqlstate, sqlerrm), null::text, null::bigint;
end
$$;

-- an approval by another login than the promoter (the spec's sessions are the superuser): the approval of
-- chat_test_operator, recorded or not, and the state version delta it saw (security definer: the mark table is the
-- superuser's; session_user, the approver, stays the login)
create function public.iso_approve(p_stage text) returns table (result text, stage text, dv bigint)
language plpgsql
security definer
set client_min_messages = error
as $$
begin
    return query select case when a.recorded then 'approved' else 'already approved' end, a.stage,
                        a.state_version - public.iso_v()
                   from public.chat_approve_v11_promotion(p_stage, 'isolation approval') as a;
exception when others then
    return query select format('%s: %s', sqlstate, sqlerrm), null::text, null::bigint;
end
$$;

-- the approvals that count now, with the version delta each saw
create function public.iso_approvals() returns table (stage text, approved_by text, dv bigint)
language sql stable as $$
    select a.stage, a.approved_by, a.state_version - public.iso_v()
      from public.chat_get_v11_approvals() as a
     order by a.approval_id;
$$;
