-- Keeps what the puller read from Alertmanager (SPEC 7, "Active alerts"), replacing the one record atomically.
-- p_alerts: the active P0/P1 alerts as read, a JSON array of {alertname, severity ("P0" or "P1"), startsAt,
-- fingerprint, silenced}; p_error non-null: Alertmanager could not be read (p_alerts null or empty), the record says
-- so and keeps the alerts of the last successful read, so an outage never hides an alert already known.
create or replace function public.chat_put_v11_active_alerts(p_alerts jsonb, p_error text default null)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
declare
    v_bad record;
    v_count integer;
begin
    perform chat_v11.begin_write('chat_put_v11_active_alerts');
    if p_error is not null then
        if chat_v11.is_blank(p_error) or pg_catalog.length(p_error) > 2000
           or coalesce(p_alerts, '[]'::jsonb) <> '[]'::jsonb then
            raise exception using
                errcode = 'RO022',
                message = format('an unreachable Alertmanager is said with an error of 1-2000 characters and no '
                                 'alerts, not %s with %s', chat_v11.shown(p_error),
                                 chat_v11.shown(p_alerts::text)),
                detail = 'Nothing was written.',
                hint = 'Call chat_put_v11_active_alerts(null, ''connection refused'') when the read failed, '
                    || 'chat_put_v11_active_alerts(''[...]'') when it succeeded.';
        end if;
    else
        if p_alerts is null or pg_catalog.jsonb_typeof(p_alerts) is distinct from 'array'
           or pg_catalog.jsonb_array_length(p_alerts) > 200 then
            raise exception using
                errcode = 'RO020',
                message = 'p_alerts must be a JSON array of at most 200 alerts',
                detail = format('Got %s.', case
                    when pg_catalog.jsonb_typeof(p_alerts) = 'array'
                        then format('%s alerts', pg_catalog.jsonb_array_length(p_alerts))
                    else coalesce(pg_catalog.jsonb_typeof(p_alerts), 'null')
                end),
                hint = 'Pass [{"alertname": "ChatAckSpike", "severity": "P1", "startsAt": "2026-11-26T10:00:00Z", '
                    || '"fingerprint": "4a0e4b0c2c3d1e2f", "silenced": false}, ...].';
        end if;
        -- the first alert that cannot be stored, by position, with its problem
        select e.ord, c.problem into v_bad
          from pg_catalog.jsonb_array_elements(p_alerts) with ordinality as e (alert, ord)
         cross join lateral (
             select case
                 when pg_catalog.jsonb_typeof(e.alert) is distinct from 'object' then 'the alert is not a JSON object'
                 when (select array_agg(k order by k) from pg_catalog.jsonb_object_keys(e.alert) as k)
                      is distinct from '{alertname,fingerprint,severity,silenced,startsAt}'::text[]
                     then 'the keys must be exactly alertname, severity, startsAt, fingerprint and silenced, not '
                         || chat_v11.shown(e.alert::text)
                 when pg_catalog.jsonb_typeof(e.alert -> 'alertname') is distinct from 'string'
                      or chat_v11.is_blank(e.alert ->> 'alertname') or pg_catalog.length(e.alert ->> 'alertname') > 200
                     then 'alertname must be a string of 1-200 characters'
                 when pg_catalog.jsonb_typeof(e.alert -> 'severity') is distinct from 'string'
                      or (e.alert ->> 'severity') not in ('P0', 'P1')
                     then 'severity must be "P0" or "P1", not ' || chat_v11.shown(e.alert ->> 'severity')
                 when pg_catalog.jsonb_typeof(e.alert -> 'startsAt') is distinct from 'string'
                      or (e.alert ->> 'startsAt')
                      !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|z|[+-]\d{2}(:?\d{2})?)$'
                      or not chat_v11.is_timestamptz(e.alert ->> 'startsAt')
                     then 'startsAt must be an ISO 8601 timestamp with an offset'
                 when pg_catalog.jsonb_typeof(e.alert -> 'fingerprint') is distinct from 'string'
                      or chat_v11.is_blank(e.alert ->> 'fingerprint')
                      or pg_catalog.length(e.alert ->> 'fingerprint') > 100
                     then 'fingerprint must be a string of 1-100 characters'
                 when pg_catalog.jsonb_typeof(e.alert -> 'silenced') is distinct from 'boolean'
                     then 'silenced must be a JSON boolean'
             end as problem
         ) as c
         where c.problem is not null
         order by e.ord
         limit 1;
        if v_bad.ord is not null then
            raise exception using
                errcode = 'RO022',
                message = format('alert %s of %s: %s', v_bad.ord, pg_catalog.jsonb_array_length(p_alerts),
                                 v_bad.problem),
                detail = 'Nothing was written.',
                hint = 'Fix the alert and send the whole read again.';
        end if;
    end if;

    insert into chat_v11.alert_source as s (singleton, reachable, error, unreachable_since, alerts)
    values (
        true, p_error is null, p_error, case when p_error is not null then pg_catalog.now() end,
        coalesce(p_alerts, '[]'::jsonb)
    )
    on conflict on constraint alert_source_pkey do update
        set checked_at = pg_catalog.now(),
            checked_by = session_user,
            reachable = excluded.reachable,
            error = excluded.error,
            unreachable_since = case
                when excluded.reachable then null
                else coalesce(s.unreachable_since, excluded.unreachable_since)
            end,
            alerts = case when excluded.reachable then excluded.alerts else s.alerts end;
    select pg_catalog.jsonb_array_length(s.alerts) into v_count from chat_v11.alert_source as s;
    return v_count;
end
$$;

revoke all on function public.chat_put_v11_active_alerts(jsonb, text) from public;
grant execute on function public.chat_put_v11_active_alerts(jsonb, text) to chat_rollout_ingest;
comment on function public.chat_put_v11_active_alerts(jsonb, text) is
'Alert pullers: replace the record of the last Alertmanager read with the active P0/P1 alerts [{alertname, '
'severity, startsAt, fingerprint, silenced}] (at most 200), or with p_error when Alertmanager could not be read '
'(the alerts of the last successful read are kept). Returns the number of alerts on record. RO020/RO022 for '
'malformed input.';
