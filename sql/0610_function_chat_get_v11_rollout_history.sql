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
