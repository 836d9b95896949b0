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
