"""SPEC 4.8: the P0 runbook walked end to end, the checklist showing exactly what is missing at each step."""

from __future__ import annotations

import json
from datetime import timedelta

import psycopg
import pytest

from chat_rollout import scenarios
from pytest_tests.support.calls import arrange_state, history, refused, set_state, state
from pytest_tests.support.samples import healthy_p0, put, sample


def checklist(conn, incident_id) -> dict[int, str]:
    rows = conn.execute("select item, status from chat_get_v11_incident_checklist(%s)", (incident_id,)).fetchall()
    return dict(rows)


def test_the_p0_runbook_end_to_end(conn, postmortem_example):
    anchor = scenarios.anchor_now()
    arrange_state(conn, "promote", "canary_1", False, False)
    put(conn, healthy_p0(timedelta(minutes=-60), timedelta(minutes=-32), anchor))

    # the spike arrives: automatic kill and a P0 incident, in the ingestion transaction
    put(conn, [sample("ack_without_receipt_10s_rate", "canary", anchor - timedelta(minutes=35), 3, 200)])
    s = state(conn)
    assert (s["kill_switch"], s["promotion_frozen"]) == (True, True)
    incident_id, severity, status = conn.execute(
        "select incident_id, severity, status from chat_get_v11_incidents()"
    ).fetchone()
    assert (severity, status) == ("P0", "open")
    last = history(conn, 1)[0]
    assert (last["action"], last["incident_id"]) == ("auto_kill", incident_id)
    assert checklist(conn, incident_id) == {
        1: "done",
        2: "not done",
        3: "done",
        4: "done",
        5: "not done",
        6: "not done",
        7: "not done",
        8: "not done",
        9: "not done",
        10: "not done",
        11: "done",
    }

    # the first five minutes: roles, SQL snapshot, a decision
    conn.execute("select chat_set_v11_incident_role(%s, 'IC', 'alice')", (incident_id,))
    conn.execute("select chat_set_v11_incident_role(%s, 'scribe', 'bob')", (incident_id,))
    snap = conn.execute("select body from chat_snapshot_v11_incident(%s)", (incident_id,)).fetchone()[0]
    assert "gate_p0_ok=" in snap and "kill switch true" in snap
    data = conn.execute(
        "select data from chat_v11.incident_entry where incident_id = %s and kind = 'snapshot'", (incident_id,)
    ).fetchone()[0]
    assert set(data) == {"release_gates", "gate_checks", "rollout_state", "rollout_history"}
    assert data["rollout_state"]["kill_switch"] is True
    conn.execute("select chat_log_v11_incident(%s, 'decision', 'keep the kill switch on')", (incident_id,))
    roles = conn.execute("select roles from chat_get_v11_incidents()").fetchone()[0]
    assert roles == "IC=alice, scribe=bob"
    assert checklist(conn, incident_id)[2] == "done"

    # the P0 runbook: client fallback confirmed, root cause by layer
    conn.execute(
        "select chat_log_v11_incident(%s, 'fallback_confirmed', 'status_write after 3-5 s, unknown -> "
        "resync_stream confirmed on web and mobile')",
        (incident_id,),
    )
    conn.execute(
        "select chat_log_v11_incident(%s, 'root_cause', 'backend: receipt not emitted for duplicate ACKs')",
        (incident_id,),
    )
    items = checklist(conn, incident_id)
    assert (items[5], items[6], items[7], items[8]) == ("done", "done", "not done", "not done")

    # resolving too early is refused: the feed has not covered the exit window yet
    err = refused(conn, "select * from chat_set_v11_incident_status(%s, 'resolved', 'looks fine')", (incident_id,))
    assert err.diag.sqlstate == "RO033" and err.diag.message_hint
    err = refused(conn, "select * from chat_set_v11_rollout_state('canary_1', false, 'resume controlled')")
    assert err.diag.sqlstate == "RO007"

    # the clean window arrives (the exporter catches up): exit criteria met; the resume still waits for the IC
    put(conn, healthy_p0(timedelta(minutes=-31, seconds=-50), timedelta(0), anchor))
    assert checklist(conn, incident_id)[7] == "done"
    gates = conn.execute("select open_incident_id, blockers from chat_get_v11_release_gates()").fetchone()
    assert gates[0] == incident_id
    assert any(f"incident {incident_id} (P0, open" in b for b in gates[1])
    err = refused(conn, "select * from chat_set_v11_rollout_state('canary_1', false, 'resume controlled')")
    assert err.diag.sqlstate == "RO018"

    # the IC confirms the exit criteria by resolving, then the controlled resume goes through
    conn.execute("select chat_set_v11_incident_status(%s, 'resolved', 'exit criteria held')", (incident_id,))
    assert conn.execute("select open_incident_id from chat_get_v11_release_gates()").fetchone()[0] is None
    resumed = set_state(conn, "canary_1", False, "resume controlled")
    assert (resumed["kill_switch"], resumed["promotion_frozen"], resumed["action"]) == (False, True, "resume")
    assert checklist(conn, incident_id)[8] == "done"

    # closing needs the postmortem, complete
    err = refused(conn, "select * from chat_close_v11_incident(%s, 'done')", (incident_id,))
    assert err.diag.sqlstate == "RO034"
    no_owner = json.loads(json.dumps(postmortem_example))
    no_owner["action_items"][1]["owner"] = ""
    err = refused(conn, "select * from chat_put_v11_postmortem(%s, %s::jsonb)", (incident_id, json.dumps(no_owner)))
    assert err.diag.sqlstate == "RO035" and "action item 2: owner is missing" in err.diag.message_detail
    no_deadline = json.loads(json.dumps(postmortem_example))
    del no_deadline["action_items"][0]["deadline"]
    err = refused(conn, "select * from chat_put_v11_postmortem(%s, %s::jsonb)", (incident_id, json.dumps(no_deadline)))
    assert err.diag.sqlstate == "RO035" and "deadline" in err.diag.message_detail
    conn.execute("select chat_put_v11_postmortem(%s, %s::jsonb)", (incident_id, json.dumps(postmortem_example)))
    items = checklist(conn, incident_id)
    assert all(status in ("done", "n/a") for status in items.values()), items
    closed = conn.execute("select status from chat_close_v11_incident(%s, 'postmortem reviewed')", (incident_id,))
    assert closed.fetchone()[0] == "closed"
    err = refused(conn, "select * from chat_log_v11_incident(%s, 'fact', 'late note')", (incident_id,))
    assert err.diag.sqlstate == "RO036"

    # the postmortem's first section: one UTC timeline
    timeline = conn.execute("select source, kind, body from chat_get_v11_incident_timeline(%s)", (incident_id,))
    rows = timeline.fetchall()
    sources = {r[0] for r in rows}
    assert sources == {"incident", "rollout", "gates"}
    kinds = [r[1] for r in rows if r[0] == "incident"]
    assert kinds[0] == "opened" and kinds[-1] == "status"
    assert [r[1] for r in rows if r[0] == "rollout"][-2:] == ["auto_kill", "resume"]
    assert any("ROLLBACK" in r[2] for r in rows if r[0] == "gates")


