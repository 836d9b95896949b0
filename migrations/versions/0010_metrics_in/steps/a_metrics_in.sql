-- covers: sql/0150_table_config_change.sql
-- Revision 0010: the configuration audit also records metric sources (target metric_source). The check is replaced
-- in place under the migration's ACCESS EXCLUSIVE lock (migrations/env.py); the audit is small (one row per
-- configuration change), so the validating scan is short, and every existing row has one of the earlier targets.
-- squawk-ignore ban-drop-constraint -- replaced at once by a wider check of the same name
alter table chat_v11.config_change drop constraint config_change_target_valid;
-- squawk-ignore constraint-missing-not-valid -- a scan of the small audit table under the migration's lock
alter table chat_v11.config_change add constraint config_change_target_valid check (
    target in ('stage', 'policy', 'metric_rule', 'metric_source')
);
comment on table chat_v11.config_change is
'Who changed which stage setting, policy, metric rule or metric source, when, from what to what. Append-only.';
