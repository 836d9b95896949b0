-- The verify walk behind chat_verify_v11_history(), chat_verify_v11_history_full() and the checkpoints: findings
-- (first bad version, kind, problem) over the chain from p_full ? 1 : the newest checkpoint, the state and an anchor.
create or replace function chat_v11.verify_history(p_full boolean, p_anchor_version bigint, p_anchor_hash text)
returns table (
    ok boolean,
    rows_checked bigint,
    first_broken_version bigint,
    kind text,
    problem text,
    checked_from bigint,
    head_version bigint,
    head_hash text
)
language plpgsql
stable
set search_path = pg_catalog, chat_v11, pg_temp
-- a generic plan cannot see that the walk starts near the head (the checkpoint): plan each call for its range
set plan_cache_mode = force_custom_plan
as $$
declare
    v_from bigint := 1::bigint;
    v_checkpoint_version bigint;
    v_checkpoint_hash text;
begin
    if p_full is null
        or (p_anchor_version is null) <> (p_anchor_hash is null)
        or p_anchor_version < 1
        or p_anchor_hash !~ '^[0-9a-f]{64}$' then
        raise exception using
            errcode = 'RO011',
            message = format('invalid verify arguments: full %s, anchor version %s, anchor hash %s',
                             coalesce(p_full::text, 'null'), coalesce(p_anchor_version::text, 'null'),
                             coalesce(chat_v11.shown(p_anchor_hash), 'null')),
            detail = 'p_full is true or false; an anchor is a version >= 1 and its hash, 64 lowercase hex digits, '
                     'both or neither.',
            hint = 'Take the anchor from a notification''s version and hash, or from chat-rollout status.';
    end if;
    if not p_full then
        select c.version, c.hash into v_checkpoint_version, v_checkpoint_hash
          from chat_v11.history_checkpoint as c
         where c.walked_from is not null
         order by c.checkpoint_id desc
         limit 1;
        v_from := coalesce(v_checkpoint_version, 1);
    end if;

    return query
    with state as (
        select s.stage, s.kill_switch, s.promotion_frozen, s.reason, s.changed_by, s.actor, s.changed_at, s.version,
               s.xmin as row_xmin
          from chat_v11.rollout_state as s
    ),
    head as (
        select h.version, h.to_stage, h.to_kill_switch, h.promotion_frozen, h.reason, h.changed_by, h.actor,
               h.changed_at, h.hash, h.xmin as row_xmin
          from chat_v11.rollout_history as h
         order by h.version desc
         limit 1
    ),
    chain as (
        select h.version, h.prev_hash, h.hash, chat_v11.history_row_hash(h) as recomputed,
               h.from_stage, h.from_kill_switch, h.xmin as row_xmin,
               lag(h.version) over w as prev_version,
               lag(h.hash) over w as prev_row_hash,
               lag(h.to_stage) over w as prev_to_stage,
               lag(h.to_kill_switch) over w as prev_to_kill_switch
          from chat_v11.rollout_history as h
         where h.version >= v_from
        window w as (order by h.version)
    ),
    findings (version, kind, problem) as (
        select coalesce(c.prev_version, 0) + 1, 'gap',
               format('versions %s to %s are missing (version %s follows version %s)',
                      coalesce(c.prev_version, 0) + 1, c.version - 1, c.version, coalesce(c.prev_version, 0))
          from chain as c
         where c.version <> coalesce(c.prev_version, 0) + 1
           and (c.prev_version is not null or v_from = 1)
        union all
        select c.version, 'null', format('version %s has a NULL %s', c.version,
                                         concat_ws(' and ', case when c.hash is null then 'hash' end,
                                                   case when c.prev_hash is null then 'prev_hash' end))
          from chain as c
         where c.hash is null or c.prev_hash is null
        union all
        select c.version, 'hash_mismatch',
               format('version %s was changed after it was written: its hash does not match its content', c.version)
          from chain as c
         where c.hash <> c.recomputed
        union all
        select c.prev_version, 'broken_link',
               format('the hash of version %s is not the prev_hash version %s recorded: version %s was rewritten '
                      'with its hash recomputed', c.prev_version, c.version, c.prev_version)
          from chain as c
         where c.prev_version = c.version - 1 and c.prev_hash <> c.prev_row_hash
        union all
        select 1::bigint, 'broken_link', 'version 1 does not start the chain: its prev_hash is not 64 zeros'
          from chain as c
         where c.version = 1 and c.prev_hash <> repeat('0', 64)
        union all
        select c.version, 'discontinuity',
               format('version %s starts at stage %s, kill switch %s, but version %s ended at stage %s, kill switch %s',
                      c.version, c.from_stage, c.from_kill_switch, c.prev_version, c.prev_to_stage,
                      c.prev_to_kill_switch)
          from chain as c
         where c.prev_version = c.version - 1
           and (c.from_stage, c.from_kill_switch) is distinct from (c.prev_to_stage, c.prev_to_kill_switch)
        union all
        -- the head history row is written with the state row, in one transaction: a head newer than the state row
        -- was rewritten or re-inserted, with every row sharing its transaction (older rows are not compared with
        -- the state row: concurrent calls take their xids in another order than the lock gives them versions)
        select min(c.version), 'written_after_state',
               format('%s history row(s) from version %s on were written in the transaction that last wrote the head '
                      '(version %s), after the state row: rewritten or re-inserted', count(*), min(c.version),
                      max(hd.version))
          from chain as c, state as s, head as hd
         where c.row_xmin operator(pg_catalog.=) hd.row_xmin
           and not hd.row_xmin operator(pg_catalog.=) s.row_xmin
           and pg_catalog.age(hd.row_xmin) < pg_catalog.age(s.row_xmin)
        having count(*) > 0
        union all
        select v_checkpoint_version, 'checkpoint_mismatch',
               format('version %s was checkpointed with hash %s but %s', v_checkpoint_version,
                      left(v_checkpoint_hash, 16), coalesce('its hash is now ' || left(h.hash, 16),
                                                           'the history has no such row'))
          from (select 1) as one
          left join chat_v11.rollout_history as h on h.version = v_checkpoint_version
         where v_checkpoint_version is not null and h.hash is distinct from v_checkpoint_hash
        union all
        select p_anchor_version, 'anchor_mismatch',
               format('the anchor says version %s has hash %s but %s: the history up to version %s was rewritten',
                      p_anchor_version, left(p_anchor_hash, 16),
                      coalesce('its hash is ' || left(h.hash, 16), 'the history has no such row'), p_anchor_version)
          from (select 1) as one
          left join chat_v11.rollout_history as h on h.version = p_anchor_version
         where p_anchor_version is not null and h.hash is distinct from p_anchor_hash
        union all
        select 1::bigint, 'empty_history', 'the history has no rows'
         where not exists (select from head)
        union all
        select null::bigint, 'missing_state', 'the rollout state row is missing'
         where not exists (select from state)
        union all
        select least(s.version, hd.version) + 1, 'state_mismatch',
               format('the state is at version %s but the history ends at version %s', s.version, hd.version)
          from state as s, head as hd
         where s.version <> hd.version
        union all
        select hd.version, 'state_mismatch',
               format('the state row differs from history version %s in: %s', hd.version, concat_ws(', ',
                   case when s.stage is distinct from hd.to_stage then 'stage' end,
                   case when s.kill_switch is distinct from hd.to_kill_switch then 'kill_switch' end,
                   case when s.promotion_frozen is distinct from hd.promotion_frozen then 'promotion_frozen' end,
                   case when s.reason is distinct from hd.reason then 'reason' end,
                   case when s.changed_by is distinct from hd.changed_by then 'changed_by' end,
                   case when s.actor is distinct from hd.actor then 'actor' end,
                   case when s.changed_at is distinct from hd.changed_at then 'changed_at' end))
          from state as s, head as hd
         where s.version = hd.version
           and (s.stage, s.kill_switch, s.promotion_frozen, s.reason, s.changed_by, s.actor, s.changed_at)
               is distinct from
               (hd.to_stage, hd.to_kill_switch, hd.promotion_frozen, hd.reason, hd.changed_by, hd.actor, hd.changed_at)
        union all
        -- chat_v11.apply_transition writes both rows in one transaction; a stage settings change (config_change)
        -- or an acknowledged migration/restore (history_checkpoint.state_xmin) may rewrite the state row alone
        select hd.version, 'state_xmin',
               format('the state row and history version %s were not written in one transaction: '
                      'the state row was rewritten outside a state change', hd.version)
          from state as s, head as hd
         where s.version = hd.version
           and not s.row_xmin operator(pg_catalog.=) hd.row_xmin
           and not exists (select from chat_v11.config_change as cc where cc.xmin operator(pg_catalog.=) s.row_xmin)
           and not exists (select from chat_v11.history_checkpoint as k
                            where k.version = hd.version and k.state_xmin operator(pg_catalog.=) s.row_xmin)
    ),
    summary as (
        select (select count(*) from chain) as rows_checked, not exists (select from findings) as ok
    )
    select sm.ok, sm.rows_checked, f.version, f.kind, f.problem, v_from,
           (select hd.version from head as hd), (select hd.hash from head as hd)
      from summary as sm
      left join findings as f on true
     order by f.version nulls last, f.kind;
end
$$;

revoke all on function chat_v11.verify_history(boolean, bigint, text) from public;
comment on function chat_v11.verify_history(boolean, bigint, text) is
'The findings of a verify run (see public.chat_verify_v11_history); p_full walks from version 1, else from the newest '
'checkpoint.';
