"""Issue 17 (SPEC 7, "Prometheus out"): `chat-rollout exporter` serves the rollout on /metrics as a reader login.

The exporter (``chat_rollout.exporter``, in-process on a free port, or the CLI command as a process) reads the test's
own database as ``chat_test_reader``; each test scrapes /metrics with urllib and parses it with prometheus-client's
parser (``support/prometheus.py``):

- the state, the decision and the gates, each check (one 0/1 series per status, value, threshold, baseline, volume;
  a null is no series, never NaN), open incidents by severity and the history chain, as the reader API says;
- a kill committed by the operator is in the very next scrape; every scrape is one snapshot (the state's version
  and the verified history head agree while an operator writes);
- the database down (it refuses connections and the exporter's backend is terminated), a login that may not read
  and a read that outlasts the statement timeout: ``chat_rollout_up 0``, the error counter grows, and no rollout
  series at all; back up, the next scrape reads again;
- the series count stays within the documented bound, and the README documents every name;
- ``chat-rollout exporter --listen`` serves as a process and stops on SIGTERM.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from chat_rollout import PROJECT_ROOT
from chat_rollout.exporter import CHECK_STATUSES, FIXED_SERIES, SERIES_PER_CHECK, STAGES
from pytest_tests.support.calls import arrange_state, checks, gates, invoke, set_state, state
from pytest_tests.support.cluster import free_port
from pytest_tests.support.databases import admin_connect
from pytest_tests.support.prometheus import Scrape, running_exporter, scrape, wait_listening
from pytest_tests.support.samples import healthy

READER = "chat_test_reader"
#: The series every scrape has, whatever happened.
ALWAYS = {"chat_rollout_up", "chat_rollout_scrape_errors_total", "chat_rollout_scrape_duration_seconds"}
SCOPES = {"all cohorts", "per cohort", "canary vs control"}


def reader_url(db_url: str, user: str = READER) -> str:
    return make_conninfo(db_url, user=user)


def assert_no_nan(result: Scrape) -> None:
    assert not [(n, lab) for n, lab, v in result.samples if math.isnan(v)], "NaN is never exported as a value"


def assert_down(result: Scrape, errors: float) -> None:
    assert result.value("chat_rollout_up") == 0
    assert result.value("chat_rollout_scrape_errors_total") == errors
    assert result.names == ALWAYS, f"rollout series served while the database is unreadable: {result.names - ALWAYS}"


def test_state_decision_gates_and_chain_are_the_reader_api(conn, db_url):
    with running_exporter(reader_url(db_url)) as exporter:
        result = scrape(exporter.url)
    now, verdict = state(conn), gates(conn)
    assert result.value("chat_rollout_up") == 1
    assert result.value("chat_rollout_scrape_errors_total") == 0
    assert 0 <= result.value("chat_rollout_scrape_duration_seconds") < 15
    assert result.series("chat_rollout_rollout_info") == [({"stage": "off"}, 1.0)]
    assert result.value("chat_rollout_stage_ordinal") == 0
    assert result.value("chat_rollout_traffic_percent") == float(now["traffic_percent"]) == 0
    assert result.value("chat_rollout_kill_switch") == 0
    assert result.value("chat_rollout_promotion_frozen") == 0
    assert result.value("chat_rollout_version") == now["version"]
    assert result.value("chat_rollout_state_changed_timestamp_seconds") == pytest.approx(now["changed_at"].timestamp())
    decisions = {labels["decision"]: value for labels, value in result.series("chat_rollout_decision")}
    assert decisions == {d: float(d == verdict["rollout_decision"]) for d in ("PROCEED", "HOLD", "ROLLBACK")}
    assert result.value("chat_rollout_gate_ok", gate="p0") == float(verdict["gate_p0_ok"])
    assert result.value("chat_rollout_gate_ok", gate="p1") == float(verdict["gate_p1_ok"])
    assert result.value("chat_rollout_promotion_allowed") == float(verdict["promotion_allowed"])
    assert {labels["severity"]: value for labels, value in result.series("chat_rollout_open_incidents")} == {
        "P0": 0, "P1": 0, "P2": 0}
    assert result.value("chat_rollout_history_verified") == 1
    assert result.value("chat_rollout_history_head_version") == now["version"]
    assert_no_nan(result)


def test_the_exporter_reads_with_the_reader_login_and_read_only(conn, db_url, fresh_db):
    with running_exporter(reader_url(db_url)) as exporter:
        assert scrape(exporter.url).value("chat_rollout_up") == 1
        session = conn.execute(
            "select usename, application_name from pg_stat_activity where datname = %s and usename = %s",
            (fresh_db[0], READER),
        ).fetchall()
        assert session == [(READER, "chat-rollout exporter")], "one kept connection, as the reader login"


def test_a_login_that_could_write_is_named_once(db_url, caplog):
    with caplog.at_level(logging.WARNING, logger="chat_rollout.exporter"):
        with running_exporter(reader_url(db_url, "chat_test_operator")) as exporter:
            assert scrape(exporter.url).value("chat_rollout_up") == 1
            assert scrape(exporter.url).value("chat_rollout_up") == 1
    warnings = [r.getMessage() for r in caplog.records if "can write" in r.getMessage()]
    assert warnings == [
        "the exporter's login chat_test_operator can write (chat_rollout_operator): run it as a reader login "
        "(a member of chat_rollout_reader)"
    ]


def test_a_kill_is_in_the_very_next_scrape(conn, db_url):
    arrange_state(conn, "promote", "canary_1", False, False)
    with running_exporter(reader_url(db_url)) as exporter:
        before = scrape(exporter.url)
        assert before.value("chat_rollout_kill_switch") == 0
        assert before.series("chat_rollout_rollout_info") == [({"stage": "canary_1"}, 1.0)]
        assert before.value("chat_rollout_stage_ordinal") == STAGES.index("canary_1") == 1
        assert before.value("chat_rollout_traffic_percent") == 1.0
        killed = set_state(conn, "canary_1", True, "kill switch")
        after = scrape(exporter.url)
    assert after.value("chat_rollout_kill_switch") == 1
    assert after.value("chat_rollout_promotion_frozen") == 1
    assert after.value("chat_rollout_version") == killed["version"] == before.value("chat_rollout_version") + 1
    assert after.value("chat_rollout_history_head_version") == killed["version"]
    assert after.value("chat_rollout_history_verified") == 1


def _exported_checks(result: Scrape) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for labels, value in result.series("chat_rollout_check_status"):
        entry = out.setdefault(labels["metric"], {"severity": labels["severity"], "scope": labels["scope"],
                                                  "statuses": {}})
        entry["statuses"][labels["status"]] = value
    for column in ("value", "threshold", "baseline", "volume"):
        for labels, value in result.series(f"chat_rollout_check_{column}"):
            out[labels["metric"]][column] = value
    return out


def _expected_checks(rows: dict[str, dict]) -> dict[str, dict]:
    out = {}
    for metric, row in rows.items():
        entry = {"severity": row["severity"], "scope": row["scope"],
                 "statuses": {s: float(s == row["status"]) for s in CHECK_STATUSES}}
        for column in ("value", "threshold", "baseline", "volume"):
            if row[column] is not None:  # a null is no series
                entry[column] = float(row[column])
        out[metric] = entry
    return out


def _checks_as_scraped(conn, url: str) -> tuple[Scrape, dict, dict]:
    """A scrape and chat_get_v11_gate_checks() around it; retried when a 10 s bucket boundary moved the window."""
    for _ in range(5):
        before = _expected_checks(checks(conn))
        result = scrape(url)
        if _expected_checks(checks(conn)) == before:
            return result, _exported_checks(result), before
    raise AssertionError("the gate checks kept changing between reads")


def test_each_check_with_status_value_threshold_baseline_and_volume(conn, db_url):
    arrange_state(conn, "promote", "canary_1", False, False)
    healthy(conn)
    with running_exporter(reader_url(db_url)) as exporter:
        result, exported, expected = _checks_as_scraped(conn, exporter.url)
    assert exported == expected
    assert len(exported) == 9, "the metric catalog has 9 metrics"
    assert any("baseline" in c for c in exported.values()) and any("baseline" not in c for c in exported.values())
    assert all(c["statuses"]["pass"] == 1 for c in exported.values()), "healthy canary: every check passes"
    assert result.value("chat_rollout_gate_ok", gate="p0") == 1
    assert_no_nan(result)


def test_no_data_is_inconclusive_with_no_value_series(conn, db_url):
    arrange_state(conn, "promote", "canary_1", False, False)
    with running_exporter(reader_url(db_url)) as exporter:
        result, exported, expected = _checks_as_scraped(conn, exporter.url)
    assert exported == expected
    assert all(c["statuses"]["inconclusive"] == 1 for c in exported.values())
    valued = {labels["metric"] for labels, _ in result.series("chat_rollout_check_value")}
    rows = checks(conn)
    assert valued == {m for m, row in rows.items() if row["value"] is not None}
    assert "ack_without_receipt_10s_rate" not in valued, "a rate with no data has no value series: never NaN or 0"
    assert result.series("chat_rollout_check_threshold"), "the thresholds are configuration: still there"
    assert result.value("chat_rollout_decision", decision="HOLD") == 1
    assert_no_nan(result)


def test_open_incidents_by_severity(conn, db_url):
    with running_exporter(reader_url(db_url)) as exporter:
        incident = conn.execute("select incident_id from chat_open_v11_incident('P1', 'resync range spike')").fetchone()
        p1 = scrape(exporter.url)
        conn.execute("select * from chat_set_v11_incident_severity(%s, 'P0', 'ACK without receipt')", incident)
        p0 = scrape(exporter.url)
    incidents = {labels["severity"]: value for labels, value in p1.series("chat_rollout_open_incidents")}
    assert incidents == {"P0": 0, "P1": 1, "P2": 0}
    assert p1.value("chat_rollout_promotion_frozen") == 1, "a P1 freezes promotion"
    incidents = {labels["severity"]: value for labels, value in p0.series("chat_rollout_open_incidents")}
    assert incidents == {"P0": 1, "P1": 0, "P2": 0}
    assert p0.value("chat_rollout_kill_switch") == 1, "a P0 engages the kill switch"


def test_the_database_down_is_up_0_with_no_rollout_series_then_up_again(pg_server, db_url, fresh_db):
    name = fresh_db[0]
    with running_exporter(reader_url(db_url), connect_timeout=3) as exporter, admin_connect(pg_server) as admin:
        healthy_scrape = scrape(exporter.url)
        assert healthy_scrape.value("chat_rollout_up") == 1
        assert len(healthy_scrape.names) > len(ALWAYS)
        admin.execute(f'alter database "{name}" allow_connections false')
        try:
            terminated = admin.execute(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                "where datname = %s and application_name = 'chat-rollout exporter'",
                (name,),
            ).fetchone()[0]
            assert terminated == 1
            assert_down(scrape(exporter.url), 1)  # the kept connection is gone
            assert_down(scrape(exporter.url), 2)  # and a new one is refused
            assert "not currently accepting connections" in (exporter.collector.last_error or "")
        finally:
            admin.execute(f'alter database "{name}" allow_connections true')
        back = scrape(exporter.url)
    assert back.value("chat_rollout_up") == 1
    assert back.value("chat_rollout_scrape_errors_total") == 2, "the counter keeps what happened"
    assert back.names == healthy_scrape.names
    assert back.value("chat_rollout_version") == healthy_scrape.value("chat_rollout_version")


def test_a_dropped_database_is_up_0(pg_server, db_url, fresh_db):
    with running_exporter(reader_url(db_url), connect_timeout=3) as exporter:
        assert scrape(exporter.url).value("chat_rollout_up") == 1
        with admin_connect(pg_server) as admin:
            admin.execute(f'drop database "{fresh_db[0]}" with (force)')
        assert_down(scrape(exporter.url), 1)
        assert_down(scrape(exporter.url), 2)


def test_a_login_that_may_not_read_is_up_0(db_url):
    with running_exporter(reader_url(db_url, "chat_test_nobody")) as exporter:
        assert_down(scrape(exporter.url), 1)
        assert "permission denied" in exporter.collector.last_error


def test_a_read_past_the_statement_timeout_is_up_0_and_the_connection_is_kept(conn, db_url):
    with running_exporter(reader_url(db_url), statement_timeout=0.5) as exporter:
        assert scrape(exporter.url).value("chat_rollout_up") == 1
        with psycopg.connect(db_url) as blocker:  # a transaction holding the state table
            blocker.execute("lock table chat_v11.rollout_state in access exclusive mode")
            started = time.monotonic()
            result = scrape(exporter.url)
            took = time.monotonic() - started
            blocker.rollback()
        assert_down(result, 1)
        assert took < 5, f"the scrape waited {took:.1f} s: the statement timeout did not bound it"
        assert "statement timeout" in exporter.collector.last_error
        pid = exporter.collector._conn.info.backend_pid
        again = scrape(exporter.url)
        assert again.value("chat_rollout_up") == 1
        assert exporter.collector._conn.info.backend_pid == pid, "a query error keeps the connection"


def test_every_scrape_is_one_snapshot_while_an_operator_writes(conn, db_url):
    """The state's version and the verified history head come from one snapshot, even while holds are committed."""
    arrange_state(conn, "promote", "canary_1", False, False)
    stop = threading.Event()

    def hold() -> None:
        with psycopg.connect(db_url, autocommit=True) as writer:
            while not stop.is_set():
                writer.execute("select * from chat_set_v11_rollout_state('canary_1', false, 'hold')")

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        with running_exporter(reader_url(db_url)) as exporter:
            versions = []
            for _ in range(25):
                result = scrape(exporter.url)
                assert result.value("chat_rollout_up") == 1
                assert result.value("chat_rollout_version") == result.value("chat_rollout_history_head_version")
                versions.append(result.value("chat_rollout_version"))
    finally:
        stop.set()
        thread.join(timeout=30)
    assert len(set(versions)) > 1, "the operator's holds were committed between scrapes"


