-- Trigger function: links a new history row to the chain (prev_hash, hash) and keeps versions contiguous.
create or replace function chat_v11.chain_history_row()
returns trigger
language plpgsql
set search_path = pg_catalog, chat_v11, pg_temp
-- the previous row by the primary key, always: the plan is cached for the session, and one made while the table
-- was nearly empty (a new install, a fresh clone) was a sequential scan + sort that grew with every row (0014)
set enable_seqscan = off
as $$
declare
    v_last_version bigint;
    v_last_hash text;
begin
    select h.version, h.hash
      into v_last_version, v_last_hash
      from chat_v11.rollout_history as h
     order by h.version desc
     limit 1;
    if new.version is distinct from coalesce(v_last_version, 0) + 1 then
        raise exception using
            errcode = 'RO012',
            message = format('history version %s does not follow version %s', new.version, v_last_version),
            detail = 'History versions are contiguous: each row follows the previous one by exactly 1.',
            hint = 'Change the state through public.chat_set_v11_rollout_state(); never insert history directly.';
    end if;
    new.prev_hash := coalesce(v_last_hash, repeat('0', 64));
    new.hash := chat_v11.history_row_hash(new);
    return new;
end
$$;

revoke all on function chat_v11.chain_history_row() from public;
comment on function chat_v11.chain_history_row() is
'Trigger: sets prev_hash and hash of a new rollout history row; refuses a gap in versions (RO012).';
