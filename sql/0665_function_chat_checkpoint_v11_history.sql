-- Verifies the history and, when nothing is found, records a checkpoint at the head: later verifies start there,
-- so their cost stays flat. p_accept_state also acknowledges a state row rewritten by a restore you performed.
create or replace function public.chat_checkpoint_v11_history(
    p_full boolean default false,
    p_accept_state boolean default false
)
returns chat_v11.history_checkpoint
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_finding record;
    v_found boolean := false;
    v_first_version bigint;
    v_first_kind text;
    v_first_problem text;
    v_head_version bigint;
    v_head_hash text;
    v_from bigint;
    v_state_xmin xid;
    v_checkpoint chat_v11.history_checkpoint;
begin
    if p_full is null or p_accept_state is null then
        raise exception using
            errcode = 'RO011',
            message = 'p_full and p_accept_state must be true or false, not null',
            detail = 'chat_checkpoint_v11_history(p_full, p_accept_state) verifies, then records a checkpoint.',
            hint = 'Call chat_checkpoint_v11_history() or chat_checkpoint_v11_history(true).';
    end if;
    for v_finding in select * from chat_v11.verify_history(p_full, null, null) loop
        v_head_version := v_finding.head_version;
        v_head_hash := v_finding.head_hash;
        v_from := v_finding.checked_from;
        if not v_found and not v_finding.ok and not (p_accept_state and v_finding.kind = 'state_xmin') then
            v_found := true;
            v_first_version := v_finding.first_broken_version;
            v_first_kind := v_finding.kind;
            v_first_problem := v_finding.problem;
        end if;
    end loop;
    if v_found or v_head_version is null then
        raise exception using
            errcode = 'RO039',
            message = 'no checkpoint written: the rollout history does not verify',
            detail = case when v_found
                          then format('First finding: version %s, %s: %s',
                                      coalesce(v_first_version::text, '-'), v_first_kind, v_first_problem)
                          else 'The history has no rows.' end,
            hint = 'List every finding with select * from chat_verify_v11_history(true); compare the head with an '
                   'anchor kept outside the database and restore from a backup if it differs.';
    end if;
    -- the state row as it is now, when it still belongs to the verified head
    select s.xmin into v_state_xmin from chat_v11.rollout_state as s where s.version = v_head_version;
    insert into chat_v11.history_checkpoint (version, hash, state_xmin, walked_from)
    values (v_head_version, v_head_hash, v_state_xmin, v_from)
    returning * into v_checkpoint;
    return v_checkpoint;
end
$$;

revoke all on function public.chat_checkpoint_v11_history(boolean, boolean) from public;
grant execute on function public.chat_checkpoint_v11_history(boolean, boolean) to chat_rollout_operator;
grant execute on function public.chat_checkpoint_v11_history(boolean, boolean) to chat_rollout_admin;
comment on function public.chat_checkpoint_v11_history(boolean, boolean) is
'Verifies the history (from the newest checkpoint, or every row with p_full) and records a checkpoint at the head when '
'nothing is found (RO039 otherwise); p_accept_state acknowledges a state row rewritten by a restore. Operator, admin.';
