-- Describes the backends that hold (or queue ahead of us for) the rollout state row or table.
create or replace function chat_v11.state_lockers()
returns text
language plpgsql
volatile
as $$
declare
    v_xmax xid;
    v_lockers text;
begin
    -- the row's locker, if the table itself can be read (an ACCESS EXCLUSIVE holder forbids even that)
    perform pg_catalog.set_config('lock_timeout', '50ms', true);
    begin
        select s.xmax into v_xmax from chat_v11.rollout_state as s;
    exception when lock_not_available then
        v_xmax := null;
    end;

    with lockers as (
        select l.pid, l.granted, l.mode, l.locktype
          from pg_catalog.pg_locks as l
         where l.locktype = 'transactionid'
           and l.mode = 'ExclusiveLock'
           and l.granted
           and l.transactionid in (select h.x from chat_v11.xmax_holders(v_xmax) as h (x))
           and l.pid <> pg_catalog.pg_backend_pid()
        union
        select l.pid, l.granted, l.mode, l.locktype
          from pg_catalog.pg_locks as l
         where l.locktype = 'relation'
           and l.relation = 'chat_v11.rollout_state'::regclass
           and l.mode in ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
           and l.pid <> pg_catalog.pg_backend_pid()
    ),
    queue as (
        -- what a queued locker waits behind (a long reader ahead of a DDL): the real cause
        select b.pid, true as granted, 'ahead of pid ' || k.pid as mode, 'blocker' as locktype
          from lockers as k
         cross join lateral unnest(pg_catalog.pg_blocking_pids(k.pid)) as b (pid)
         where not k.granted and b.pid <> pg_catalog.pg_backend_pid()
    ),
    everyone as (
        select * from lockers
        union
        select * from queue
    )
    select pg_catalog.string_agg(
        format(
            'pid %s (%s%s, user %s, application %s, %s since %s UTC, query: %s)',
            k.pid,
            case when k.locktype = 'blocker' then 'holds a lock ' when k.granted then 'holds ' else 'waits for ' end,
            case
                when k.locktype = 'transactionid' then 'the state row'
                when k.locktype = 'blocker' then k.mode
                else k.mode || ' on the state table'
            end,
            coalesce(a.usename::text, '?'),
            coalesce(nullif(a.application_name, ''), '?'),
            coalesce(a.state, '?'),
            coalesce(pg_catalog.to_char(coalesce(a.xact_start, a.state_change) at time zone 'UTC',
                                        'YYYY-MM-DD HH24:MI:SS'), '?'),
            coalesce(pg_catalog.left(pg_catalog.regexp_replace(a.query, '[[:space:]]+', ' ', 'g'), 120), '?')
        ),
        '; ' order by k.pid
    )
      into v_lockers
      from everyone as k
      left join pg_catalog.pg_stat_activity as a on a.pid = k.pid;
    return v_lockers;
end
$$;

revoke all on function chat_v11.state_lockers() from public;
comment on function chat_v11.state_lockers() is
'Human-readable list of the backends holding or queuing for the rollout state lock (pid, user, query).';