def test_series_are_bounded_and_documented(conn, db_url):
    arrange_state(conn, "promote", "canary_1", False, False)
    healthy(conn)
    conn.execute("select * from chat_open_v11_incident('P2', 'a client schema error')")
    metrics = [r[0] for r in conn.execute("select metric from chat_get_v11_metric_rules()").fetchall()]
    with running_exporter(reader_url(db_url)) as exporter:
        result = scrape(exporter.url)
    bound = FIXED_SERIES + SERIES_PER_CHECK * len(metrics)
    assert len(result.samples) <= bound == 25 + 8 * 9
    assert len(result.samples) > FIXED_SERIES + len(CHECK_STATUSES) * len(metrics)
    labels = {}
    for _, lab, _ in result.samples:
        for key, value in lab.items():
            labels.setdefault(key, set()).add(value)
    assert labels["metric"] == set(metrics)
    assert labels["scope"] <= SCOPES
    assert labels["status"] == set(CHECK_STATUSES)
    assert labels["severity"] == {"P0", "P1", "P2"}
    assert labels["stage"] == {"canary_1"} and labels["gate"] == {"p0", "p1"}
    assert labels["decision"] == {"PROCEED", "HOLD", "ROLLBACK"}
    assert set(labels) == {"metric", "scope", "status", "severity", "stage", "gate", "decision"}
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Prometheus\n", 1)[1].split("\n## ", 1)[0]
    missing = sorted(name for name in result.names if f"`{name}" not in section)
    assert not missing, f"README's Prometheus section does not document {missing}"


