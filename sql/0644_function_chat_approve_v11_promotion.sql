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
