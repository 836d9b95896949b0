-- Approvals against the policy of the stage after p_stage at p_at, as the session user would count them when
-- promoting: required (the stage policy), valid (everyone else's valid approvals: one's own never counts for one's
-- own promotion), who approved, and a blocker in words when some are missing (null otherwise).
create or replace function chat_v11.approval_status(p_at timestamptz, p_next_stage text)
returns table (
    required integer,
    valid integer,
    approvers text[],
    own_approval boolean,
    blocker text
)
language sql
stable
as $$
    with policy as (
        select coalesce((select p.approvals_required from chat_v11.stage_policy as p where p.stage = p_next_stage),
                        0) as required
    ),
    counted as (
        select
            pg_catalog.count(*) filter (where a.approved_by <> session_user)::integer as valid,
            coalesce(array_agg(a.approved_by order by a.approved_by) filter (where a.approved_by <> session_user),
                     '{}') as approvers,
            coalesce(bool_or(a.approved_by = session_user), false) as own_approval
          from chat_v11.valid_approvals(p_at) as a
         where a.stage = p_next_stage
    )
    select p.required, c.valid, c.approvers, c.own_approval,
           case when p_next_stage is not null and c.valid < p.required then format(
               'approvals missing: promotion to %s needs %s approval(s) from someone other than %s, %s valid%s%s',
               p_next_stage, p.required, session_user, c.valid,
               case when c.valid > 0 then format(' (%s)', array_to_string(c.approvers, ', ')) else '' end,
               case when c.own_approval then format('; the approval of %s does not count for a promotion by %s',
                                                    session_user, session_user)
                    else '' end
           ) end
      from policy as p
     cross join counted as c
$$;

revoke all on function chat_v11.approval_status(timestamptz, text) from public;
comment on function chat_v11.approval_status(timestamptz, text) is
'Approvals required for promoting into p_next_stage and valid at p_at as the session user counts them (never its '
'own), the approvers, and a blocker text when some are missing.';
