-- The rollout state in force at a moment, from the history (no row: before the first history row).
-- A moment at or after the transaction start sees the newest committed row.
create or replace function chat_v11.state_at(p_at timestamptz)
returns table (
    stage text,
    kill_switch boolean,
    promotion_frozen boolean,
    incident_id bigint,
    version bigint,
    stage_since timestamptz
)
language sql
stable
as $$
    select
        h.to_stage,
        h.to_kill_switch,
        h.promotion_frozen,
        h.incident_id,
        h.version,
        (
            -- the newest row that changed the stage, found through rollout_history_stage_change_idx (a partial
            -- index on exactly this predicate): one index probe, whatever the length of the history
            select s.changed_at
              from chat_v11.rollout_history as s
             where s.version <= h.version
               and (s.action = 'init' or s.from_stage is distinct from s.to_stage)
             order by s.version desc
             limit 1
        )
      from chat_v11.rollout_history as h
     where p_at >= pg_catalog.now() or h.changed_at <= p_at
     order by h.version desc
     limit 1
$$;

revoke all on function chat_v11.state_at(timestamptz) from public;
comment on function chat_v11.state_at(timestamptz) is
'Stage, kill switch, freeze, incident, version and stage start in force at p_at, read from the history.';
