"""Issue 12 (part 2): the traffic percent of the stage the rollout is at never changes in place. Such a change would
move traffic with no new version, no history row and no NOTIFY; it is refused with RO019 (DETAIL the stage and its
percent, HINT: roll back, change, promote). The observation window of the current stage and the percent of any other
stage still change; a change racing a promotion into the stage cannot slip through."""

from __future__ import annotations

import threading
import time

import psycopg

from pytest_tests.support.calls import arrange_state, login, refused, snapshot, state

CHANGE = "select * from chat_set_v11_stage_settings(%s, %s::numeric, %s::interval)"



def catalog(conn) -> tuple:
    return (
        conn.execute("select stage, traffic_percent, min_observation from chat_v11.stage order by ordinal").fetchall(),
        conn.execute("select count(*) from chat_v11.config_change").fetchone()[0],
    )


def test_the_repro_is_refused_with_ro019_and_nothing_moves(conn, db_url):
    arrange_state(conn, "promote", "canary_1", False, False)
    before, stages = snapshot(conn), catalog(conn)
    with login(db_url, "chat_test_operator") as listener, login(db_url, "chat_test_admin") as admin:
        listener.execute("listen chat_v11_rollout")
        err = refused(admin, "select * from chat_set_v11_stage_settings('canary_1', 3, NULL)")
        assert err.sqlstate == "RO019"
        assert err.diag.message_primary == "traffic of the current stage cannot change in place"
        assert "stage canary_1 with 1.00 %" in err.diag.message_detail
        assert "chat_set_v11_rollout_state('off', false, reason)" in err.diag.message_hint
        assert "then promote" in err.diag.message_hint
        listener.execute("select 1")
        assert list(listener.notifies(timeout=0.2, stop_after=1)) == []
    assert snapshot(conn) == before  # state (percent 1, version) and history unchanged
    assert state(conn)["traffic_percent"] == 1
    assert catalog(conn) == stages  # stage row and config audit unchanged


def test_the_observation_window_and_an_unchanged_percent_of_the_current_stage_still_change(conn):
    arrange_state(conn, "promote", "canary_5", False, False)
    before = snapshot(conn)
    row = conn.execute(CHANGE, ("canary_5", 5, "45 minutes")).fetchone()
    assert (float(row[2]), str(row[3])) == (5.0, "0:45:00")
    conn.execute(CHANGE, ("canary_5", None, "10 minutes"))
    assert snapshot(conn) == before
    assert conn.execute("select count(*) from chat_v11.config_change").fetchone()[0] == 2


def test_other_stages_change_and_the_current_one_changes_through_rollback_and_promotion(conn):
    arrange_state(conn, "promote", "canary_5", False, False)
    before = snapshot(conn)
    conn.execute(CHANGE, ("canary_25", 30, None))
    conn.execute(CHANGE, ("canary_1", 2, None))
    assert snapshot(conn) == before
    assert refused(conn, CHANGE, ("canary_5", 6, None)).sqlstate == "RO019"
    # the hint's way: roll back, change, promote again (arranged: the public promotion needs green gates)
    conn.execute("select * from chat_set_v11_rollout_state('canary_1', false, 'roll back to change canary_5')")
    conn.execute(CHANGE, ("canary_5", 6, None))
    arrange_state(conn, "promote", "canary_5", False, False)
    assert (state(conn)["stage"], state(conn)["traffic_percent"]) == ("canary_5", 6)


def test_an_invalid_percent_of_the_current_stage_is_still_ro015(conn):
    assert refused(conn, CHANGE, ("off", 1, None)).sqlstate == "RO015"  # the rollout is at off
    arrange_state(conn, "promote", "canary_5", False, False)
    assert refused(conn, CHANGE, ("canary_5", 60, None)).sqlstate == "RO015"


def test_a_change_racing_a_promotion_into_the_stage_is_refused(conn, db_url):
    """The promotion (the internal write path, in an open transaction) holds the state row and has copied canary_1's
    percent; the admin's change of canary_1 reads the committed state (still off), waits for the stage row, and
    once the promotion commits finds canary_1 current: RO019, and the state keeps the percent it was promoted with."""
    with psycopg.connect(db_url) as promoter, login(db_url, "chat_test_admin") as admin:
        promoter.execute("select chat_v11.lock_state()")
        promoter.execute(
            "select chat_v11.apply_transition('promote', 'canary_1', false, false, 'racing promotion', null, null, "
            "'test')"
        )
        result: dict = {}

        def change() -> None:
            try:
                admin.execute(CHANGE, ("canary_1", 2, None))
                result["ok"] = True
            except psycopg.Error as exc:
                result["error"] = exc

        thread = threading.Thread(target=change)
        thread.start()
        time.sleep(0.3)
        assert thread.is_alive()  # waiting for the stage row the promotion holds
        promoter.commit()
        thread.join(5)
    assert "error" in result and result["error"].sqlstate == "RO019", result
    assert (state(conn)["stage"], state(conn)["traffic_percent"]) == ("canary_1", 1)
    assert conn.execute("select traffic_percent from chat_v11.stage where stage = 'canary_1'").fetchone()[0] == 1


def test_a_promotion_racing_a_committed_later_change_carries_the_new_percent(conn, db_url):
    """The other order: the admin changes canary_1 first (not current yet) and commits late; the promotion waits for
    the stage row and copies the new percent -- a change made before promoting into the stage."""
    with login(db_url, "chat_test_admin") as admin, psycopg.connect(db_url, autocommit=True) as promoter:
        admin.execute("begin")
        admin.execute(CHANGE, ("canary_1", 2, None))
        thread = threading.Thread(target=arrange_state, args=(promoter, "promote", "canary_1", False, False))
        thread.start()
        time.sleep(0.3)
        assert thread.is_alive()
        admin.execute("commit")
        thread.join(5)
    assert (state(conn)["stage"], state(conn)["traffic_percent"]) == ("canary_1", 2)
