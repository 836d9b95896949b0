-- The last Alertmanager read (SPEC 7, "Active alerts") with the policy that weighs it: what the Go/No-Go sees of
-- active alerts. No row when Alertmanager was never read.
create or replace function public.chat_get_v11_active_alerts()
returns table (
    checked_at timestamptz,
    checked_by text,
    reachable boolean,
    unreachable_since timestamptz,
    error text,
    alerts jsonb,
    required boolean,
    max_age interval
)
language sql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
    select s.checked_at, s.checked_by, s.reachable, s.unreachable_since, s.error, s.alerts,
           coalesce((p.value ->> 'required')::boolean, false), (p.value ->> 'max_age')::interval
      from chat_v11.alert_source as s
      left join chat_v11.alert_policy as p on p.key = 'alert_source'
$$;

revoke all on function public.chat_get_v11_active_alerts() from public;
grant execute on function public.chat_get_v11_active_alerts() to chat_rollout_reader, chat_rollout_ingest;
comment on function public.chat_get_v11_active_alerts() is
'The last Alertmanager read: when and by whom, reachable (or the error and since when), the active P0/P1 alerts '
'[{alertname, severity, startsAt, fingerprint, silenced}], and the policy alert_source (required, max_age). No row '
'when never read. Read-only; readers and the ingest login of the puller.';
