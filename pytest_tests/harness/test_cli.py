"""The operator CLI (SPEC section 5): status, watch, migrate, db url, demo, and how errors are reported.

The seed command has its own module (test_seed.py).

Every test runs against the harness's server through DATABASE_URL; none starts the persistent embedded server.
"""

from __future__ import annotations

import io
import json
import os
import threading

import psycopg
import pytest
from alembic.script import ScriptDirectory
from rich.console import Console

from chat_rollout import cli
from chat_rollout import server as server_module
from chat_rollout.demo import run_demo
from chat_rollout.migrate import alembic_config
from chat_rollout.server import ServerUnavailable
from pytest_tests.support.calls import arrange_state, history, invoke, set_state, state, wait_for_listener
from pytest_tests.support.databases import drop_database

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def demo_console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=120, no_color=True, highlight=False), buffer


# --- the demo walk --------------------------------------------------------------------------------


def test_run_demo_replays_the_p0_incident_on_a_fresh_database(db_url):
    console, buffer = demo_console()
    assert run_demo(db_url, console) is True
    out = buffer.getvalue()

    with psycopg.connect(db_url, autocommit=True) as conn:
        s = state(conn)
        assert (s["stage"], s["kill_switch"], s["promotion_frozen"], s["version"]) == ("canary_25", False, False, 9)
        rows = history(conn)[1:]  # below the chapter 7 auto_promote (v9): the incident's story
        assert history(conn)[0]["action"] == "auto_promote" and history(conn)[0]["actor"] == "guardrail"
        assert [(r["version"], r["action"], r["from_stage"], r["to_stage"], r["to_kill_switch"]) for r in rows] == [
            (8, "promote", "canary_1", "canary_5", False),
            (7, "unfreeze", "canary_1", "canary_1", False),
            (6, "resume", "canary_1", "canary_1", False),
            (5, "kill", "canary_1", "canary_1", True),
            (4, "auto_kill", "canary_1", "canary_1", True),
            (3, "hold", "canary_1", "canary_1", False),
            (2, "promote", "off", "canary_1", False),
            (1, "init", None, "off", False),
        ]
        by_action = {r["action"]: r for r in rows}
        auto_kill = by_action["auto_kill"]
        assert auto_kill["actor"] == "guardrail"
        assert "ack_without_receipt_10s_rate = " in auto_kill["reason"]
        assert auto_kill["gate_snapshot"]["gate_p0_ok"] is False
        assert auto_kill["gate_snapshot"]["rollout_decision"] == "ROLLBACK"
        assert [r["reason"] for r in rows[:6]] == [
            "canary 5 %",
            "gates green after the controlled resume",
            "resume controlled",
            "incident P0",
            auto_kill["reason"],
            "hold",
        ]
        assert rows[0]["gate_snapshot"]["rollout_decision"] == "PROCEED"
        verified = conn.execute("select ok, rows_checked from public.chat_verify_v11_history()").fetchone()
        assert verified == (True, 9)
        audited = conn.execute(
            "select target, target_key, new_value ->> 'min_observation' from chat_v11.config_change"
        ).fetchall()
        assert audited[0] == ("stage", "canary_1", "00:00:00")  # chapter 6; chapter 7 then sets canary_5 and a policy
        assert [(t, k) for t, k, _ in audited[1:]] == [("stage", "canary_5"), ("stage_policy", "canary_25")]
        samples = conn.execute(
            "select count(*), max(numerator) filter (where metric = 'ack_without_receipt_10s_rate') "
            "from chat_v11.metric_sample"
        ).fetchone()
        # the story's samples: the live feed, the older buckets up to the spike, the buckets after it
        assert samples == (1620 + 2448 + 2700, 3)

        # the incident, as data: declared by the guardrail with the kill, worked through, closed with its postmortem
        incidents = conn.execute(
            "select incident_id, severity, status, roles, has_postmortem, resolved_at, closed_at "
            "from public.chat_get_v11_incidents()"
        ).fetchall()
        assert len(incidents) == 1
        incident_id, severity, status, roles, has_postmortem, resolved_at, closed_at = incidents[0]
        assert (severity, status, has_postmortem) == ("P0", "closed", True)
        assert roles == "IC=alice, backend=carol, scribe=bob"
        assert resolved_at < closed_at
        # the resume (version 6) comes after the IC resolved the incident: no incident is open then
        assert [(r["version"], r["incident_id"]) for r in rows if r["incident_id"] is not None] == [
            (5, incident_id),
            (4, incident_id),
        ]
        checklist = dict(
            conn.execute(
                "select item, status from public.chat_get_v11_incident_checklist(%s)", (incident_id,)
            ).fetchall()
        )
        assert checklist == {**{item: "done" for item in range(1, 11)}, 11: "n/a"}
        kinds = [
            r[0]
            for r in conn.execute(
                "select kind from chat_v11.incident_entry where incident_id = %s order by entry_id", (incident_id,)
            )
        ]
        assert kinds == [
            "opened",
            "role",
            "role",
            "role",
            "snapshot",
            "decision",
            "fact",
            "fallback_confirmed",
            "root_cause",
            "exit_criteria",
            "status",
            "postmortem",
            "status",
        ]
        postmortem = conn.execute(
            "select postmortem from chat_v11.incident where incident_id = %s", (incident_id,)
        ).fetchone()[0]
        assert sorted(item["kind"] for item in postmortem["action_items"]) == ["alert", "guardrail", "test"]
        assert all(item["owner"] and item["deadline"] for item in postmortem["action_items"])
        assert len(postmortem["decision_log"]) == 7 and postmortem["decision_log"][0].startswith("v2 ")
        assert postmortem["root_cause"]["technical"] and postmortem["root_cause"]["process"]

    # the playbook's calls, verbatim, and each refusal with its SQLSTATE, DETAIL and HINT
    for call in (
        "select * from public.chat_get_v11_release_gates();",
        "select * from public.chat_get_v11_rollout_state();",
        "select * from public.chat_get_v11_rollout_history(50);",
        "select * from public.chat_set_v11_rollout_state('canary_1', false, 'hold');",
        "select * from public.chat_set_v11_rollout_state('canary_1', true, 'incident P0');",
        "select * from public.chat_set_v11_rollout_state('canary_1', false, 'resume controlled');",
        "select * from public.chat_lift_v11_freeze('gates green after the controlled resume');",
        "select * from public.chat_set_v11_stage_settings('canary_1', null, '0');",
        "select * from public.chat_get_v11_incidents();",
        f"select * from public.chat_get_v11_incident_checklist({incident_id});",
        f"select * from public.chat_set_v11_incident_role({incident_id}, 'IC', 'alice');",
        f"select * from public.chat_snapshot_v11_incident({incident_id});",
        f"select * from public.chat_log_v11_incident({incident_id}, 'decision',",
        f"select * from public.chat_log_v11_incident({incident_id}, 'fallback_confirmed',",
        f"select * from public.chat_log_v11_incident({incident_id}, 'root_cause',",
        f"select * from public.chat_set_v11_incident_status({incident_id}, 'resolved', 'P0 exit criteria hold');",
        f"select * from public.chat_put_v11_postmortem({incident_id}, $1::jsonb);",
        f"select * from public.chat_close_v11_incident({incident_id}, 'postmortem reviewed');",
        f"select * from public.chat_get_v11_incident_timeline({incident_id});",
    ):
        assert call in out, call
    for sqlstate in ("RO005", "RO006", "RO007", "RO008", "RO018", "RO032", "RO034", "RO035", "RO036"):
        assert f"ERROR {sqlstate}: " in out
    assert "DETAIL: gate_p0_ok is false" in out  # every HINT is shown with verbose (test_demo_story.py)
    assert "exporter=# SET chat.actor = 'exporter';" in out
    assert "WARNING: chat-rollout: auto_kill by the P0 guardrail" in out
    notified = [line for line in out.splitlines() if line.startswith('Asynchronous notification "chat_v11_rollout"')]
    assert len(notified) == 1 and "auto_kill" in notified[0] and "guardrail" in notified[0]
    assert "p_at => '" in out and "ROLLBACK" in out
    assert "kill switch ON, frozen, v4 │ last: auto_kill by guardrail" in out  # the standing line after a step
    # declared with the kill: 1 severity, 3 freeze, 4 kill switch, 11 cadence; 7 waits for the exit window
    assert f"incident {incident_id} P0 open │ checklist 4 done, 7 to do │ no roles named yet" in out
    assert f"incident {incident_id} P0 closed │ checklist 10 done, 1 n/a │ IC=alice, backend=carol, scribe=bob" in out
    assert "DETAIL: action item 2: owner is missing." in out
    for section in ("§3", "§4.1", "§4.2", "§4.4", "§5", "§5.6", "§8", "§9", "§10", "§11"):
        assert section in out
    assert "NOT AS EXPECTED" not in out
    assert "All 25 steps behaved as the playbook expects (7 chapters)" in out


