-- Describes the backends that hold, or queue ahead of us for, a lock a state call needs: the state row, or any
-- table, partition or index of the project (DDL, maintenance). Names pid, role, application and lock; never the
-- query text (pg_stat_activity hides another role's query from the operator, and so does this).
create or replace function chat_v11.state_lockers()
returns text
language plpgsql
volatile
as $$
declare
    v_xmax xid;
    v_stage_xmax xid[];
    v_lockers text;
begin
    -- the row's locker, if the table itself can be read (an ACCESS EXCLUSIVE holder forbids even that), and the
    -- lockers of the stage rows (a settings change holds one; a rollback or promotion needs it FOR KEY SHARE)
    -- (NOWAIT: the call already spent its budget; a locked table is described from pg_locks below)
    begin
        lock table chat_v11.rollout_state in access share mode nowait;
        select s.xmax into v_xmax from chat_v11.rollout_state as s;
    exception when lock_not_available then
        v_xmax := null;
    end;
    begin
        lock table chat_v11.stage in access share mode nowait;
        select pg_catalog.array_agg(t.xmax) into v_stage_xmax
          from chat_v11.stage as t
         where t.xmax::text <> '0';
    exception when lock_not_available then
        v_stage_xmax := null;
    end;

    with project as (
        -- every relation of the project; the ones a state call writes conflict with more modes
        select c.oid, 'chat_v11.' || c.relname as name,
               c.oid in ('chat_v11.rollout_state'::regclass, 'chat_v11.rollout_history'::regclass) as written
          from pg_catalog.pg_class as c
         where c.relnamespace = 'chat_v11'::regnamespace
    ),
    lockers as (
        select l.pid, l.granted, l.mode, 'the state row' as what, null::oid as relid
          from pg_catalog.pg_locks as l
         where l.locktype = 'transactionid'
           and l.mode = 'ExclusiveLock'
           and l.granted
           and l.transactionid in (select h.x from chat_v11.xmax_holders(v_xmax) as h (x))
           and l.pid <> pg_catalog.pg_backend_pid()
        union
        -- the state calls' queue (chat_v11.lock_state: advisory lock (1667785076, 11)): its holder has the row or
        -- is about to take it
        select l.pid, l.granted, l.mode, 'the state row' as what, null::oid as relid
          from pg_catalog.pg_locks as l
         where l.locktype = 'advisory'
           and l.database = (select d.oid from pg_catalog.pg_database as d where d.datname = current_database())
           and l.classid = 1667785076::oid
           and l.objid = 11::oid
           and l.objsubid = 2
           and l.mode = 'ExclusiveLock'
           and l.granted
           and l.pid <> pg_catalog.pg_backend_pid()
        union
        select l.pid, l.granted, l.mode, 'a row of chat_v11.stage' as what, null::oid as relid
          from pg_catalog.pg_locks as l
         where l.locktype = 'transactionid'
           and l.mode = 'ExclusiveLock'
           and l.granted
           and l.transactionid in (select h.x from unnest(v_stage_xmax) as x (x)
                                   cross join lateral chat_v11.xmax_holders(x.x) as h (x))
           and l.pid <> pg_catalog.pg_backend_pid()
        union
        select l.pid, l.granted, l.mode, p.name, l.relation
          from pg_catalog.pg_locks as l
          join project as p on p.oid = l.relation
         where l.locktype = 'relation'
           and l.database = (select d.oid from pg_catalog.pg_database as d where d.datname = current_database())
           and l.pid <> pg_catalog.pg_backend_pid()
           and (l.mode in ('ExclusiveLock', 'AccessExclusiveLock')
                or (p.written and l.mode in ('ShareLock', 'ShareRowExclusiveLock')))
    ),
    queue as (
        -- what a queued locker waits behind (a long reader ahead of a DDL): the real cause
        select b.pid, true as granted,
               coalesce((select pg_catalog.string_agg(distinct h.mode, '+')
                           from pg_catalog.pg_locks as h
                          where h.pid = b.pid and h.granted and h.locktype = 'relation'
                            and h.relation = k.relid), 'a lock') as mode,
               k.what || ' ahead of pid ' || k.pid as what, k.relid
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
            'pid %s (%s %s, role %s, application %s%s)',
            k.pid,
            case when k.granted then 'holds' else 'waits for' end,
            case when k.relid is null and k.mode = 'ExclusiveLock' then k.what else k.mode || ' on ' || k.what end,
            coalesce(a.usename::text, '?'),
            coalesce(nullif(a.application_name, ''), '?'),
            -- its state only to a caller who may see it in pg_stat_activity (same role, pg_read_all_stats)
            case when a.usesysid is not null
                      and (pg_catalog.pg_has_role(session_user, a.usesysid, 'MEMBER')
                           or pg_catalog.pg_has_role(session_user, 'pg_read_all_stats', 'MEMBER'))
                 then format(', %s since %s UTC', coalesce(a.state, '?'),
                             coalesce(pg_catalog.to_char(coalesce(a.xact_start, a.state_change) at time zone 'UTC',
                                                         'YYYY-MM-DD HH24:MI:SS'), '?'))
                 else '' end
        ),
        '; ' order by k.pid, k.what
    )
      into v_lockers
      from everyone as k
      left join pg_catalog.pg_stat_activity as a on a.pid = k.pid;
    return v_lockers;
end
$$;

revoke all on function chat_v11.state_lockers() from public;
comment on function chat_v11.state_lockers() is
'The backends holding or queuing for a lock a state call needs (the state row, any project table, partition or '
'index): pid, role, application and lock, never the query text.';
