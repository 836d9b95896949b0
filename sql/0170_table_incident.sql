-- Incidents: the playbook's process as data (SPEC 4.8). One row per incident, changed only through the
-- incident functions; every change is also an append-only timeline entry.
create table chat_v11.incident (
    incident_id bigint generated always as identity,
    severity text not null,
    status text not null default 'open',
    summary text not null,
    opened_at timestamptz not null default pg_catalog.clock_timestamp(),
    opened_by text not null default session_user,
    opened_actor text,
    mitigated_at timestamptz,
    resolved_at timestamptz,
    closed_at timestamptz,
    postmortem jsonb,
    constraint incident_pkey primary key (incident_id),
    constraint incident_severity_valid check (severity in ('P0', 'P1', 'P2')),
    constraint incident_status_valid check (status in ('open', 'mitigated', 'resolved', 'closed')),
    constraint incident_summary_valid check (pg_catalog.char_length(summary) between 1 and 500),
    constraint incident_closed_has_postmortem check (status <> 'closed' or postmortem is not null)
);

create index incident_active_idx on chat_v11.incident (severity, opened_at)
where status in ('open', 'mitigated');

comment on table chat_v11.incident is
'Incidents of the Chat v1.1 rollout (severity P0/P1/P2, status open -> mitigated -> resolved -> closed). '
'Change with the public chat_*_v11_incident* functions.';
