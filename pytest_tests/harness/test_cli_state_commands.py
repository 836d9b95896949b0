"""The operator's state commands: `chat-rollout hold|kill|resume|promote STAGE|unfreeze REASON`.

Each is one call of chat_set_v11_rollout_state / chat_lift_v11_freeze: the output names the action the database
recorded with the new state in one line, shows the server's NOTICEs, and a refusal is one paragraph (ERROR
<SQLSTATE>, DETAIL, HINT; exit code 1, no traceback). A command whose call would mean another action than its name
(a hold that would resume, a promote that would roll back) is refused and changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg

from chat_rollout import scenarios
from pytest_tests.support.calls import arrange_state, history, invoke, snapshot, state
from pytest_tests.support.samples import healthy, healthy_p0, put, sample


def ok(args: list[str], url: str) -> str:
    result = invoke(args, url)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output


def refused(args: list[str], url: str, sqlstate: str | None) -> str:
    """A refusal: exit code 1, one paragraph with DETAIL and HINT, no traceback, nothing written."""
    with psycopg.connect(url, autocommit=True) as conn:
        before = snapshot(conn)
    result = invoke(args, url)
    assert result.exit_code == 1, result.output
    assert (f"ERROR {sqlstate}: " if sqlstate else "ERROR: ") in result.output, result.output
    assert "DETAIL: " in result.output and "HINT: " in result.output, result.output
    assert "Traceback" not in result.output
    with psycopg.connect(url, autocommit=True) as conn:
        assert snapshot(conn) == before
    return " ".join(result.output.split())


def now(url: str) -> tuple[dict, dict]:
    """(the state, the newest history row)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return state(conn), history(conn, 1)[0]


