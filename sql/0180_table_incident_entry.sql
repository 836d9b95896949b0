-- The incident timeline (the scribe's record): append-only, UTC, facts, decisions, actions and what the
-- system did (opened, severity, status, role, snapshot, escalation, postmortem).
create table chat_v11.incident_entry (
    entry_id bigint generated always as identity,
    incident_id bigint not null,
    at timestamptz not null default pg_catalog.clock_timestamp(),
    recorded_by text not null default session_user,
    actor text,
    kind text not null,
    body text not null,
    data jsonb,
    constraint incident_entry_pkey primary key (entry_id),
    constraint incident_entry_incident_fkey foreign key (incident_id) references chat_v11.incident (incident_id),
    constraint incident_entry_kind_valid check (
        kind in (
            'fact', 'decision', 'action', 'fallback_confirmed', 'root_cause',
            'opened', 'severity', 'status', 'role', 'snapshot', 'escalation', 'postmortem', 'exit_criteria'
        )
    ),
    constraint incident_entry_body_valid check (pg_catalog.char_length(body) between 1 and 2000)
);

create index incident_entry_incident_idx on chat_v11.incident_entry (incident_id, entry_id);

comment on table chat_v11.incident_entry is
'Append-only incident timeline: who recorded what, when (UTC), of which kind. Nobody rewrites an entry.';
