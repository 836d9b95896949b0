-- The time-based guardrails, safe to run every few seconds (pg_cron or any scheduler), idempotent:
-- a P0 failure engages the kill switch, stale P0 data freezes promotion, daily partitions of the metric store are
-- created ahead and old ones dropped whole (retention).
create or replace function public.chat_run_v11_guardrails()
returns table (action text, version bigint, detail text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_now timestamptz := pg_catalog.clock_timestamp();
    v_version bigint;
    v_state record;
    v_stale text[];
    v_gates record;
    v_new record;
    v_saved_lock_timeout text := pg_catalog.current_setting('lock_timeout');
    v_retention interval := coalesce(chat_v11.policy_interval('retention'), interval '30 days');
    v_pruned record;
    v_created integer;
    v_acted bigint;
begin
    perform chat_v11.begin_write('chat_run_v11_guardrails');
    -- GUARD: a failing P0 check kills (the same rule as at ingestion, for evidence the writer missed)
    v_version := chat_v11.auto_kill(v_now, 'guardrail run');
    if v_version is not null then
        v_acted := v_version;
        return query select 'auto_kill'::text, v_version, h.reason
                       from chat_v11.rollout_history as h where h.version = v_version;
    end if;

    -- GUARD: stale or missing P0 data freezes promotion while v1.1 traffic flows
    select s.stage, s.kill_switch, s.promotion_frozen into v_state from chat_v11.rollout_state as s;
    if v_state.stage <> 'off' and not v_state.kill_switch and not v_state.promotion_frozen then
        select array_agg(format('%s: %s', c.metric, c.explanation) order by c.metric)
          into v_stale
          from chat_v11.evaluate_checks(v_now, v_state.stage, false) as c
         where c.severity = 'P0' and c.status = 'inconclusive';
        if v_stale is not null then
            v_state := chat_v11.lock_state();
            if v_state.stage <> 'off' and not v_state.kill_switch and not v_state.promotion_frozen then
                select g.* into v_gates from chat_v11.current_gates(v_now) as g;
                v_new := chat_v11.apply_transition(
                    'hold', v_state.stage, false, true,
                    pg_catalog.left('guardrail: P0 data is stale or missing, promotion frozen: '
                                    || array_to_string(v_stale, '; '), 500),
                    null, v_gates.snapshot, 'guardrail'
                );
                v_acted := v_new.version;
                return query select 'hold'::text, v_new.version, v_new.reason;
            end if;
        end if;
    end if;

    -- PARTITIONS and RETENTION: only in a run that changed no state (no state row lock is held, so no lock cycle
    -- with a kill or an ingestion), one run at a time, each DDL waiting at most 50 ms for its locks: a busy moment
    -- skips the work (all of it, atomically) until the next run, it never makes readers or the kill switch queue.
    if v_acted is null and pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('chat_v11.metric_sample maintenance')) then
        begin
            perform pg_catalog.set_config('lock_timeout', '50ms', true);
            -- at least 3 days ahead at all times; when a day in that span is missing, up to a week ahead at once
            -- (so DDL runs every few days, not at every midnight)
            v_created := 0;
            if exists (
                select
                  from pg_catalog.generate_series(-1, 3) as g (d)
                 where pg_catalog.to_regclass(
                           'chat_v11.metric_sample_p'
                           || pg_catalog.to_char((v_now at time zone 'UTC')::date + g.d, 'YYYYMMDD')
                       ) is null
            ) then
                v_created := chat_v11.ensure_sample_partitions((v_now at time zone 'UTC')::date - 1,
                                                               (v_now at time zone 'UTC')::date + 7);
            end if;
            select p.dropped, p.deleted into v_pruned from chat_v11.prune_samples(v_now - v_retention) as p;
            if v_created > 0 then
                return query select 'partition'::text, null::bigint,
                                    format('%s daily partitions of the metric store created ahead', v_created);
            end if;
            if v_pruned.deleted > 0 or pg_catalog.cardinality(v_pruned.dropped) > 0 then
                return query select 'prune'::text, null::bigint,
                                    format('samples older than %s removed: %s daily partitions dropped whole%s, '
                                           || '%s rows deleted one by one', v_retention,
                                           pg_catalog.cardinality(v_pruned.dropped),
                                           case when pg_catalog.cardinality(v_pruned.dropped) > 0
                                                then format(' (%s .. %s)', v_pruned.dropped[1],
                                                            v_pruned.dropped[pg_catalog.cardinality(v_pruned.dropped)])
                                                else '' end,
                                           v_pruned.deleted);
            end if;
        exception when lock_not_available then
            return query select 'partition'::text, null::bigint,
                                'metric store maintenance skipped: a lock was busy for 50 ms; the next run retries'::text;
        end;
    end if;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
end
$$;

revoke all on function public.chat_run_v11_guardrails() from public;
grant execute on function public.chat_run_v11_guardrails() to chat_rollout_ingest;
comment on function public.chat_run_v11_guardrails() is
'Guardrails to run every few seconds (idempotent): a failing P0 check engages the kill switch (auto_kill), '
'stale or missing P0 data freezes promotion (hold, actor guardrail); in a run that changed no state, daily '
'partitions of the metric store are kept 3 to 7 days ahead and samples older than the retention policy removed '
'(whole partitions dropped). Returns one row per action taken.';
