-- Trigger function: links a new approval row to the chain (prev_hash, hash) and keeps ids contiguous. Writers
-- serialize on the table (chat_approve_v11_promotion locks it), so two approvals never share a predecessor.
create or replace function chat_v11.chain_approval_row()
returns trigger
language plpgsql
set search_path = pg_catalog, chat_v11, pg_temp
-- the previous row by the primary key, always: the plan is cached for the session, and one made while the table
-- was nearly empty (a new install, a fresh clone) was a sequential scan + sort that grew with every row (0014)
set enable_seqscan = off
as $$
declare
    v_last_id bigint;
    v_last_hash text;
begin
    select a.approval_id, a.hash
      into v_last_id, v_last_hash
      from chat_v11.promotion_approval as a
     order by a.approval_id desc
     limit 1;
    if new.approval_id is distinct from coalesce(v_last_id, 0) + 1 then
        raise exception using
            errcode = 'RO012',
            message = format('approval %s does not follow approval %s', new.approval_id, v_last_id),
            detail = 'Approval ids are contiguous: each row follows the previous one by exactly 1.',
            hint = 'Approve through public.chat_approve_v11_promotion(); never insert approvals directly.';
    end if;
    new.prev_hash := coalesce(v_last_hash, pg_catalog.repeat('0', 64));
    new.hash := chat_v11.approval_row_hash(new);
    return new;
end
$$;

revoke all on function chat_v11.chain_approval_row() from public;
comment on function chat_v11.chain_approval_row() is
'Trigger: sets prev_hash and hash of a new promotion approval row; refuses a gap in ids (RO012).';
