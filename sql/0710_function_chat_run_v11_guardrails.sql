-- The time-based guardrails, safe to run every few seconds (pg_cron or any scheduler), idempotent: a P0 failure
-- engages the kill switch, stale P0 data freezes promotion. No DDL and no lock on the metric store beyond reads;
-- missing partitions ahead are only reported (action maintenance): public.chat_run_v11_maintenance() creates them.
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
    v_missing text;
begin
    perform chat_v11.begin_write('chat_run_v11_guardrails');
    -- GUARD: a failing P0 check kills (the same rule as at ingestion, for evidence the writer missed)
    v_version := chat_v11.auto_kill(v_now, 'guardrail run');
    if v_version is not null then
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
                return query select 'hold'::text, v_new.version, v_new.reason;
            end if;
        end if;
    end if;

    -- MAINTENANCE OVERDUE: the partitions of today and the next 3 UTC days (a catalog lookup, no lock taken)
    select string_agg(pg_catalog.to_char(d.day, 'YYYY-MM-DD'), ', ' order by d.day)
      into v_missing
      from pg_catalog.generate_series(0, 3) as g (n)
     cross join lateral (select (v_now at time zone 'UTC')::date + g.n as day) as d
     where pg_catalog.to_regclass('chat_v11.metric_sample_p' || pg_catalog.to_char(d.day, 'YYYYMMDD')) is null;
    if v_missing is not null then
        return query select 'maintenance'::text, null::bigint,
                            format('metric store maintenance is overdue: no daily partition for %s (samples of those '
                                   'days would land in metric_sample_default); schedule '
                                   'chat_run_v11_maintenance(), e.g. hourly with pg_cron', v_missing);
    end if;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
end
$$;

revoke all on function public.chat_run_v11_guardrails() from public;
grant execute on function public.chat_run_v11_guardrails() to chat_rollout_ingest;
comment on function public.chat_run_v11_guardrails() is
'Guardrails to run every few seconds (idempotent): a failing P0 check engages the kill switch (auto_kill), '
'stale or missing P0 data freezes promotion (hold, actor guardrail). Reports maintenance overdue when a daily '
'partition of today or the next 3 days is missing (public.chat_run_v11_maintenance() creates them; guardrails run '
'no DDL). Returns one row per action taken.';
