-- Sets lock_timeout to the time left in the statement's lock budget (chat_v11.start_lock_budget), at most p_cap:
-- a wait past the deadline fails at once (lock_not_available), which the callers turn into RO010.
create or replace function chat_v11.bound_lock_wait(p_cap interval)
returns void
language plpgsql
volatile
as $$
declare
    v_deadline numeric := pg_catalog.current_setting('chat_rollout.lock_deadline', true)::numeric;
    v_left_ms numeric;
begin
    if v_deadline is null then
        perform chat_v11.start_lock_budget();
        v_deadline := pg_catalog.current_setting('chat_rollout.lock_deadline')::numeric;
    end if;
    v_left_ms := pg_catalog.ceil((v_deadline - extract(epoch from pg_catalog.clock_timestamp())) * 1000);
    if p_cap is not null then
        v_left_ms := least(v_left_ms, pg_catalog.ceil(extract(epoch from p_cap) * 1000));
    end if;
    perform pg_catalog.set_config('lock_timeout', greatest(v_left_ms, 1)::bigint::text, true);
end
$$;

revoke all on function chat_v11.bound_lock_wait(interval) from public;
comment on function chat_v11.bound_lock_wait(interval) is
'Bounds the next lock waits by the time left in this statement''s lock budget (at most p_cap).';
