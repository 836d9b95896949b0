-- Partition maintenance of the metric store: daily partitions created ahead, days past the retention policy dropped
-- whole. Each DDL waits at most 50 ms for its locks (else that step is skipped and reported); the locks it got last
-- until the caller's commit, so run it alone in its own transaction (autocommit, as pg_cron does), never inside one.
create or replace function public.chat_run_v11_maintenance()
returns table (action text, detail text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_today date := (pg_catalog.clock_timestamp() at time zone 'UTC')::date;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
    v_retention interval := coalesce(chat_v11.policy_interval('retention'), interval '30 days');
    v_xmax xid;
    v_holders text;
    v_day date;
    v_created text[] := '{}'::text[];
    v_busy text[] := '{}'::text[];
    v_dropped text[] := '{}'::text[];
    v_deleted bigint := 0::bigint;
    v_pulls_deleted bigint := 0::bigint;
begin
    perform chat_v11.begin_write('chat_run_v11_maintenance');
    -- one run at a time, under a row lock that only the project's functions can take (the table grants nothing):
    -- a busy lock is reported, never waited for
    perform from chat_v11.maintenance as m where m.job = 'metric_sample' for update skip locked;
    if not found then
        select m.xmax into v_xmax from chat_v11.maintenance as m where m.job = 'metric_sample';
        select pg_catalog.string_agg(pg_catalog.format('pid %s', l.pid), ', ' order by l.pid)
          into v_holders
          from pg_catalog.pg_locks as l
         where l.locktype = 'transactionid'
           and l.mode = 'ExclusiveLock'
           and l.granted
           and l.transactionid in (select h.x from chat_v11.xmax_holders(v_xmax) as h (x))
           and l.pid <> pg_catalog.pg_backend_pid();
        return query select 'skipped'::text,
                            pg_catalog.format('metric store maintenance skipped: another maintenance run holds the '
                                              || 'maintenance lock (%s); the next run retries',
                                              coalesce(v_holders, 'a transaction that has just ended'));
        return;
    end if;

    perform pg_catalog.set_config('lock_timeout', '50ms', true);
    -- AHEAD: at least 3 days ahead at all times; when a day in that span is missing, up to a week ahead at once (DDL
    -- every few days, not at every midnight). One day per subtransaction: a busy day is skipped, the others are made.
    if exists (
        select
          from pg_catalog.generate_series(-1, 3) as g (d)
         where pg_catalog.to_regclass('chat_v11.metric_sample_p' || pg_catalog.to_char(v_today + g.d, 'YYYYMMDD'))
               is null
    ) then
        for v_day in select v_today + g.d from pg_catalog.generate_series(-1, 7) as g (d) order by g.d loop
            if pg_catalog.to_regclass('chat_v11.metric_sample_p' || pg_catalog.to_char(v_day, 'YYYYMMDD')) is null then
                begin
                    perform chat_v11.ensure_sample_partitions(v_day, v_day);
                    v_created := v_created || pg_catalog.to_char(v_day, 'YYYY-MM-DD');
                exception when lock_not_available then
                    v_busy := v_busy || pg_catalog.format('creating the partition of %s',
                                                          pg_catalog.to_char(v_day, 'YYYY-MM-DD'));
                end;
            end if;
        end loop;
    end if;

    -- RETENTION: whole days dropped (ACCESS EXCLUSIVE on the parent for a moment), the straddling day trimmed
    begin
        select p.dropped, p.deleted into v_dropped, v_deleted from chat_v11.prune_samples(v_now - v_retention) as p;
    exception when lock_not_available then
        v_busy := v_busy || pg_catalog.format('removing the samples older than %s', v_retention);
    end;
    -- the pull provenance (0010) follows the samples it explains: records past the same retention go, one index range
    begin
        delete from chat_v11.metric_pull as mp where mp.bucket_start < v_now - v_retention;
        get diagnostics v_pulls_deleted = row_count;
    exception when lock_not_available then
        v_busy := v_busy || pg_catalog.format('removing the pull records older than %s', v_retention);
    end;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);

    if pg_catalog.cardinality(v_created) > 0 then
        return query select 'partition'::text,
                            pg_catalog.format('%s daily partitions of the metric store created ahead (%s .. %s)',
                                              pg_catalog.cardinality(v_created), v_created[1],
                                              v_created[pg_catalog.cardinality(v_created)]);
    end if;
    if v_deleted > 0 or pg_catalog.cardinality(v_dropped) > 0 then
        return query select 'prune'::text,
                            pg_catalog.format('samples older than %s removed: %s daily partitions dropped whole%s, '
                                              || '%s rows deleted one by one', v_retention,
                                              pg_catalog.cardinality(v_dropped),
                                              case when pg_catalog.cardinality(v_dropped) > 0
                                                   then pg_catalog.format(' (%s .. %s)', v_dropped[1],
                                                        v_dropped[pg_catalog.cardinality(v_dropped)])
                                                   else '' end,
                                              v_deleted);
    end if;
    if v_pulls_deleted > 0 then
        return query select 'prune'::text,
                            pg_catalog.format('pull records older than %s removed: %s rows', v_retention,
                                              v_pulls_deleted);
    end if;
    if pg_catalog.cardinality(v_busy) > 0 then
        return query select 'skipped'::text,
                            pg_catalog.format('metric store maintenance step skipped, a lock was busy for 50 ms: %s; '
                                              || 'the next run retries', pg_catalog.array_to_string(v_busy, ', '));
    end if;
end
$$;

revoke all on function public.chat_run_v11_maintenance() from public;
grant execute on function public.chat_run_v11_maintenance() to chat_rollout_ingest;
comment on function public.chat_run_v11_maintenance() is
'Ingest: partition maintenance of the metric store, to schedule on its own (e.g. hourly with pg_cron, in '
'autocommit): daily partitions kept 3 to 7 days ahead, days past the retention policy dropped whole. One run at a '
'time (a busy run says skipped); each DDL waits at most 50 ms for a lock, else skipped and retried next run. Pull '
'records (chat-rollout pull) past the same retention are deleted. Its '
'locks last until the caller commits: never call it inside a longer transaction. One row per action: partition, '
'prune, skipped.';
