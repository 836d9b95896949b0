-- History checkpoints are append-only, like the history they vouch for.
create trigger history_checkpoint_no_update_delete
before update or delete on chat_v11.history_checkpoint
for each row execute function chat_v11.refuse_history_change();

create trigger history_checkpoint_no_truncate
before truncate on chat_v11.history_checkpoint
for each statement execute function chat_v11.refuse_history_change();
