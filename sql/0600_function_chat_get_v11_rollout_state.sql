-- The rollout state now: stage, traffic, kill switch, freeze, who changed it, when, version.
-- The hot read path (docs/design.md, "The hot read path"): the one API function that is SECURITY INVOKER, so the
-- planner inlines it into the caller's query (a scan of the state table, no function call, no SET). Its body
-- names nothing but schema-qualified columns of chat_v11_read.rollout_state: no operator, no function, no cast,
-- no unqualified name, so the caller's search_path (pg_temp or a hostile schema first) cannot change its meaning.
-- The view runs with its owner's rights: readers get SELECT on it and nothing on chat_v11.
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
security invoker
as $$
    select chat_v11_read.rollout_state.stage,
           chat_v11_read.rollout_state.traffic_percent,
           chat_v11_read.rollout_state.kill_switch,
           chat_v11_read.rollout_state.promotion_frozen,
           chat_v11_read.rollout_state.reason,
           chat_v11_read.rollout_state.changed_by,
           chat_v11_read.rollout_state.actor,
           chat_v11_read.rollout_state.changed_at,
           chat_v11_read.rollout_state.version
      from chat_v11_read.rollout_state
$$;

revoke all on function public.chat_get_v11_rollout_state() from public;
grant execute on function public.chat_get_v11_rollout_state() to chat_rollout_reader;
comment on function public.chat_get_v11_rollout_state() is
'Source of truth: the rollout state now (stage, traffic %, kill switch, promotion freeze, reason, '
'changed_by = session_user, claimed actor, changed_at, version). Read-only. SECURITY INVOKER on purpose (the '
'hot read path): inlined into the caller''s query over the read-only view chat_v11_read.rollout_state, which '
'only chat_rollout_reader may read; its body names only that view''s columns, so no search_path changes it.';
