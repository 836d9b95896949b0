-- The hash of one approval row: sha256(prev_hash || canonical row), hex; the canonical row is a JSON array in column
-- order with approved_at in UTC, so no setting changes it (as chat_v11.history_row_hash).
create or replace function chat_v11.approval_row_hash(p_row chat_v11.promotion_approval)
returns text
language sql
stable
as $$
    select pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
        p_row.prev_hash || pg_catalog.jsonb_build_array(
            p_row.approval_id,
            pg_catalog.to_char(p_row.approved_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            p_row.approved_by, p_row.actor, p_row.stage, p_row.from_stage, p_row.state_version,
            p_row.history_hash, p_row.reason
        )::text,
        'UTF8'
    )), 'hex')
$$;

revoke all on function chat_v11.approval_row_hash(chat_v11.promotion_approval) from public;
comment on function chat_v11.approval_row_hash(chat_v11.promotion_approval) is
'sha256(prev_hash || canonical row) of a promotion approval row, as 64 hex digits.';
