"""SPEC 4.8: one incident at a time (a declaration joins the open one) and a close that re-checks the exit criteria."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import psycopg
import pytest

from chat_rollout import scenarios
from chat_rollout.utc import utc
from pytest_tests.support.calls import arrange_state, history, refused, set_state, state
from pytest_tests.support.samples import healthy_p0, put, sample


def notices(conn) -> list[str]:
    """Collects the NOTICE messages the server sends on this connection (not the guardrail's WARNING)."""
    seen: list[str] = []
    conn.add_notice_handler(
        lambda diag: seen.append(diag.message_primary) if diag.severity_nonlocalized == "NOTICE" else None
    )
    return seen


def declare(conn, severity: str, summary: str) -> dict:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("select * from chat_open_v11_incident(%s, %s)", (severity, summary)).fetchone()


def entries(conn, incident_id) -> list[tuple]:
    return conn.execute(
        "select kind, body, data from chat_v11.incident_entry where incident_id = %s order by entry_id", (incident_id,)
    ).fetchall()


def incidents(conn) -> list[tuple]:
    return conn.execute("select * from chat_v11.incident order by incident_id").fetchall()


def automatic_kill(conn) -> tuple:
    """Canary at 1 %, then an ACK-without-receipt spike: the guardrail kills and opens P0 incident 1."""
    anchor = scenarios.anchor_now()
    arrange_state(conn, "promote", "canary_1", False, False)
    put(conn, healthy_p0(timedelta(minutes=-60), timedelta(minutes=-32), anchor))
    put(conn, [sample("ack_without_receipt_10s_rate", "canary", anchor - timedelta(minutes=35), 3, 200)])
    rows = conn.execute("select incident_id, severity, opened_actor from chat_v11.incident").fetchall()
    assert rows == [(1, "P0", "guardrail")]
    assert state(conn)["kill_switch"] is True
    return anchor, rows[0][0]


def resolved_p0(conn) -> tuple:
    """Incident 1 of the automatic kill, resolved once a clean exit window arrived (kill switch still on)."""
    anchor, incident_id = automatic_kill(conn)
    put(conn, healthy_p0(timedelta(minutes=-31, seconds=-50), timedelta(0), anchor))
    conn.execute("select chat_set_v11_incident_status(%s, 'resolved', 'exit criteria held')", (incident_id,))
    return anchor, incident_id


def test_the_operators_declaration_after_an_automatic_kill_joins_the_guardrails_incident(conn):
    _, incident_id = automatic_kill(conn)
    version = state(conn)["version"]
    seen = notices(conn)

    row = declare(conn, "P0", "ACK without receipt on canary")  # playbook section 4.1, step 1

    assert (row["incident_id"], row["severity"], row["status"]) == (incident_id, "P0", "open")
    assert row["summary"].startswith("automatic kill: ") and row["rollout_version"] is None
    assert len(incidents(conn)) == 1
    assert state(conn)["version"] == version  # already killed and frozen: no second kill
    kinds = [e[0] for e in entries(conn, incident_id)]
    assert kinds == ["opened", "fact"]
    kind, body, data = entries(conn, incident_id)[-1]
    assert body == "P0 declaration joined this incident (one incident at a time): ACK without receipt on canary"
    assert data["declaration"] == {
        "severity": "P0",
        "summary": "ACK without receipt on canary",
        "incident_severity": "P0",
        "incident_status": "open",
    }
    assert len(seen) == 1
    assert seen[0].startswith(f"incident {incident_id} is already open (P0, opened by guardrail at ")
    assert seen[0].endswith(" UTC): this declaration joined it")


def test_a_p0_declaration_while_a_p2_is_open_raises_it_to_p0_and_engages_the_kill_switch(conn):
    arrange_state(conn, "promote", "canary_5", False, False)
    p2 = declare(conn, "P2", "old client sends v1.0 frames")
    seen = notices(conn)

    row = declare(conn, "P0", "receipts missing")

    assert (row["incident_id"], row["severity"], row["status"]) == (p2["incident_id"], "P0", "open")
    assert row["summary"] == "old client sends v1.0 frames"
    assert len(incidents(conn)) == 1
    s = state(conn)
    assert (s["kill_switch"], s["promotion_frozen"], s["version"]) == (True, True, row["rollout_version"])
    last = history(conn, 1)[0]
    assert (last["action"], last["incident_id"]) == ("kill", p2["incident_id"])
    timeline = entries(conn, p2["incident_id"])
    assert [e[0] for e in timeline] == ["opened", "fact", "escalation"]
    assert timeline[2][1].startswith("severity P2 -> P0: a P0 declaration joined it: receipts missing")
    user = conn.execute("select session_user").fetchone()[0]
    opened = utc(p2["opened_at"], "plain")
    assert len(seen) == 1
    assert seen[0].startswith(f"incident {p2['incident_id']} is already open (P2, opened by {user} at {opened} UTC)")
    assert seen[0].endswith(": this declaration joined it, severity P2 -> P0")


def test_a_lower_declaration_joins_without_lowering_the_severity_or_touching_the_rollout(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    p1 = declare(conn, "P1", "resync range spike")
    before = (state(conn), history(conn))
    seen = notices(conn)

    row = declare(conn, "P2", "a few clients see stale avatars")

    assert (row["incident_id"], row["severity"], row["rollout_version"]) == (p1["incident_id"], "P1", None)
    assert (state(conn), history(conn)) == before
    assert [e[0] for e in entries(conn, p1["incident_id"])] == ["opened", "fact"]
    assert len(seen) == 1 and seen[0].endswith(": this declaration joined it")


def test_a_declaration_joins_a_resolved_incident_and_a_p0_one_reopens_it(conn):
    _, incident_id = resolved_p0(conn)
    seen = notices(conn)

    p2 = declare(conn, "P2", "banner typo")  # joins, the resolved incident stays resolved
    assert (p2["incident_id"], p2["severity"], p2["status"]) == (incident_id, "P0", "resolved")
    assert seen[-1].startswith(f"incident {incident_id} is already open (P0, resolved, opened by guardrail at ")

    p0 = declare(conn, "P0", "ACK without receipt again")
    assert (p0["incident_id"], p0["severity"], p0["status"]) == (incident_id, "P0", "open")
    assert seen[-1].endswith(": this declaration joined it, status resolved -> open")
    assert conn.execute("select resolved_at from chat_v11.incident").fetchone()[0] is None
    assert len(incidents(conn)) == 1
    assert [e[0] for e in entries(conn, incident_id)][-3:] == ["fact", "fact", "status"]
    # the gates see it active again, so the freeze cannot be lifted past it
    assert conn.execute("select open_incident_id from chat_get_v11_release_gates()").fetchone()[0] == incident_id
    err = refused(conn, "select * from chat_close_v11_incident(%s, 'done')", (incident_id,))
    assert err.diag.sqlstate == "RO032"


def test_a_declaration_after_the_close_opens_a_new_incident(conn, postmortem_example):
    first = declare(conn, "P2", "typo in a banner")
    conn.execute(
        "select chat_put_v11_postmortem(%s, %s::jsonb)", (first["incident_id"], json.dumps(postmortem_example))
    )
    conn.execute("select chat_set_v11_incident_status(%s, 'resolved', 'fixed')", (first["incident_id"],))
    conn.execute("select chat_close_v11_incident(%s, 'reviewed')", (first["incident_id"],))
    seen = notices(conn)

    second = declare(conn, "P2", "another typo")

    assert second["incident_id"] != first["incident_id"] and second["status"] == "open"
    assert [r[0] for r in conn.execute("select status from chat_v11.incident order by incident_id")] == [
        "closed",
        "open",
    ]
    assert seen == []


def _wait_until_waiting_for_a_lock(conn, pids: list[int], timeout: float = 1.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = conn.execute(
            "select count(*) from pg_stat_activity where pid = any(%s) and wait_event_type = 'Lock'", (pids,)
        ).fetchone()[0]
        if waiting == len(pids):
            return
        time.sleep(0.01)
    raise AssertionError(f"backends {pids} never waited for the state lock")


def _race(db_url: str, conn, calls: list[tuple[str, tuple]]) -> list:
    """Runs each call on its own connection while `conn` holds the state row, then lets them go at once."""
    racers = [psycopg.connect(db_url, autocommit=True) for _ in calls]
    results: list = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = racers[i].execute(calls[i][0], calls[i][1]).fetchall()
        except psycopg.Error as exc:  # pragma: no cover - reported by the assertion below
            results[i] = exc

    try:
        with conn.transaction():
            conn.execute("select 1 from chat_v11.rollout_state for update")
            threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
            for t in threads:
                t.start()
            _wait_until_waiting_for_a_lock(conn, [r.info.backend_pid for r in racers])
        for t in threads:
            t.join(10)
    finally:
        for r in racers:
            r.close()
    assert not [r for r in results if isinstance(r, Exception)], results
    return results


def test_two_concurrent_declarations_produce_one_incident(conn, db_url):
    arrange_state(conn, "promote", "canary_1", False, False)

    results = _race(
        db_url,
        conn,
        [
            ("select incident_id, severity from chat_open_v11_incident('P1', 'resync range spike')", ()),
            ("select incident_id, severity from chat_open_v11_incident('P0', 'ACK without receipt')", ()),
        ],
    )

    assert len(incidents(conn)) == 1
    assert {r[0][0] for r in results} == {1}
    assert conn.execute("select severity, status from chat_v11.incident").fetchone() == ("P0", "open")
    kinds = sorted(e[0] for e in entries(conn, 1))
    assert kinds in (["fact", "opened"], ["escalation", "fact", "opened"])  # P0 first, or P1 raised by the P0
    assert state(conn)["kill_switch"] is True


def test_a_declaration_racing_the_guardrails_automatic_kill_produces_one_incident(conn, db_url):
    anchor = scenarios.anchor_now()
    arrange_state(conn, "promote", "canary_1", False, False)
    put(conn, healthy_p0(timedelta(minutes=-60), timedelta(minutes=-32), anchor))
    spike = [sample("ack_without_receipt_10s_rate", "canary", anchor - timedelta(minutes=35), 3, 200)]

    _race(
        db_url,
        conn,
        [
            ("select chat_put_v11_metric_samples(%s::jsonb)", (json.dumps(spike),)),
            ("select incident_id from chat_open_v11_incident('P1', 'receipts look late')", ()),
        ],
    )

    rows = conn.execute("select incident_id, severity, status from chat_v11.incident").fetchall()
    assert rows == [(1, "P0", "open")]
    assert state(conn)["kill_switch"] is True
    # whoever locked first, the guardrail's kill lands under incident 1 (opened by it, or the P1 escalated to P0)
    assert (history(conn, 1)[0]["action"], history(conn, 1)[0]["incident_id"]) == ("auto_kill", 1)


def test_a_relapse_after_resolved_blocks_the_close_until_the_exit_criteria_hold_again(conn, postmortem_example):
    anchor, incident_id = resolved_p0(conn)
    conn.execute("select chat_put_v11_postmortem(%s, %s::jsonb)", (incident_id, json.dumps(postmortem_example)))
    items = dict(conn.execute("select item, status from chat_get_v11_incident_checklist(%s)", (incident_id,)))
    assert items[7] == "done"

    # the relapse: the P0 feed goes silent (the exporter died) — no event reaches the ingestion guardrail, so only
    # the close's own re-check can see that the exit criteria fail now (an event would reopen the incident, below)
    conn.execute("delete from chat_v11.metric_sample where bucket_start > %s", (anchor - timedelta(minutes=3),))
    assert len(incidents(conn)) == 1
    evidence = dict(conn.execute("select item, evidence from chat_get_v11_incident_checklist(%s)", (incident_id,)))
    assert evidence[7].startswith("held when resolved at ") and "fail now" in evidence[7]
    before = (incidents(conn), entries(conn, incident_id), state(conn), history(conn))

    err = refused(conn, "select * from chat_close_v11_incident(%s, 'postmortem reviewed')", (incident_id,))

    assert err.diag.sqlstate == "RO037"
    assert err.diag.message_primary.startswith(
        f"incident {incident_id} cannot be closed: its P0 exit criteria fail now (they held when it was resolved at "
    )
    assert "ack_without_receipt_10s_rate" in err.diag.message_detail and "stale" in err.diag.message_detail
    assert f"chat_set_v11_incident_status({incident_id}, 'open', reason)" in err.diag.message_hint
    assert "kill switch on" in err.diag.message_hint
    assert (incidents(conn), entries(conn, incident_id), state(conn), history(conn)) == before

    # the exporter catches up: the criteria hold again, the close goes through
    put(conn, healthy_p0(timedelta(minutes=-3), timedelta(0), anchor))
    closed = conn.execute("select status from chat_close_v11_incident(%s, 'postmortem reviewed')", (incident_id,))
    assert closed.fetchone()[0] == "closed"
    assert entries(conn, incident_id)[-1][1] == "status resolved -> closed: postmortem reviewed"


@pytest.mark.parametrize("severity", ["P0", "P1", "P2"])
def test_the_declaration_refusals_still_come_first_and_change_nothing(conn, severity):
    first = declare(conn, severity, "the open one")
    before = (incidents(conn), entries(conn, first["incident_id"]), state(conn))
    assert refused(conn, "select * from chat_open_v11_incident('P7', 'x')").diag.sqlstate == "RO031"
    assert refused(conn, "select * from chat_open_v11_incident('P0', ' ')").diag.sqlstate == "RO001"
    assert (incidents(conn), entries(conn, first["incident_id"]), state(conn)) == before


def test_a_relapse_after_resolved_reopens_the_incident_instead_of_opening_a_second_one(conn):
    """The guardrail keeps one incident at a time too: a P0 event after the IC resolved the incident (and the
    rollout resumed) reopens it and kills again under it."""
    anchor = scenarios.anchor_now()
    arrange_state(conn, "promote", "canary_1", False, False)
    put(conn, healthy_p0(timedelta(minutes=-60), timedelta(minutes=-36), anchor))
    put(conn, [sample("ack_without_receipt_10s_rate", "canary", anchor - timedelta(minutes=35), 3, 200)])
    put(conn, healthy_p0(timedelta(minutes=-31, seconds=-50), timedelta(0), anchor))
    (incident_id,) = conn.execute("select incident_id from chat_get_v11_incidents()").fetchone()
    conn.execute("select chat_set_v11_incident_status(%s, 'resolved', 'exit criteria held')", (incident_id,))
    assert set_state(conn, "canary_1", False, "resume controlled")["action"] == "resume"

    put(conn, [sample("read_rollback_detected_rate", "canary", anchor, 1, 200)])
    rows = conn.execute("select incident_id, severity, status from chat_get_v11_incidents()").fetchall()
    assert rows == [(incident_id, "P0", "open")]
    last = history(conn, 1)[0]
    assert (last["action"], last["incident_id"]) == ("auto_kill", incident_id)
    kinds = [
        r[0]
        for r in conn.execute(
            "select kind from chat_v11.incident_entry where incident_id = %s order by entry_id", (incident_id,)
        ).fetchall()
    ]
    assert kinds[-1] == "status" or "status" in kinds[-3:]
