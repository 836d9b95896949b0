"""Issue 19: unguarded calls (kill, hold, rollback) record the most recent evaluation; guarded calls evaluate.

Ingestion stores the gate verdict of the committed state after a batch (chat_v11.gate_evaluation, at most one every
5 s). A kill, a hold or a rollback records it as its gate_snapshot, stamped with its own evaluated_at, who made it
and for which state version, when it was made for the same stage and kill switch and is at most a minute old;
otherwise the kill evaluates itself. A promote evaluates fresh. The snapshot is part of the hashed row: the history
still verifies.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from chat_rollout import scenarios
from pytest_tests.support.calls import arrange_state, gates, history, set_state
from pytest_tests.support.samples import healthy, put, sample


def _evaluation(conn) -> dict:
    row = conn.execute(
        "select evaluated_at, evaluated_by, stage, kill_switch, state_version, snapshot from chat_v11.gate_evaluation"
    ).fetchone()
    return dict(zip(["evaluated_at", "evaluated_by", "stage", "kill_switch", "state_version", "snapshot"], row,
                    strict=True)) if row else {}


def _verified(conn) -> bool:
    return conn.execute("select bool_and(ok) from public.chat_verify_v11_history_full()").fetchone()[0]


def test_a_kill_after_a_batch_records_that_batchs_evaluation_stamped_with_its_time(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    healthy(conn, minutes=40)
    stored = _evaluation(conn)
    version = conn.execute("select version from chat_v11.rollout_state").fetchone()[0]
    assert (stored["evaluated_by"], stored["stage"], stored["kill_switch"], stored["state_version"]) == (
        "ingestion", "canary_1", False, version)
    # the stored verdict is the one a reader computes at that moment
    then = gates(conn, stored["evaluated_at"])
    assert (stored["snapshot"]["gate_p0_ok"], stored["snapshot"]["rollout_decision"]) == (
        then["gate_p0_ok"], then["rollout_decision"]) == (True, "PROCEED")

    set_state(conn, "canary_1", True, "incident P0")
    row = history(conn, 1)[0]
    snap = row["gate_snapshot"]
    assert row["action"] == "kill"
    assert snap["obtained"] == "most recent evaluation"
    assert (snap["evaluated_by"], snap["state_version"]) == ("ingestion", version)
    assert snap["evaluated_at"] == stored["snapshot"]["evaluated_at"]
    assert datetime.fromisoformat(snap["evaluated_at"].replace("Z", "+00:00")) <= row["changed_at"]
    assert (snap["gate_p0_ok"], snap["gate_p1_ok"], snap["rollout_decision"], snap["failing_checks"]) == (
        True, True, "PROCEED", [])
    assert _verified(conn)


def test_a_hold_and_a_rollback_record_it_a_promote_evaluates_fresh(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    healthy(conn, minutes=40)
    stored = _evaluation(conn)
    set_state(conn, "canary_1", False, "hold")
    assert history(conn, 1)[0]["gate_snapshot"]["obtained"] == "most recent evaluation"
    set_state(conn, "off", False, "rollback")
    rollback = history(conn, 1)[0]
    assert (rollback["action"], rollback["gate_snapshot"]["obtained"]) == ("rollback", "most recent evaluation")
    assert rollback["gate_snapshot"]["evaluated_at"] == stored["snapshot"]["evaluated_at"]
    # the state is (off, false) now: the stored evaluation was made for canary_1, so a later hold evaluates itself
    set_state(conn, "off", False, "hold again")
    assert "obtained" not in history(conn, 1)[0]["gate_snapshot"]
    # a promote is guarded: it evaluates under the lock, whatever is stored
    arrange_state(conn, "unfreeze", "off", False, False)
    set_state(conn, "canary_1", False, "promote")
    promote = history(conn, 1)[0]
    assert promote["action"] == "promote" and "obtained" not in promote["gate_snapshot"]
    assert promote["gate_snapshot"]["evaluated_at"] != stored["snapshot"]["evaluated_at"]
    assert _verified(conn)


def test_a_kill_evaluates_itself_when_the_stored_evaluation_is_old_or_of_another_state(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    healthy(conn, minutes=40)
    # older than a minute: not recorded
    conn.execute("update chat_v11.gate_evaluation set evaluated_at = evaluated_at - interval '61 seconds'")
    set_state(conn, "canary_1", True, "stale stored verdict")
    snap = history(conn, 1)[0]["gate_snapshot"]
    assert snap["obtained"] == "evaluated by the kill"
    assert snap["gate_p0_ok"] is True and snap["rollout_decision"] == "PROCEED"
    # killed now: the stored verdict (kill switch off) is of another state, a second kill evaluates too
    conn.execute("update chat_v11.gate_evaluation set evaluated_at = clock_timestamp()")
    set_state(conn, "canary_1", True, "second operator")
    assert history(conn, 1)[0]["gate_snapshot"]["obtained"] == "evaluated by the kill"
    assert _verified(conn)


def test_ingestion_stores_at_most_one_evaluation_every_five_seconds_and_none_after_an_automatic_kill(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    healthy(conn, minutes=20)
    first = _evaluation(conn)["evaluated_at"]
    healthy(conn, minutes=1, end_offset=timedelta(seconds=10))
    assert _evaluation(conn)["evaluated_at"] == first  # within 5 s of the last one
    conn.execute("update chat_v11.gate_evaluation set evaluated_at = evaluated_at - interval '6 seconds'")
    healthy(conn, minutes=1, end_offset=timedelta(seconds=20))
    second = _evaluation(conn)["evaluated_at"]
    assert second > first
    # a batch that kills stores nothing more (its auto_kill history row carries its own evaluation)
    conn.execute("update chat_v11.gate_evaluation set evaluated_at = evaluated_at - interval '6 seconds'")
    aged = _evaluation(conn)
    at = scenarios.anchor_now() + timedelta(seconds=30)
    put(conn, [sample("ack_without_receipt_10s_rate", "canary", at, 1, 200)])
    assert history(conn, 1)[0]["action"] == "auto_kill"
    assert _evaluation(conn) == aged
