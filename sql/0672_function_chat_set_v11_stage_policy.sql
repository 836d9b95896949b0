-- Changes the progression policy of promoting into a stage (SPEC 9): auto_promote (JSON boolean) and
-- approvals_required (JSON integer 0-10); a key left out keeps its value, an unknown key or a bad value is refused
-- (RO044) and nothing is written. Audited in chat_v11.config_change (target stage_policy).
create or replace function public.chat_set_v11_stage_policy(p_stage text, p_settings jsonb)
returns table (
    stage text,
    auto_promote boolean,
    approvals_required integer,
    changed_at timestamptz,
    changed_by text
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_unknown text;
    v_problem text;
    v_old record;
    v_new record;
    v_required numeric;
begin
    perform chat_v11.begin_write('chat_set_v11_stage_policy');
    if not exists (select from chat_v11.stage as s where s.stage = p_stage) then
        raise exception using
            errcode = 'RO002',
            message = format('unknown stage %s', chat_v11.shown(p_stage)),
            detail = format('Known stages, in order: %s.',
                            (select string_agg(s.stage, ', ' order by s.ordinal) from chat_v11.stage as s)),
            hint = 'Name the stage a promotion goes into: its policy decides that promotion.';
    end if;
    if jsonb_typeof(p_settings) is distinct from 'object' or p_settings = '{}'::jsonb then
        v_problem := format('the settings must be a non-empty JSON object; got %s',
                            coalesce(chat_v11.shown(p_settings::text), 'null'));
    else
        select string_agg(k, ', ' order by k) into v_unknown
          from jsonb_object_keys(p_settings) as k
         where k not in ('auto_promote', 'approvals_required');
        if v_unknown is not null then
            v_problem := format('unknown setting(s) %s', chat_v11.shown(v_unknown));
        elsif p_settings ? 'auto_promote' and jsonb_typeof(p_settings -> 'auto_promote') is distinct from 'boolean' then
            v_problem := format('auto_promote takes a JSON boolean; got %s',
                                chat_v11.shown((p_settings -> 'auto_promote')::text));
        elsif p_settings ? 'approvals_required' then
            if jsonb_typeof(p_settings -> 'approvals_required') is distinct from 'number' then
                v_problem := format('approvals_required takes a JSON integer from 0 to 10; got %s',
                                    chat_v11.shown((p_settings -> 'approvals_required')::text));
            else
                v_required := (p_settings ->> 'approvals_required')::numeric;
                if v_required <> pg_catalog.trunc(v_required) or v_required not between 0 and 10 then
                    v_problem := format('approvals_required takes an integer from 0 to 10; got %s', v_required);
                end if;
            end if;
        end if;
    end if;
    if v_problem is not null then
        raise exception using
            errcode = 'RO044',
            message = format('invalid stage policy for stage %s', p_stage),
            detail = v_problem || '.',
            hint = 'Pass an object with auto_promote (true or false) and/or approvals_required (0 to 10), such as '
                || '''{"auto_promote": true, "approvals_required": 1}''; nothing was changed.';
    end if;

    insert into chat_v11.stage_policy as p (stage) values (p_stage) on conflict (stage) do nothing;
    select p.stage, p.auto_promote, p.approvals_required into v_old
      from chat_v11.stage_policy as p
     where p.stage = p_stage
       for update;
    update chat_v11.stage_policy as p
       set auto_promote = coalesce((p_settings ->> 'auto_promote')::boolean, v_old.auto_promote),
           approvals_required = coalesce(v_required::integer, v_old.approvals_required),
           changed_at = pg_catalog.clock_timestamp(),
           changed_by = session_user
     where p.stage = p_stage
    returning p.* into v_new;
    insert into chat_v11.config_change (actor, target, target_key, old_value, new_value)
    values (
        chat_v11.claimed_actor(), 'stage_policy', p_stage,
        jsonb_build_object('auto_promote', v_old.auto_promote, 'approvals_required', v_old.approvals_required),
        jsonb_build_object('auto_promote', v_new.auto_promote, 'approvals_required', v_new.approvals_required)
    );
    return query select v_new.stage, v_new.auto_promote, v_new.approvals_required, v_new.changed_at, v_new.changed_by;
end
$$;

revoke all on function public.chat_set_v11_stage_policy(text, jsonb) from public;
grant execute on function public.chat_set_v11_stage_policy(text, jsonb) to chat_rollout_admin;
comment on function public.chat_set_v11_stage_policy(text, jsonb) is
'Admin: set the progression policy of promoting INTO a stage: auto_promote (boolean, default false: '
'chat_run_v11_progression may promote into it) and approvals_required (0-10, default 0: approvals a promotion into '
'it needs, never the promoter''s own). Keys left out keep their value; unknown keys or bad values are refused '
'(RO044). Audited in chat_v11.config_change.';
