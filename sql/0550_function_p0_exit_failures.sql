-- The P0 exit criteria of a resume (playbook section 5): every P0 check passes over the whole exit
-- window (policy p0_exit_window) with samples covering it. Returns what fails, empty when they hold.
create or replace function chat_v11.p0_exit_failures(p_at timestamptz)
returns text[]
language sql
stable
as $$
    with exit_window as (
        select coalesce(chat_v11.policy_interval('p0_exit_window'), interval '30 minutes') as w
    )
    select coalesce(
        array_agg(
            case
                when c.status <> 'pass'
                    then format('%s over the exit window of %s: %s: %s', c.metric, x.w, c.status, c.explanation)
                else format('%s: samples do not cover the exit window of %s (oldest bucket %s UTC, needs %s UTC '
                            'or earlier)', c.metric, x.w,
                            pg_catalog.to_char(c.oldest_bucket at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                            pg_catalog.to_char((p_at - x.w + m.freshness) at time zone 'UTC',
                                               'YYYY-MM-DD HH24:MI:SS'))
            end
            order by m.ordinal
        ),
        '{}'
    )
      from exit_window as x
     cross join lateral chat_v11.evaluate_checks(p_at, 'off', true, x.w) as c
      join chat_v11.metric as m on m.metric = c.metric
     where c.severity = 'P0'
       and (c.status <> 'pass' or c.oldest_bucket > p_at - x.w + m.freshness)
$$;

revoke all on function chat_v11.p0_exit_failures(timestamptz) from public;
comment on function chat_v11.p0_exit_failures(timestamptz) is
'What keeps the P0 exit criteria from holding at p_at: a P0 check failing or inconclusive over the exit '
'window, or samples not covering it. Empty when a controlled resume may go ahead.';