def _cli_program() -> list[str]:
    program = Path(sys.executable).with_name("chat-rollout")
    if program.exists():
        return [str(program)]
    return [sys.executable, "-c", "from chat_rollout.cli import app; app()"]


def test_the_cli_command_serves_and_stops_on_sigterm(conn, db_url):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("CHAT_ROLLOUT_DOCKER", "CHAT_ROLLOUT_POOLER")}
    env["DATABASE_URL"] = reader_url(db_url)
    process = subprocess.Popen(
        [*_cli_program(), "exporter", "--listen", f"127.0.0.1:{port}"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert wait_listening("127.0.0.1", port, 30, process), process.communicate(timeout=10)
        result = scrape(f"http://127.0.0.1:{port}/metrics")
        assert result.value("chat_rollout_up") == 1
        set_state(conn, "off", True, "kill switch")
        assert scrape(f"http://127.0.0.1:{port}/metrics").value("chat_rollout_kill_switch") == 1
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert f"serving http://127.0.0.1:{port}/metrics" in err and READER in err


def test_the_cli_refuses_a_listen_address_that_is_not_host_port(db_url):
    result = invoke(["exporter", "--listen", "9464"], reader_url(db_url))
    assert result.exit_code == 1
    assert "is not HOST:PORT" in result.output