def test_run_demo_reports_a_deviation(db_url):
    """The demo is a smoke test: a database that is not in the state it expects makes it fail, loudly."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        set_state(conn, "off", True, "already killed before the demo")
    console, buffer = demo_console()
    assert run_demo(db_url, console) is False
    out = buffer.getvalue()
    assert "NOT AS EXPECTED: a fresh rollout starts at stage off" in out
    assert "The demo deviated from the playbook" in out
    assert "Chapter 2." not in out  # the story stops at the chapter that deviated


# --- status ---------------------------------------------------------------------------------------


def test_status_shows_state_verdict_blockers_checks_and_history(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        set_state(conn, "off", False, "hold for review")
        set_state(conn, "off", True, "incident P0")

    result = invoke(["status"], db_url)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Rollout state" in out and "Gate verdict" in out and "Gate checks" in out
    state_block = out[out.index("Rollout state") : out.index("Gate verdict")]
    assert "off (0.00 %)" in state_block
    assert "kill switch" in state_block and "ON" in state_block
    assert "incident P0" in state_block
    verdict_block = out[out.index("Gate verdict") : out.index("Gate checks")]
    assert "HOLD" in verdict_block and "NO-GO" in verdict_block
    assert "Blockers (why not GO):" in verdict_block
    assert "gate_p0_ok is false" in verdict_block
    checks_block = out[out.index("Gate checks") : out.index("History")]
    for metric in ("ack_without_receipt_10s_rate", "pending_forever_count", "recovery_p95_ms"):
        assert metric in checks_block
    assert "inconclusive" in checks_block and "not_applicable" in checks_block
    history_lines = [
        line for line in out[out.index("History") : out.index("Playbook section 8")].splitlines() if "postgres" in line
    ]
    assert [line.split("│")[4].strip() for line in history_lines] == ["kill", "hold", "init"]
    assert "incident P0" in history_lines[0] and "hold for review" in history_lines[1]
    # what the section 8 calls would do now: with the kill switch on, the hold shape is a resume, refused now
    calls_block = " ".join(out[out.index("Playbook section 8") :].split())
    assert "RESUME, not hold" in calls_block and "refused now (RO007)" in calls_block
    assert "To hold, do nothing" in calls_block


def test_status_tells_what_the_hold_call_does_at_each_state(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        arrange_state(conn, "promote", "canary_5", False, False)
    out = " ".join(invoke(["status"], db_url).output.split())
    calls = out[out.index("Playbook section 8") :]
    assert "HOLD: promotion frozen" in calls and "ROLLBACK: traffic drops" in calls
    assert "refused (RO005/RO006/RO041)" in calls


def test_status_on_an_unmigrated_database_prints_the_error_without_a_traceback(empty_db):
    _, url = empty_db
    result = invoke(["status"], url)
    assert result.exit_code == 1
    assert "ERROR 42883: function public.chat_get_v11_rollout_state() does not exist" in result.output
    assert "chat-rollout migrate" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_status_on_a_missing_database_exits_1(pg_server):
    result = invoke(["status"], pg_server.url_for(f"chat_rollout_missing_{os.getpid()}"))
    assert result.exit_code == 1
    assert "ERROR" in result.output and "does not exist" in result.output
    assert "Traceback" not in result.output


def test_an_unavailable_server_exits_2_with_the_reason(monkeypatch, db_url):
    def unavailable(**_kwargs):
        raise ServerUnavailable("no Docker engine is reachable (test)")

    monkeypatch.setattr(server_module, "from_environment", unavailable)
    result = invoke(["status"], db_url)
    assert result.exit_code == 2
    assert "server unavailable: no Docker engine is reachable (test)" in result.output
    assert "Traceback" not in result.output


# --- watch ----------------------------------------------------------------------------------------


def test_watch_prints_each_notification_payload(fresh_db):
    dbname, url = fresh_db
    outcome = {}

    def run_watch():
        outcome["result"] = invoke(["watch", "--count", "2"], url)

    watcher = threading.Thread(target=run_watch, daemon=True)
    watcher.start()
    with psycopg.connect(url, autocommit=True) as conn:
        wait_for_listener(conn, dbname)
        set_state(conn, "off", False, "hold")
        set_state(conn, "canary_1", True, "kill switch")
        watcher.join(timeout=15)
        if watcher.is_alive():  # release a stuck watcher before failing
            for _ in range(2):
                conn.execute("select pg_notify('chat_v11_rollout', '{}')")
            watcher.join(timeout=5)
            pytest.fail("chat-rollout watch did not stop after 2 notifications")

    result = outcome["result"]
    assert result.exit_code == 0, result.output
    payloads = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [(p["version"], p["action"], p["stage"], p["kill_switch"]) for p in payloads] == [
        (2, "hold", "off", False),
        (3, "kill", "off", True),
    ]
    assert all(p["promotion_frozen"] is True and "changed_at" in p for p in payloads)
    assert "listening on chat_v11_rollout (now: version 1, stage off, kill switch off)" in result.output


# --- db url, migrate ------------------------------------------------------------------------------


def test_db_url_prints_the_environment_server(pg_server, db_url):
    result = invoke(["db", "url"], db_url)
    assert result.exit_code == 0
    assert result.output.strip() == db_url
    result = invoke(["db", "url", "--database", "other_db"], db_url)
    assert result.exit_code == 0
    assert result.output.strip() == pg_server.url_for("other_db")


def test_migrate_creates_the_database_and_reports_the_revision(pg_server):
    name = f"chat_rollout_cli_m{os.getpid()}"
    drop_database(pg_server, name)
    try:
        result = invoke(["migrate", "--database", name], pg_server.url)
        assert result.exit_code == 0, result.output
        assert f"created database {name}" in result.output
        assert f"is at alembic revision {HEAD}" in result.output
        with psycopg.connect(pg_server.url_for(name), autocommit=True) as conn:
            s = state(conn)
            assert (s["stage"], s["version"]) == ("off", 1)
        again = invoke(["migrate", "--database", name], pg_server.url)
        assert again.exit_code == 0, again.output
        assert "created database" not in again.output
        assert f"is at alembic revision {HEAD}" in again.output
    finally:
        drop_database(pg_server, name)


def test_migrate_no_create_refuses_a_missing_database(pg_server):
    name = f"chat_rollout_cli_nc{os.getpid()}"
    drop_database(pg_server, name)
    result = invoke(["migrate", "--database", name, "--no-create"], pg_server.url)
    assert result.exit_code == 1
    assert "ERROR" in result.output and "does not exist" in result.output
    assert "Traceback" not in result.output


# --- the demo command -----------------------------------------------------------------------------


def test_demo_command_recreates_its_database_walks_and_exits_0(monkeypatch, pg_server):
    name = f"chat_rollout_cli_demo{os.getpid()}"
    monkeypatch.setattr(cli, "DEMO_DATABASE", name)
    try:
        for _ in range(2):  # a second run starts again from a fresh database
            result = invoke(["demo"], pg_server.url)
            assert result.exit_code == 0, result.output
            assert f"recreating database {name}" in result.output
            assert "All 25 steps behaved as the playbook expects" in result.output
            assert f"psql '{pg_server.url_for(name)}'" in result.output
        with psycopg.connect(pg_server.url_for(name), autocommit=True) as conn:
            assert [r["action"] for r in history(conn)] == [
                "auto_promote",
                "promote",
                "unfreeze",
                "resume",
                "kill",
                "auto_kill",
                "hold",
                "promote",
                "init",
            ]
            s = state(conn)
            assert (s["stage"], s["kill_switch"], s["promotion_frozen"]) == ("canary_25", False, False)
            incident = conn.execute("select severity, status, has_postmortem from public.chat_get_v11_incidents()")
            assert incident.fetchall() == [("P0", "closed", True)]
            checklist = conn.execute("select status from public.chat_get_v11_incident_checklist(1) order by item")
            assert {r[0] for r in checklist} == {"done", "n/a"}
    finally:
        drop_database(pg_server, name)


def test_demo_command_exits_1_when_a_step_deviates(monkeypatch, pg_server):
    name = f"chat_rollout_cli_demo_dev{os.getpid()}"
    monkeypatch.setattr(cli, "DEMO_DATABASE", name)
    monkeypatch.setattr(cli, "run_demo", lambda url, console, **_: False)
    try:
        result = invoke(["demo"], pg_server.url)
        assert result.exit_code == 1
        assert "demo FAILED" in result.output
    finally:
        drop_database(pg_server, name)
