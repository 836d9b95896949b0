-- Verifies the rollout history from the newest checkpoint (flat cost; any reader, on a standby too): one row per
-- finding, first bad version first, or one ok row; with an anchor (version, hash) kept outside the database.
create or replace function public.chat_verify_v11_history(
    p_anchor_version bigint default null,
    p_anchor_hash text default null
)
returns table (
    ok boolean,
    rows_checked bigint,
    first_broken_version bigint,
    kind text,
    problem text,
    checked_from bigint,
    head_version bigint,
    head_hash text
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select * from chat_v11.verify_history(false, p_anchor_version, p_anchor_hash)
$$;

revoke all on function public.chat_verify_v11_history(bigint, text) from public;
grant execute on function public.chat_verify_v11_history(bigint, text) to chat_rollout_reader;
comment on function public.chat_verify_v11_history(bigint, text) is
'Verifies the rollout history from the newest checkpoint: one row per finding (first bad version, kind, problem; the '
'first version first) or one ok row, with the rows checked, where the walk started and the head (version, hash) to '
'keep as an anchor; p_anchor_version/p_anchor_hash check a head seen earlier. Read-only; docs/design.md "Trust".';
