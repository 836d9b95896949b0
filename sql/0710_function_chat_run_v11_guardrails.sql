-- The time-based guardrails, safe to run every few seconds (pg_cron or any scheduler), idempotent:
-- a P0 failure engages the kill switch, stale P0 data freezes promotion, old samples are pruned.
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
    v_pruned bigint;
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

    -- RETENTION: samples older than the retention policy
    delete from chat_v11.metric_sample as s where s.bucket_start < v_now - v_retention;
    get diagnostics v_pruned = row_count;
    if v_pruned > 0 then
        return query select 'prune'::text, null::bigint,
                            format('%s samples older than %s removed', v_pruned, v_retention);
    end if;
    perform pg_catalog.set_config('lock_timeout', v_saved_lock_timeout, true);
end
$$;

revoke all on function public.chat_run_v11_guardrails() from public;
grant execute on function public.chat_run_v11_guardrails() to chat_rollout_ingest;
comment on function public.chat_run_v11_guardrails() is
'Guardrails to run every few seconds (idempotent): a failing P0 check engages the kill switch (auto_kill), '
'stale or missing P0 data freezes promotion (hold, actor guardrail), samples older than the retention policy '
'are removed. Returns one row per action taken.';
