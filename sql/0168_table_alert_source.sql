-- What the puller last read from Alertmanager (SPEC 7, "Active alerts"): one row, replaced by every read
-- (public.chat_put_v11_active_alerts). reachable = false with the error when Alertmanager could not be read; the
-- alerts are the active P0/P1 alerts as read (alertname, severity, startsAt, fingerprint, silenced), and after a
-- failed read the ones of the last successful read (an alert we know of is never forgotten by an outage).
create table chat_v11.alert_source (
    singleton boolean not null default true,
    checked_at timestamptz not null default pg_catalog.now(),
    checked_by text not null default session_user,
    reachable boolean not null,
    error text,
    unreachable_since timestamptz,
    alerts jsonb not null default '[]'::jsonb,
    constraint alert_source_pkey primary key (singleton),
    constraint alert_source_singleton check (singleton),
    constraint alert_source_error_valid check (reachable = (error is null) and reachable = (unreachable_since is null)),
    constraint alert_source_alerts_array check (pg_catalog.jsonb_typeof(alerts) = 'array'),
    constraint alert_source_bounded check (
        pg_catalog.length(error) <= 2000 and pg_catalog.jsonb_array_length(alerts) <= 200
    )
);

comment on table chat_v11.alert_source is
'The last read of Alertmanager by chat-rollout pull: when, reachable or the error (and since when it fails), and the '
'active P0/P1 alerts '
'[{alertname, severity, startsAt, fingerprint, silenced}]. One row. Write with public.chat_put_v11_active_alerts(); '
'read with public.chat_get_v11_active_alerts().';
