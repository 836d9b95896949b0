-- Promotion approvals are append-only and hash-chained, like the rollout history.
create trigger promotion_approval_chain
before insert on chat_v11.promotion_approval
for each row execute function chat_v11.chain_approval_row();

create trigger promotion_approval_no_update_delete
before update or delete on chat_v11.promotion_approval
for each row execute function chat_v11.refuse_history_change();

create trigger promotion_approval_no_truncate
before truncate on chat_v11.promotion_approval
for each statement execute function chat_v11.refuse_history_change();
