-- The configuration audit is append-only.
create trigger config_change_no_update_delete
before update or delete on chat_v11.config_change
for each row execute function chat_v11.refuse_history_change();

create trigger config_change_no_truncate
before truncate on chat_v11.config_change
for each statement execute function chat_v11.refuse_history_change();
