-- The hot read path's one relation: the state row, exactly the columns public.chat_get_v11_rollout_state()
-- returns, from the one table (traffic_percent is kept in the state row, no join). The view runs with its
-- owner's rights, so readers need no privilege on chat_v11; they may SELECT it, nothing else.
create view chat_v11_read.rollout_state as
select
    s.stage,
    s.traffic_percent,
    s.kill_switch,
    s.promotion_frozen,
    s.reason,
    s.changed_by,
    s.actor,
    s.changed_at,
    s.version
from chat_v11.rollout_state as s;

revoke all on chat_v11_read.rollout_state from public;
grant select on chat_v11_read.rollout_state to chat_rollout_reader;
comment on view chat_v11_read.rollout_state is
'Read-only: the rollout state now, for public.chat_get_v11_rollout_state() (SELECT for chat_rollout_reader only).';
