-- Walks the hash chain of the rollout history and reports the first broken version, or none.
create or replace function public.chat_verify_v11_history()
returns table (
    ok boolean,
    rows_checked bigint,
    first_broken_version bigint,
    problem text
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    with chain as (
        select h.version,
               h.prev_hash,
               h.hash,
               chat_v11.history_row_hash(h) as recomputed,
               lag(h.version) over (order by h.version) as prev_version,
               lag(h.hash) over (order by h.version) as prev_row_hash
          from chat_v11.rollout_history as h
    ),
    problems as (
        select c.version,
               case
                   when c.version <> coalesce(c.prev_version, 0) + 1
                       then format('version %s follows version %s: rows are missing',
                                   c.version, coalesce(c.prev_version, 0))
                   when c.prev_hash <> coalesce(c.prev_row_hash, repeat('0', 64))
                       then format('prev_hash of version %s does not match the hash of version %s',
                                   c.version, c.prev_version)
                   when c.hash <> c.recomputed
                       then format('version %s was changed after it was written: its hash does not match its content',
                                   c.version)
               end as problem
          from chain as c
    ),
    first_problem as (
        select p.version, p.problem from problems as p where p.problem is not null order by p.version limit 1
    ),
    tail as (
        select s.version as state_version, (select max(h.version) from chat_v11.rollout_history as h) as last_version
          from chat_v11.rollout_state as s
    )
    select
        f.version is null and t.state_version = t.last_version,
        (select count(*) from chat_v11.rollout_history),
        coalesce(f.version, case when t.state_version <> t.last_version then least(t.state_version, t.last_version) + 1 end),
        coalesce(
            f.problem,
            case when t.state_version <> t.last_version
                then format('the state is at version %s but the history ends at version %s',
                            t.state_version, t.last_version)
            end
        )
      from tail as t
      left join first_problem as f on true
$$;

revoke all on function public.chat_verify_v11_history() from public;
grant execute on function public.chat_verify_v11_history() to chat_rollout_reader;
comment on function public.chat_verify_v11_history() is
'Verifies the hash chain of the rollout history: ok, rows checked, the first broken version and what is '
'wrong with it (null when the chain is intact). Read-only.';