def test_a_p1_incident_escalates_to_p0_by_itself_when_a_duplicate_arrives(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    incident_id = conn.execute("select incident_id from chat_open_v11_incident('P1', 'resync range spike')").fetchone()[
        0
    ]
    s = state(conn)
    assert (s["kill_switch"], s["promotion_frozen"]) == (False, True)  # P1 freezes, no kill
    assert history(conn, 1)[0]["action"] == "hold"
    put(conn, [sample("timeline_duplicate_detected_rate", "canary", scenarios.anchor_now(), 1, 300)])
    severity = conn.execute("select severity from chat_get_v11_incidents()").fetchone()[0]
    assert severity == "P0"
    entry = conn.execute(
        "select body, data from chat_v11.incident_entry where incident_id = %s and kind = 'escalation'",
        (incident_id,),
    ).fetchone()
    assert "P1 -> P0" in entry[0] and "timeline_duplicate_detected_rate" in entry[0]
    assert entry[1]["evidence"][0]["metric"] == "timeline_duplicate_detected_rate"
    assert state(conn)["kill_switch"] is True
    assert (history(conn, 1)[0]["action"], history(conn, 1)[0]["incident_id"]) == ("auto_kill", incident_id)
    assert conn.execute("select count(*) from chat_v11.incident").fetchone()[0] == 1  # escalated, not a second one


def test_promotion_is_refused_while_a_p1_incident_is_open_naming_it(conn):
    arrange_state(conn, "promote", "canary_1", False, False)
    incident_id = conn.execute("select incident_id from chat_open_v11_incident('P1', 'full_state spike')").fetchone()[0]
    blockers = conn.execute("select blockers from chat_get_v11_release_gates()").fetchone()[0]
    assert f"incident {incident_id} (P1, open: full_state spike) is open" in blockers
    err = refused(conn, "select * from chat_lift_v11_freeze('try to unfreeze')")
    assert err.diag.sqlstate == "RO009" and f"incident {incident_id}" in err.diag.message_detail
    err = refused(conn, "select * from chat_set_v11_rollout_state('canary_5', false, 'promote')")
    assert err.diag.sqlstate in ("RO004", "RO005")


def test_opening_a_p0_engages_the_kill_switch_unless_it_is_on(conn):
    arrange_state(conn, "promote", "canary_5", False, False)
    opened = conn.execute(
        "select incident_id, rollout_version from chat_open_v11_incident('P0', 'ACK without receipt')"
    )
    incident_id, version = opened.fetchone()
    last = history(conn, 1)[0]
    assert (last["version"], last["action"], last["incident_id"]) == (version, "kill", incident_id)
    assert f"incident {incident_id} P0" in last["reason"]
    second = conn.execute("select rollout_version from chat_open_v11_incident('P0', 'another')").fetchone()[0]
    assert second is None  # already killed and frozen: nothing more to do


def test_a_p2_incident_changes_nothing_in_the_rollout(conn):
    before = state(conn)
    conn.execute("select chat_open_v11_incident('P2', 'old client sends v1.0 frames')")
    assert state(conn) == before
    items = dict(conn.execute("select item, status from chat_get_v11_incident_checklist(1)").fetchall())
    assert (items[3], items[4], items[5], items[7], items[8]) == ("n/a",) * 5


def test_raising_a_severity_applies_its_effect(conn):
    incident_id = conn.execute("select incident_id from chat_open_v11_incident('P2', 'local errors')").fetchone()[0]
    conn.execute("select chat_set_v11_incident_severity(%s, 'P1', 'errors spread to many users')", (incident_id,))
    assert state(conn)["promotion_frozen"] is True
    version = conn.execute(
        "select rollout_version from chat_set_v11_incident_severity(%s, 'P0', 'receipts missing')", (incident_id,)
    ).fetchone()[0]
    assert state(conn)["kill_switch"] is True and state(conn)["version"] == version
    kinds = [
        r[0]
        for r in conn.execute(
            "select kind from chat_v11.incident_entry where incident_id = %s order by entry_id", (incident_id,)
        )
    ]
    assert kinds == ["opened", "escalation", "escalation"]


@pytest.mark.parametrize(
    "sql,sqlstate",
    [
        ("select * from chat_open_v11_incident('P3', 'x')", "RO031"),
        ("select * from chat_open_v11_incident('P1', '  ')", "RO001"),
        ("select * from chat_log_v11_incident(99, 'fact', 'x')", "RO030"),
        ("select * from chat_log_v11_incident(1, 'rumour', 'x')", "RO031"),
        ("select * from chat_log_v11_incident(1, 'root_cause', 'it was the network probably')", "RO031"),
        ("select * from chat_set_v11_incident_role(1, 'CEO', 'dan')", "RO031"),
        ("select * from chat_set_v11_incident_status(1, 'closed', 'x')", "RO032"),
        ("select * from chat_set_v11_incident_status(1, 'sleeping', 'x')", "RO032"),
        ("select * from chat_close_v11_incident(1, 'x')", "RO032"),
        ("select * from chat_put_v11_postmortem(1, '[]')", "RO035"),
        ("select * from chat_get_v11_incident_checklist(42)", "RO030"),
        ("select * from chat_get_v11_incident_timeline(42)", "RO030"),
    ],
)
def test_incident_refusals_carry_project_sqlstates_and_change_nothing(conn, sql, sqlstate):
    conn.execute("select chat_open_v11_incident('P2', 'a P2 to refuse things on')")
    before = conn.execute("select count(*), max(entry_id) from chat_v11.incident_entry").fetchone()
    incidents = conn.execute("select * from chat_v11.incident order by incident_id").fetchall()
    err = refused(conn, sql)
    assert err.diag.sqlstate == sqlstate
    assert err.diag.message_hint
    assert conn.execute("select count(*), max(entry_id) from chat_v11.incident_entry").fetchone() == before
    assert conn.execute("select * from chat_v11.incident order by incident_id").fetchall() == incidents


@pytest.mark.parametrize(
    "statement",
    [
        "update chat_v11.incident_entry set body = 'nothing happened'",
        "delete from chat_v11.incident_entry",
        "truncate chat_v11.incident_entry cascade",
    ],
)
def test_nobody_rewrites_a_timeline_entry_not_even_the_owner(conn, statement):
    conn.execute("select chat_open_v11_incident('P2', 'a P2 with an entry')")
    with pytest.raises(psycopg.Error) as info:
        conn.execute(statement)
    assert info.value.diag.sqlstate == "RO012"


def test_readers_see_incidents_and_cannot_change_them(conn):
    conn.execute("select chat_open_v11_incident('P2', 'visible to readers')")
    with conn.transaction():
        conn.execute("set local role chat_rollout_reader")
        assert conn.execute("select count(*) from chat_get_v11_incidents()").fetchone()[0] == 1
        assert len(conn.execute("select * from chat_get_v11_incident_checklist(1)").fetchall()) == 11
    with pytest.raises(psycopg.Error) as info:
        with conn.transaction():
            conn.execute("set local role chat_rollout_reader")
            conn.execute("select chat_log_v11_incident(1, 'fact', 'reader tries')")
    assert info.value.diag.sqlstate == "42501"


def test_the_decision_cadence_shows_overdue_after_ten_minutes(conn):
    conn.execute("select chat_open_v11_incident('P1', 'cadence')")
    with conn.transaction():  # a superuser moves the declaration back in time (test arrangement)
        conn.execute("set local session_replication_role = replica")
        conn.execute("update chat_v11.incident set opened_at = now() - interval '11 minutes'")
    items = dict(conn.execute("select item, status from chat_get_v11_incident_checklist(1)").fetchall())
    assert items[11] == "overdue"
    assert conn.execute("select decision_overdue from chat_get_v11_incidents()").fetchone()[0] is True
    conn.execute("select chat_log_v11_incident(1, 'decision', 'hold the rollout, watch resync')")
    items = dict(conn.execute("select item, status from chat_get_v11_incident_checklist(1)").fetchall())
    assert items[11] == "done"
