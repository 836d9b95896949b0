"""SPEC 9: chat_run_v11_progression, the scheduler's automatic promotion. A healthy scenario walks itself to full
one stage per run, after each observation window; nothing is promoted while any check is inconclusive, the rollout
is frozen or killed, an incident is open, auto_promote is off or approvals are missing."""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest

from chat_rollout import scenarios
from pytest_tests.support.calls import arrange_state, history, login, snapshot, state
from pytest_tests.support.samples import healthy, healthy_p0, put

STAGES = ["canary_1", "canary_5", "canary_25", "canary_50", "full"]


def run(c) -> dict:
    cur = c.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("select * from chat_run_v11_progression()").fetchone()


@pytest.fixture
def ingest(db_url):
    with login(db_url, "chat_test_ingest") as c:
        yield c


def auto_everywhere(conn, window: str = "0") -> None:
    for stage in STAGES:
        conn.execute("select chat_set_v11_stage_settings(%s, null, %s::interval)", (stage, window))
        conn.execute("select chat_set_v11_stage_policy(%s, '{\"auto_promote\": true}')", (stage,))


def test_a_healthy_rollout_walks_itself_to_full_one_stage_per_run(conn, ingest):
    healthy(conn, 40)
    auto_everywhere(conn)
    notices = []
    ingest.add_notice_handler(lambda d: notices.append(d.message_primary))
    for i, stage in enumerate(STAGES):
        row = run(ingest)
        assert (row["action"], row["stage"], row["next_stage"], row["blockers"]) == ("auto_promote", stage, stage, [])
        assert row["version"] == 2 + i
        assert row["detail"].startswith("guardrail: automatic promotion from ")
    assert len(notices) == 5 and notices[0] == (
        "auto_promote: v1.1 traffic goes from off to canary_1 (1.00 %), version 2"
    )
    rows = history(conn, 5)
    assert [(r["action"], r["actor"], r["changed_by"], r["to_stage"]) for r in reversed(rows)] == [
        ("auto_promote", "guardrail", "chat_test_ingest", s) for s in STAGES
    ]
    assert all(r["gate_snapshot"]["rollout_decision"] == "PROCEED" for r in rows)
    assert state(conn)["traffic_percent"] == 100
    # at the last stage the run is idempotent: nothing to do, and it says why
    before = snapshot(conn)
    last = run(ingest)
    assert (last["action"], last["stage"], last["next_stage"]) == ("none", "full", None)
    assert last["blockers"] == ["stage full is the last stage: there is nothing to promote to"]
    assert snapshot(conn) == before
    assert conn.execute("select ok from chat_verify_v11_history()").fetchone() == (True,)


def test_each_observation_window_is_waited_out_by_a_scheduler_running_every_half_second(conn, ingest):
    healthy(conn, 40)
    auto_everywhere(conn, "1 second")
    promoted_at = []
    deadline = time.monotonic() + 30
    while state(conn)["stage"] != "full":
        assert time.monotonic() < deadline
        if run(ingest)["action"] == "auto_promote":
            promoted_at.append(state(conn)["changed_at"])
        time.sleep(0.5)
    assert len(promoted_at) == 5
    gaps = [b - a for a, b in zip(promoted_at[:-1], promoted_at[1:], strict=True)]
    assert all(g >= timedelta(seconds=1) for g in gaps), gaps
    assert [r["action"] for r in history(conn, 6)] == ["auto_promote"] * 5 + ["init"]


def test_the_observation_window_blocks_and_the_next_promotion_time_is_shown(conn, ingest):
    healthy(conn, 40)
    conn.execute("select chat_set_v11_stage_policy('canary_5', '{\"auto_promote\": true}')")
    arrange_state(conn, "promote", "canary_1", False, False)  # canary_1: 30 minutes by default
    since = state(conn)["changed_at"]
    before = snapshot(conn)
    row = run(ingest)
    assert row["action"] == "none"
    assert len(row["blockers"]) == 1 and row["blockers"][0].startswith("stage canary_1 must be observed for 00:30:00")
    assert snapshot(conn) == before
    progression = conn.execute("select auto_promote, next_promotion_at from chat_get_v11_progression()").fetchone()
    assert progression == (True, since + timedelta(minutes=30))


def test_auto_promote_off_is_a_blocker_and_nothing_moves(conn, ingest):
    healthy(conn, 40)
    before = snapshot(conn)
    row = run(ingest)
    assert (row["action"], row["next_stage"]) == ("none", "canary_1")
    assert row["blockers"] == [
        "auto_promote is off for canary_1: promote by hand, or set it with "
        "chat_set_v11_stage_policy('canary_1', '{\"auto_promote\": true}')"
    ]
    assert snapshot(conn) == before
    assert conn.execute("select next_promotion_at from chat_get_v11_progression()").fetchone() == (None,)


def test_the_policy_of_the_stage_promoted_into_decides(conn, ingest):
    healthy(conn, 40)
    auto_everywhere(conn)
    conn.execute("select chat_set_v11_stage_policy('canary_25', '{\"auto_promote\": false}')")
    assert [run(ingest)["action"] for _ in range(3)] == ["auto_promote", "auto_promote", "none"]
    assert state(conn)["stage"] == "canary_5"