def test_hold_freezes_at_the_current_stage_and_says_hold(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        arrange_state(conn, "promote", "canary_1", False, False)
    out = ok(["hold", "hold for review"], db_url)
    assert "recorded: hold │ stage canary_1 (1.00 %) │ kill switch off │ promotion frozen │ version 3" in out
    s, last = now(db_url)
    assert (s["stage"], s["kill_switch"], s["promotion_frozen"], s["version"]) == ("canary_1", False, True, 3)
    assert (last["action"], last["reason"], last["to_stage"]) == ("hold", "hold for review", "canary_1")


def test_kill_engages_the_kill_switch_at_the_current_stage_and_again_when_killed(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        arrange_state(conn, "promote", "canary_5", False, False)
    out = ok(["kill", "incident P0"], db_url)
    assert "recorded: kill │ stage canary_5 (5.00 %) │ kill switch ON │ promotion frozen │ version 3" in out
    assert "NOTICE" not in out  # the current stage: no rollback to tell about
    s, last = now(db_url)
    assert (s["stage"], s["kill_switch"], s["promotion_frozen"]) == ("canary_5", True, True)
    assert (last["action"], last["reason"], last["to_kill_switch"]) == ("kill", "incident P0", True)
    assert "recorded: kill" in ok(["kill", "still burning"], db_url)  # never refused
    assert now(db_url)[1]["version"] == 4


def test_promote_then_unfreeze_after_a_hold_with_green_gates(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        healthy(conn, 40)
    out = ok(["promote", "canary_1", "canary 1 %"], db_url)
    assert "recorded: promote │ stage canary_1 (1.00 %) │ kill switch off │ promotion not frozen │ version 2" in out
    s, last = now(db_url)
    assert (s["stage"], s["promotion_frozen"]) == ("canary_1", False)
    assert (last["action"], last["from_stage"], last["reason"]) == ("promote", "off", "canary 1 %")

    # canary_1 has not been observed for its window yet: the database refuses, and says until when
    out = refused(["promote", "canary_5", "too early"], db_url, "RO006")
    assert "has not been observed long enough" in out and "HINT: Wait for the end of the observation window" in out

    ok(["hold", "look at the dashboards"], db_url)
    out = refused(["promote", "canary_5", "while frozen"], db_url, "RO004")
    assert "HINT: Lift the freeze with chat_lift_v11_freeze(reason)" in out
    out = ok(["unfreeze", "gates green"], db_url)
    assert "recorded: unfreeze │ stage canary_1 (1.00 %) │ kill switch off │ promotion not frozen │ version 4" in out
    s, last = now(db_url)
    assert (s["promotion_frozen"], last["action"], last["reason"]) == (False, "unfreeze", "gates green")


def test_refusals_are_one_paragraph_with_exit_code_1_and_change_nothing(db_url):
    out = refused(["promote", "canary_5", "skip a stage"], db_url, "RO003")
    assert "it skips a stage" in out and "chat_set_v11_rollout_state('canary_1', false, reason)" in out
    refused(["promote", "bogus", "no such stage"], db_url, "RO002")
    refused(["hold", "   "], db_url, "RO001")
    out = refused(["unfreeze", "gates are not green"], db_url, "RO009")
    assert "unfreeze refused: the gates are not green" in out

    ok(["kill", "incident P0"], db_url)
    out = refused(["resume", "too soon"], db_url, "RO007")
    assert "the P0 exit criteria do not hold" in out and "HINT: To hold, do nothing" in out
    out = refused(["unfreeze", "kill switch on"], db_url, "RO009")
    assert "unfreeze refused: the kill switch is on" in out


def test_a_command_that_would_mean_another_action_is_refused_and_changes_nothing(db_url):
    # resume with the kill switch off would record a hold
    out = refused(["resume", "nothing to resume"], db_url, None)
    assert "ERROR: resume refused: the kill switch is off" in out and "nothing was written" in out
    # promote to the current stage would be a hold: the call runs and is rolled back
    out = refused(["promote", "off", "same stage"], db_url, None)
    assert "ERROR: promote not recorded: (off, false) would be a hold now, not a promote" in out
    assert "it was rolled back: nothing changed" in out and "HINT: off is the current stage" in out
    # promote to a lower stage would roll back, and its NOTICE is not shown for a call that was rolled back
    with psycopg.connect(db_url, autocommit=True) as conn:
        arrange_state(conn, "promote", "canary_5", False, False)
    out = refused(["promote", "canary_1", "lower stage"], db_url, None)
    assert "would be a rollback now, not a promote" in out and "NOTICE" not in out
    assert "select * from chat_set_v11_rollout_state('canary_1', false, reason)" in out
    # hold with the kill switch on would ask to resume
    ok(["kill", "incident P0"], db_url)
    out = refused(["hold", "just hold"], db_url, None)
    assert "ERROR: hold refused: the kill switch is on, so (canary_5, false) would ask to resume" in out
    assert "HINT: To hold, do nothing: promotion is already frozen while the kill switch is on." in out


def _auto_killed_with_a_clean_exit_window(url: str) -> int:
    """An automatic kill 35 minutes ago opened P0 incident 1; the exit window has been clean since."""
    anchor = scenarios.anchor_now()
    with psycopg.connect(url, autocommit=True) as conn:
        arrange_state(conn, "promote", "canary_1", False, False)
        put(conn, healthy_p0(timedelta(minutes=-60), timedelta(minutes=-36), anchor))
        put(conn, [sample("ack_without_receipt_10s_rate", "canary", anchor - timedelta(minutes=35), 3, 200)])
        put(conn, healthy_p0(timedelta(minutes=-31, seconds=-50), timedelta(0), anchor))
        assert state(conn)["kill_switch"] is True
        return conn.execute("select incident_id from chat_get_v11_incidents() where severity = 'P0'").fetchone()[0]


def test_resume_waits_for_the_incident_commander_then_shows_the_notice(db_url):
    incident_id = _auto_killed_with_a_clean_exit_window(db_url)
    out = refused(["resume", "exit window clean"], db_url, "RO018")
    assert f"P0 incident {incident_id} is not resolved" in out
    assert f"chat_set_v11_incident_status({incident_id}, 'resolved', reason)" in out

    ok(["incident", "status", str(incident_id), "resolved", "P0 exit criteria hold"], db_url)
    out = ok(["resume", "resume controlled"], db_url)
    assert "NOTICE: resume: the kill switch is now OFF and v1.1 traffic flows again at canary_1 (1.00 %)" in out
    assert "recorded: resume │ stage canary_1 (1.00 %) │ kill switch off │ promotion frozen" in out
    s, last = now(db_url)
    assert (s["stage"], s["kill_switch"], s["promotion_frozen"]) == ("canary_1", False, True)
    assert (last["action"], last["reason"]) == ("resume", "resume controlled")


def test_the_root_help_lists_the_state_commands(db_url):
    out = ok(["--help"], db_url)
    for command in ("hold", "kill", "resume", "promote", "unfreeze", "status", "watch", "incident", "migrate"):
        assert command in out
