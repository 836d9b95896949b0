-- Whether a user is in the canary now (SPEC 8): in_canary = kill switch off and bucket < traffic_percent × 100.
-- The bucket does not depend on the stage and the stages' percents never decrease along the stage order
-- (chat_set_v11_stage_settings refuses one that would, RO015), so a user in the canary at one stage is in it at
-- every higher stage; the salt changes only while no traffic is in the canary (RO040). A reader function: stable,
-- writes nothing, answers on a hot standby. State and salt are read in one statement (one snapshot).
create or replace function public.chat_get_v11_assignment(p_user_key text)
returns table (
    in_canary boolean,
    bucket integer,
    stage text,
    traffic_percent numeric,
    kill_switch boolean,
    version bigint
)
language plpgsql
stable
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
begin
    if p_user_key is null then
        raise exception using
            errcode = 'RO011',
            message = 'a user key is required',
            detail = 'chat_get_v11_assignment(p_user_key) got null; the empty string is a key like any other.',
            hint = 'Pass the key the application splits traffic by, e.g. chat_get_v11_assignment(''user-42'').';
    end if;
    return query
        select not s.kill_switch and b.bucket < s.traffic_percent * 100,
               b.bucket,
               s.stage,
               s.traffic_percent,
               s.kill_switch,
               s.version
          from chat_v11.rollout_state as s
         cross join lateral (
                select chat_v11.assignment_bucket(p.value #>> '{}', p_user_key) as bucket
                  from chat_v11.assignment_policy as p
                 where p.key = 'assignment_salt'
               ) as b;
end
$$;

revoke all on function public.chat_get_v11_assignment(text) from public;
grant execute on function public.chat_get_v11_assignment(text) to chat_rollout_reader;
comment on function public.chat_get_v11_assignment(text) is
'Reader: is this user in the canary now? in_canary (kill switch off and bucket < traffic_percent x 100), bucket '
'(0-9999: first 4 bytes of sha256(salt || '':'' || key), unsigned, mod 10000; policy assignment_salt), stage, '
'traffic_percent, kill_switch, version. Monotone: a user in at one stage is in at every higher stage. Read-only; '
'works on a hot standby; null key refused (RO011). chat_rollout.client computes the same in the application.';
