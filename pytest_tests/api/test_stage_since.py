"""SPEC 4.1: the observation window counts from the history row that last changed the stage; finding it costs one
probe of a partial index whatever the length of the history (revision 0005)."""

from __future__ import annotations

import re

from pytest_tests.support.calls import arrange_state, history


def stage_since(conn):
    return conn.execute("select stage_since from chat_v11.state_at('infinity')").fetchone()[0]


def test_stage_since_is_the_newest_row_that_changed_the_stage_and_holds_do_not_move_it(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    promoted = history(conn, 1)[0]
    assert promoted["action"] == "promote"
    for _ in range(5):
        conn.execute("select chat_set_v11_rollout_state('canary_1', false, 'hold')")
    assert history(conn, 1)[0]["action"] == "hold"
    assert stage_since(conn) == promoted["changed_at"]
    conn.execute("select chat_set_v11_rollout_state('off', false, 'rollback to off')")
    rolled_back = history(conn, 1)[0]
    assert rolled_back["action"] == "rollback"
    assert stage_since(conn) == rolled_back["changed_at"]


def test_finding_the_stage_start_does_not_walk_the_history(conn):
    conn.execute(
        "do $$ begin for i in 1..2000 loop perform chat_set_v11_rollout_state('off', false, 'hold'); end loop; end $$"
    )
    conn.execute("analyze chat_v11.rollout_history")
    plan = "\n".join(
        r[0]
        for r in conn.execute("explain (analyze, costs off, timing off) select * from chat_v11.state_at('infinity')")
    )
    assert "rollout_history_stage_change_idx" in plan, plan
    probe = plan.split("rollout_history_stage_change_idx")[1].split("\n")[0]
    assert re.search(r"actual rows=1(\.00)? ", probe), plan  # one row read (PostgreSQL 18 prints rows=1.00)
