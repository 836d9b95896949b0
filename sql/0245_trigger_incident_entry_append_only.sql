-- The incident timeline is append-only.
create trigger incident_entry_no_update_delete
before update or delete on chat_v11.incident_entry
for each row execute function chat_v11.refuse_history_change();

create trigger incident_entry_no_truncate
before truncate on chat_v11.incident_entry
for each statement execute function chat_v11.refuse_history_change();
