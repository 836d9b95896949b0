-- When the P0 exit window can be clean at the earliest if samples keep arriving with no new P0 event: the last
-- P0 event (a bucket over its rule) leaves the window, and every P0 metric's samples cover it. Null when a P0
-- metric has sent no sample in the window (no time can be promised).
create or replace function chat_v11.p0_exit_clean_at(p_at timestamptz)
returns timestamptz
language sql
stable
as $$
    with exit_window as (
        select coalesce(chat_v11.policy_interval('p0_exit_window'), interval '30 minutes') as w
    ),
    per_metric as (
        select m.metric,
               m.freshness,
               pg_catalog.max(s.bucket_start) filter (
                   where case when m.rule = 'threshold' then s.numerator > m.threshold * s.denominator
                              else s.numerator > 0 end
               ) as last_event,
               pg_catalog.min(s.bucket_start) as oldest
          from chat_v11.metric as m
         cross join exit_window as x
          left join chat_v11.metric_sample as s
                 on s.metric = m.metric and s.bucket_start > p_at - x.w and s.bucket_start <= p_at
         where m.severity = 'P0'
         group by m.metric, m.freshness
    )
    select case
               when pg_catalog.bool_or(p.oldest is null) then null
               else greatest(p_at, pg_catalog.max(p.last_event + x.w), pg_catalog.max(p.oldest + x.w - p.freshness))
           end
      from per_metric as p
     cross join exit_window as x
     group by x.w
$$;

revoke all on function chat_v11.p0_exit_clean_at(timestamptz) from public;
comment on function chat_v11.p0_exit_clean_at(timestamptz) is
'The earliest time the P0 exit window can be clean if samples keep arriving with no new P0 event (the last event '
'has left the window and the samples cover it); null when a P0 metric has no sample in the window.';