def test_approvals_hold_the_progression_until_someone_approves(conn, ingest, db_url):
    healthy(conn, 40)
    auto_everywhere(conn)
    conn.execute("select chat_set_v11_stage_policy('canary_25', '{\"approvals_required\": 1}')")
    assert [run(ingest)["action"] for _ in range(3)] == ["auto_promote", "auto_promote", "none"]
    row = run(ingest)
    assert row["blockers"] == [
        "approvals missing: promotion to canary_25 needs 1 approval(s) from someone other than chat_test_ingest, "
        "0 valid"
    ]
    assert conn.execute("select approvals_missing, next_promotion_at from chat_get_v11_progression()").fetchone() \
        == (1, None)
    with login(db_url, "chat_test_operator") as operator:
        operator.execute("select chat_approve_v11_promotion('canary_25', 'dashboards clean')")
    row = run(ingest)
    assert (row["action"], row["stage"]) == ("auto_promote", "canary_25")
    assert "1 of 1 approvals (chat_test_operator)" in row["detail"]
    assert history(conn, 1)[0]["reason"] == row["detail"]


@pytest.mark.parametrize(
    "arrangement",
    ["frozen", "killed", "p1_incident", "p0_incident", "active_alert"],
)
def test_never_while_frozen_killed_an_incident_is_open_or_an_alert_fires(conn, ingest, arrangement):
    healthy(conn, 40)
    auto_everywhere(conn)
    if arrangement == "frozen":
        arrange_state(conn, "hold", "canary_1", False, True)
        words = "promotion is frozen"
    elif arrangement == "killed":
        arrange_state(conn, "kill", "canary_1", True, True)
        words = "the kill switch is on"
    elif arrangement == "active_alert":
        arrange_state(conn, "promote", "canary_1", False, False)
        conn.execute(
            "select chat_put_v11_active_alerts(jsonb_build_array(jsonb_build_object('alertname', 'ChatAckSpike', "
            "'severity', 'P1', 'startsAt', now() - interval '1 minute', 'fingerprint', 'f00d', 'silenced', false)))"
        )
        words = "alert ChatAckSpike (P1) firing"
    else:
        arrange_state(conn, "promote", "canary_1", False, False)
        severity = "P1" if arrangement == "p1_incident" else "P0"
        conn.execute("select chat_open_v11_incident(%s, 'something is off')", (severity,))
        words = f"({severity}, open: something is off) is open"
    before = snapshot(conn)
    row = run(ingest)
    assert row["action"] == "none"
    assert any(words in b for b in row["blockers"]), row["blockers"]
    assert snapshot(conn) == before


def _only_p0(conn) -> None:
    anchor = scenarios.anchor_now()
    put(conn, healthy_p0(timedelta(minutes=-40), timedelta(0), anchor))


@pytest.mark.parametrize("case", ["no_data", "p1_missing", "p0_stale", "p1_low_volume"])
def test_no_promotion_at_all_when_any_check_is_inconclusive(conn, ingest, case):
    auto_everywhere(conn)
    if case == "no_data":
        pass  # every P0 check: no samples
    elif case == "p1_missing":
        _only_p0(conn)  # P0 healthy; at canary_1 every P1 check has no data
        arrange_state(conn, "promote", "canary_1", False, False)
    elif case == "p0_stale":
        healthy(conn, 40, end_offset=timedelta(minutes=-5))  # the newest bucket is 5 minutes old
        arrange_state(conn, "promote", "canary_1", False, False)
    else:
        _only_p0(conn)
        anchor = scenarios.anchor_now()
        put(conn, [
            {"metric": m, "cohort": cohort, "bucket_start": (anchor - timedelta(seconds=10 * i)).isoformat(),
             "numerator": 0, "denominator": 5}
            for m in ("resync_range_unavailable_rate", "full_state_rate", "forced_resync_rate")
            for cohort in ("canary", "control") for i in range(6)
        ])
        arrange_state(conn, "promote", "canary_1", False, False)
    gates = conn.execute("select rollout_decision, failing_checks from chat_get_v11_release_gates()").fetchone()
    assert gates[0] == "HOLD" and any(f.endswith(": inconclusive") for f in gates[1]), gates
    before = snapshot(conn)
    for _ in range(3):
        row = run(ingest)
        assert row["action"] == "none"
        assert any("inconclusive" in b for b in row["blockers"]), row["blockers"]
    assert snapshot(conn) == before


def test_only_the_ingest_role_runs_the_progression(conn, db_url):
    for user in ("chat_test_reader", "chat_test_operator", "chat_test_admin", "chat_test_nobody"):
        with login(db_url, user) as c:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute("select * from chat_run_v11_progression()")


def test_the_history_check_accepts_auto_promote_and_nothing_unknown(conn):
    with pytest.raises(psycopg.errors.CheckViolation):
        with conn.transaction():
            conn.execute("select chat_v11.lock_state()")
            conn.execute(
                "select chat_v11.apply_transition('auto_demote', 'canary_1', false, false, 'x', null, null, 'test')"
            )
