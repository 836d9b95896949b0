-- Downgrade of revision 0012: back to 0011, without stage policies, approvals and automatic progression.
-- GUARD: automatic promotions are history rows, and the history is append-only and hash-chained: removing them would
-- break the chain, and the 0011 history check cannot hold them, so a database that has auto-promoted never goes below
-- 0012 (the refusal says so even with drop_data=yes). Approvals are audit rows of who approved what, stage policies
-- and a changed approval_ttl are decisions an admin made, and the audit rows of stage policy changes do not fit the
-- 0011 audit check: all operator data, dropped only when confirmed with alembic -x drop_data=yes downgrade 0011
-- (which sets chat_rollout.drop_data for this transaction).
do $guard$
declare
    v_auto bigint;
    v_approvals bigint;
    v_policies bigint;
    v_audit bigint;
    v_ttl bigint;
begin
    select pg_catalog.count(*) into v_auto from chat_v11.rollout_history where action = 'auto_promote';
    if v_auto > 0 then
        raise exception using
            errcode = 'RO013',
            message = 'downgrade refused: the history holds automatic promotions',
            detail = pg_catalog.format('%s history rows have action auto_promote; revision 0011 cannot hold them, '
                                       'and the append-only, hash-chained history never loses a row.', v_auto),
            hint = 'Stay at revision 0012 or later; a fix goes into a new revision.';
    end if;
    select pg_catalog.count(*) into v_approvals from chat_v11.promotion_approval;
    select pg_catalog.count(*) into v_policies from chat_v11.stage_policy
     where auto_promote or approvals_required <> 0;
    select pg_catalog.count(*) into v_audit from chat_v11.config_change where target = 'stage_policy';
    select pg_catalog.count(*) into v_ttl from chat_v11.approval_policy where value <> '"24 hours"'::jsonb;
    if v_approvals + v_policies + v_audit + v_ttl > 0
       and coalesce(pg_catalog.current_setting('chat_rollout.drop_data', true), '') <> 'yes' then
        raise exception using
            errcode = 'RO013',
            message = 'downgrade refused: it would drop operator data',
            detail = pg_catalog.format('%s promotion approvals, %s stage policies, %s audit rows of stage policy '
                                       'changes and %s changed approval_ttl policy would be lost.',
                                       v_approvals, v_policies, v_audit, v_ttl),
            hint = 'Keep a copy first (pg_dump -t chat_v11.promotion_approval -t chat_v11.stage_policy -t '
                || 'chat_v11.config_change -t chat_v11.approval_policy), then confirm with: '
                || 'alembic -x drop_data=yes downgrade 0011';
    end if;
end
$guard$;

drop function public.chat_run_v11_progression();
drop function public.chat_get_v11_progression();
drop function public.chat_get_v11_approvals();
drop function public.chat_approve_v11_promotion(text, text);
drop function public.chat_set_v11_stage_policy(text, jsonb);
drop function chat_v11.approval_status(timestamptz, text);
drop function chat_v11.valid_approvals(timestamptz);
-- the hash function takes the table's row type: it goes first, then the table with its triggers
drop function chat_v11.approval_row_hash(chat_v11.promotion_approval);
drop table chat_v11.promotion_approval;
drop function chat_v11.chain_approval_row();
drop table chat_v11.stage_policy;
-- the policy approval_ttl goes with its table (its audit rows stay: target policy fits the 0011 check)
drop table chat_v11.approval_policy;

-- the audit of stage policy changes cannot stay under the 0011 check: confirmed above, it goes (the append-only
-- trigger is the only thing in its way, and only for this statement of the migration's transaction)
alter table chat_v11.config_change disable trigger config_change_no_update_delete;
delete from chat_v11.config_change where target = 'stage_policy';
alter table chat_v11.config_change enable trigger config_change_no_update_delete;
-- squawk-ignore ban-drop-constraint -- restored at once as revision 0011 had it
alter table chat_v11.config_change drop constraint config_change_target_valid;
-- squawk-ignore constraint-missing-not-valid -- a scan of the small audit table under the migration's lock
alter table chat_v11.config_change add constraint config_change_target_valid check (
    target in ('stage', 'policy', 'metric_rule', 'metric_source')
);
comment on table chat_v11.config_change is
'Who changed which stage setting, policy, metric rule or metric source, when, from what to what. Append-only.';
-- squawk-ignore ban-drop-constraint -- restored at once as revision 0011 had it (no auto_promote row: checked above)
alter table chat_v11.rollout_history drop constraint rollout_history_action_valid;
-- squawk-ignore constraint-missing-not-valid -- a scan of the small history under the migration's lock
alter table chat_v11.rollout_history add constraint rollout_history_action_valid check (
    action in ('init', 'promote', 'rollback', 'hold', 'kill', 'resume', 'unfreeze', 'auto_kill')
);
