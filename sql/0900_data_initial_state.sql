-- The initial rollout state (off, kill switch off, not frozen, version 1) and its init history row.
insert into chat_v11.rollout_state (
    stage, kill_switch, promotion_frozen, reason, changed_by, actor, changed_at, version
) values (
    'off', false, false, 'init', session_user, null, pg_catalog.clock_timestamp(), 1
);

insert into chat_v11.rollout_history (
    version, changed_at, changed_by, actor, action, from_stage, to_stage,
    from_kill_switch, to_kill_switch, promotion_frozen, reason
)
select
    s.version, s.changed_at, s.changed_by, s.actor, 'init' as action, null as from_stage, s.stage,
    null as from_kill_switch, s.kill_switch, s.promotion_frozen, s.reason
from chat_v11.rollout_state as s;
