-- Verifies every row of the rollout history (a cost that grows with it: operators and admins only), with the same
-- findings as chat_verify_v11_history() and an optional anchor (version, hash) kept outside the database.
create or replace function public.chat_verify_v11_history_full(
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
    select * from chat_v11.verify_history(true, p_anchor_version, p_anchor_hash)
$$;

revoke all on function public.chat_verify_v11_history_full(bigint, text) from public;
grant execute on function public.chat_verify_v11_history_full(bigint, text) to chat_rollout_operator;
grant execute on function public.chat_verify_v11_history_full(bigint, text) to chat_rollout_admin;
comment on function public.chat_verify_v11_history_full(bigint, text) is
'Verifies every row of the rollout history (chat_verify_v11_history walks from the newest checkpoint): the same '
'findings and anchor check. Read-only; operators and admins (a full walk costs time proportional to the history).';
