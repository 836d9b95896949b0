-- phase: after
-- Revision 0007: a state row an earlier migration rewrote (0005 added traffic_percent) has another xmin than the
-- newest history row; record it as acknowledged (no walk: walked_from is null) so verify names only later rewrites.
insert into chat_v11.history_checkpoint (version, hash, state_xmin, walked_from)
select
    h.version,
    h.hash,
    s.xmin as state_xmin,
    null as walked_from
from chat_v11.rollout_state as s
inner join chat_v11.rollout_history as h on s.version = h.version
where not pg_catalog.texteq(s.xmin::text, h.xmin::text);
