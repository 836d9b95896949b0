-- covers: sql/0140_table_rollout_history.sql
-- covers: sql/0150_table_config_change.sql
-- Revision 0012: the history also records automatic promotions (action auto_promote, actor guardrail), and the
-- configuration audit records stage policies (target stage_policy). Both checks are replaced in place under the
-- migration's ACCESS EXCLUSIVE lock on the state table (migrations/env.py); the history and the audit are small (one
-- row per call or change), so the validating scans are short, and every existing row has one of the earlier values.
-- squawk-ignore ban-drop-constraint -- replaced at once by a wider check of the same name
alter table chat_v11.rollout_history drop constraint rollout_history_action_valid;
-- squawk-ignore constraint-missing-not-valid -- a scan of the small history under the migration's lock
alter table chat_v11.rollout_history add constraint rollout_history_action_valid check (
    action in ('init', 'promote', 'rollback', 'hold', 'kill', 'resume', 'unfreeze', 'auto_kill', 'auto_promote')
);
-- squawk-ignore ban-drop-constraint -- replaced at once by a wider check of the same name
alter table chat_v11.config_change drop constraint config_change_target_valid;
-- squawk-ignore constraint-missing-not-valid -- a scan of the small audit table under the migration's lock
alter table chat_v11.config_change add constraint config_change_target_valid check (
    target in ('stage', 'policy', 'metric_rule', 'metric_source', 'stage_policy')
);
comment on table chat_v11.config_change is
'Who changed which stage setting, stage policy, policy, metric rule or metric source, when, from what to what. '
'Append-only.';
