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
