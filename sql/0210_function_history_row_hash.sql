-- The hash of one history row: sha256(prev_hash || canonical row), hex.
-- The canonical row is a JSON array in column order with changed_at in UTC, so no setting changes it.
create or replace function chat_v11.history_row_hash(p_row chat_v11.rollout_history)
returns text
language sql
stable
as $$
    select pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
        p_row.prev_hash || pg_catalog.jsonb_build_array(
            p_row.version,
            pg_catalog.to_char(p_row.changed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            p_row.changed_by, p_row.actor, p_row.action,
            p_row.from_stage, p_row.to_stage, p_row.from_kill_switch, p_row.to_kill_switch,
            p_row.promotion_frozen, p_row.reason, p_row.note, p_row.gate_snapshot, p_row.incident_id
        )::text,
        'UTF8'
    )), 'hex')
$$;

revoke all on function chat_v11.history_row_hash(chat_v11.rollout_history) from public;
comment on function chat_v11.history_row_hash(chat_v11.rollout_history) is
'sha256(prev_hash || canonical row) of a rollout history row, as 64 hex digits.';
