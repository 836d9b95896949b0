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
