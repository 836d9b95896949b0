-- Downgrade of revision 0010: back to 0009, without metric sources, pull provenance and active alerts.
-- GUARD: metric sources are configuration an admin wrote, pull records and the last Alertmanager read are what the
-- gates read (postmortem evidence), the audit rows of source changes do not fit the 0009 audit check, and a changed
-- alert_source policy is a decision an admin made: all operator data, dropped only when confirmed with
-- alembic -x drop_data=yes downgrade 0009 (which sets chat_rollout.drop_data for this transaction).
do $guard$
declare
    v_sources bigint;
    v_pulls bigint;
    v_audit bigint;
    v_alerts bigint;
begin
    select pg_catalog.count(*) into v_sources from chat_v11.metric_source;
    select pg_catalog.count(*) into v_pulls from chat_v11.metric_pull;
    select pg_catalog.count(*) into v_audit from chat_v11.config_change where target = 'metric_source';
    select pg_catalog.count(*) into v_alerts from chat_v11.alert_source;
    select v_alerts + pg_catalog.count(*) into v_alerts from chat_v11.alert_policy
     where value <> '{"required": false, "max_age": "2 minutes"}'::jsonb;
    if v_sources + v_pulls + v_audit + v_alerts > 0
       and coalesce(pg_catalog.current_setting('chat_rollout.drop_data', true), '') <> 'yes' then
        raise exception using
            errcode = 'RO013',
            message = 'downgrade refused: it would drop operator data',
            detail = pg_catalog.format('%s metric sources, %s pull records, %s audit rows of metric source '
                                       'changes and %s Alertmanager records (the last read, a changed alert_source '
                                       'policy) would be lost.', v_sources, v_pulls, v_audit, v_alerts),
            hint = 'Keep a copy first (pg_dump -t chat_v11.metric_source -t chat_v11.metric_pull -t '
                || 'chat_v11.config_change -t chat_v11.alert_source -t chat_v11.alert_policy), then confirm with: '
                || 'alembic -x drop_data=yes downgrade 0009';
    end if;
end
$guard$;

drop function public.chat_put_v11_active_alerts(jsonb, text);
drop function public.chat_get_v11_active_alerts();
drop function chat_v11.alert_blockers(timestamptz);
drop table chat_v11.alert_source;
-- the policy alert_source goes with them (its audit rows stay: target policy fits the 0009 check)
drop table chat_v11.alert_policy;
drop function public.chat_get_v11_metric_pulls(timestamptz, timestamptz);
drop function public.chat_put_v11_metric_pulls(jsonb);
drop function public.chat_get_v11_metric_sources();
drop function public.chat_set_v11_metric_source(text, text, jsonb);
drop table chat_v11.metric_pull;
drop table chat_v11.metric_source;

-- the audit of source changes cannot stay under the 0009 check: confirmed above, it goes (the append-only trigger
-- is the only thing in its way, and only for this statement of the migration's transaction)
alter table chat_v11.config_change disable trigger config_change_no_update_delete;
delete from chat_v11.config_change where target = 'metric_source';
alter table chat_v11.config_change enable trigger config_change_no_update_delete;
-- squawk-ignore ban-drop-constraint -- restored at once as revision 0009 had it
alter table chat_v11.config_change drop constraint config_change_target_valid;
-- squawk-ignore constraint-missing-not-valid -- a scan of the small audit table under the migration's lock
alter table chat_v11.config_change add constraint config_change_target_valid check (
    target in ('stage', 'policy', 'metric_rule')
);
comment on table chat_v11.config_change is
'Who changed which stage setting, policy or metric rule, when, from what to what. Append-only.';
