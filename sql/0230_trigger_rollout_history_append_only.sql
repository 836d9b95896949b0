-- Rollout history is append-only and hash-chained.
create trigger rollout_history_chain
before insert on chat_v11.rollout_history
for each row execute function chat_v11.chain_history_row();

create trigger rollout_history_no_update_delete
before update or delete on chat_v11.rollout_history
for each row execute function chat_v11.refuse_history_change();

create trigger rollout_history_no_truncate
before truncate on chat_v11.rollout_history
for each statement execute function chat_v11.refuse_history_change();
