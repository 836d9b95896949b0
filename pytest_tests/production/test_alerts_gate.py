"""Active alerts (SPEC 7; playbook section 9 "no active P0/P1 alerts") as a Go condition, against a REAL Alertmanager.

Debian's /usr/bin/prometheus-alertmanager runs as a private process (a null receiver, no clustering); alerts are
POSTed to its API v2 as Prometheus would. The puller reads them through its Python API (``Puller.pull_alerts``, what
every ``chat-rollout pull --alertmanager URL`` cycle runs) as the ingest login chat_test_ingest. With a healthy
canary where the gates say GO:

- a firing P1 alert blocks the Go/No-Go (promotion_allowed false, a blocker naming it, the promotion refused with
  RO005) while gate_p0_ok, gate_p1_ok and rollout_decision stay as they were; resolved, it blocks no more;
- Alertmanager down: with the policy alert_source required, "alert source unreachable" blocks (fail closed) and the
  error is counted on the puller's /metrics; required and never read, or read too long ago: "stale" blocks;
- not required and never read: nothing changes (every existing database); an alert on record blocks anyway;
- a silence mutes the page, not the evidence: a silenced P0 still blocks, a silenced P1 does not; other
  severities are not read; the severity label is configurable and read case-insensitively.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from chat_rollout.puller import Puller
from pytest_tests.support.calls import gates, login, refused, set_state
from pytest_tests.support.cluster import free_port
from pytest_tests.support.samples import healthy

BINARY = shutil.which("prometheus-alertmanager") or (
    "/usr/bin/prometheus-alertmanager" if Path("/usr/bin/prometheus-alertmanager").exists() else None
)

pytestmark = pytest.mark.skipif(BINARY is None, reason="prometheus-alertmanager is not installed "
                                "(apt-get install prometheus-alertmanager gives /usr/bin/prometheus-alertmanager)")

CONFIG = """\
route:
  receiver: "null"
receivers:
  - name: "null"
"""
REQUIRED = '{"required": true, "max_age": "2 minutes"}'


def utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class Alertmanager:
    """A private Alertmanager process: its API v2, started and stopped by the test."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (base / "am.yml").write_text(CONFIG, encoding="utf-8")
        self.log = base / "alertmanager.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [BINARY, f"--config.file={self.base / 'am.yml'}", f"--storage.path={self.base}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
                stdout=out, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            assert self.process.poll() is None and time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def post(self, path: str, body) -> bytes:
        request = urllib.request.Request(f"{self.url}/api/v2/{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.read()

    def fire(self, alertname: str, severity: str, *, ends: dt.datetime | None = None, label: str = "severity",
             starts: dt.datetime | None = None) -> None:
        alert = {"labels": {"alertname": alertname, label: severity, "service": "chat"},
                 "annotations": {"summary": f"{alertname} for the alert gate test"}}
        if starts is not None:
            alert["startsAt"] = utc(starts)
        if ends is not None:
            alert["endsAt"] = utc(ends)
        self.post("alerts", [alert])

    def silence(self, alertname: str) -> None:
        now = dt.datetime.now(dt.UTC)
        self.post("silences", {
            "matchers": [{"name": "alertname", "value": alertname, "isRegex": False, "isEqual": True}],
            "startsAt": utc(now - dt.timedelta(minutes=1)), "endsAt": utc(now + dt.timedelta(hours=1)),
            "createdBy": "test_alerts_gate", "comment": "a silence mutes the page",
        })


@pytest.fixture
def alertmanager(tmp_path):
    am = Alertmanager(tmp_path)
    am.start()
    try:
        yield am
    finally:
        am.stop()


def ingest_puller(db_url: str, alertmanager_url: str, **kwargs) -> Puller:
    # no Prometheus is needed for the alert read: a closed port stands for it
    return Puller(make_conninfo(db_url, user="chat_test_ingest"), "http://127.0.0.1:9", timeout=2.0,
                  alertmanager_url=alertmanager_url, **kwargs)


def go_ready(conn) -> None:
    """A healthy canary where the gates say GO (pytest_tests/guardrails/test_positive_paths.py)."""
    healthy(conn, 40)
    g = gates(conn)
    assert g["promotion_allowed"] is True and g["next_stage"] == "canary_1", g["blockers"]


def alert_blockers(conn, at=None) -> list[str]:
    return [b for b in gates(conn, at)["blockers"] if b.startswith("alert")]


def test_a_firing_p1_alert_blocks_the_go_no_go_until_resolved(conn, db_url, alertmanager):
    go_ready(conn)
    conn.execute("select * from chat_set_v11_policy('alert_source', %s::jsonb)", (REQUIRED,))
    assert alert_blockers(conn) == ["alert source stale: Alertmanager never checked (max_age 00:02:00)"]

    started = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=3)
    alertmanager.fire("ChatAckSpike", "P1", starts=started)
    puller = ingest_puller(db_url, alertmanager.url)
    try:
        alerts = puller.pull_alerts()
    finally:
        puller.close()
    assert [(a["alertname"], a["severity"], a["silenced"]) for a in alerts] == [("ChatAckSpike", "P1", False)]

    g = gates(conn)
    assert g["promotion_allowed"] is False
    stamp = started.strftime("%Y-%m-%d %H:%M:%S")
    assert alert_blockers(conn) == [f"alert ChatAckSpike (P1) firing since {stamp} UTC"], g["blockers"]
    # a Go condition, not a metric gate: the verdict is what it was
    assert (g["gate_p0_ok"], g["gate_p1_ok"], g["rollout_decision"]) == (True, True, "PROCEED")
    err = refused(conn, "select * from chat_set_v11_rollout_state('canary_1', false, 'promote under an alert')")
    assert err.diag.sqlstate == "RO005"
    assert "ChatAckSpike" in err.diag.message_detail

    record = conn.execute("select reachable, error, alerts, required from chat_get_v11_active_alerts()").fetchone()
    assert record[0:2] == (True, None) and record[3] is True
    assert record[2][0]["alertname"] == "ChatAckSpike" and len(record[2][0]["fingerprint"]) >= 1

    # resolved (endsAt in the past): the next read has no active alert, the Go/No-Go is GO again
    alertmanager.fire("ChatAckSpike", "P1", starts=started, ends=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    puller = ingest_puller(db_url, alertmanager.url)
    try:
        assert puller.pull_alerts() == []
    finally:
        puller.close()
    assert alert_blockers(conn) == []
    assert gates(conn)["promotion_allowed"] is True
    assert set_state(conn, "canary_1", False, "promote: no active alert")["stage"] == "canary_1"


def test_alertmanager_down_blocks_and_is_counted(conn, db_url, alertmanager):
    go_ready(conn)
    conn.execute("select * from chat_set_v11_policy('alert_source', %s::jsonb)", (REQUIRED,))
    puller = ingest_puller(db_url, alertmanager.url)
    try:
        assert puller.pull_alerts() == []
        assert gates(conn)["promotion_allowed"] is True
        alertmanager.stop()
        report = puller.pull_once()  # one whole cycle: the alert read first, then Prometheus (down too here)
        assert report.alerts is None
        assert any(e.startswith("alertmanager: ") for e in report.errors), report.errors
        assert puller.metrics.registry.get_sample_value("chat_rollout_pull_errors_total",
                                                        {"reason": "alertmanager"}) == 1
    finally:
        puller.close()
    blockers = alert_blockers(conn)
    assert len(blockers) == 1 and blockers[0].startswith("alert source unreachable since "), blockers
    assert alertmanager.url in blockers[0]
    assert gates(conn)["promotion_allowed"] is False
    err = refused(conn, "select * from chat_set_v11_rollout_state('canary_1', false, 'promote, source down')")
    assert err.diag.sqlstate == "RO005"
    assert "alert source unreachable" in err.diag.message_detail

    # back up: the next read clears it
    alertmanager.start()
    puller = ingest_puller(db_url, alertmanager.url)
    try:
        assert puller.pull_alerts() == []
    finally:
        puller.close()
    assert alert_blockers(conn) == []


def test_silenced_p0_blocks_silenced_p1_does_not_other_severities_are_not_read(conn, db_url, alertmanager):
    go_ready(conn)
    alertmanager.fire("ChatStallSilenced", "P0")
    alertmanager.fire("ChatLatencySilenced", "p1")  # case-insensitive
    alertmanager.fire("ChatDiskP2", "P2")
    alertmanager.fire("ChatNoSeverity", "")
    alertmanager.silence("ChatStallSilenced")
    alertmanager.silence("ChatLatencySilenced")
    puller = ingest_puller(db_url, alertmanager.url)
    try:
        alerts = puller.pull_alerts()
    finally:
        puller.close()
    assert sorted((a["alertname"], a["severity"], a["silenced"]) for a in alerts) == [
        ("ChatLatencySilenced", "P1", True), ("ChatStallSilenced", "P0", True),
    ]
    # the policy is not required: still, an alert we know of is never ignored
    blockers = alert_blockers(conn)
    assert len(blockers) == 1 and blockers[0].startswith("alert ChatStallSilenced (P0) firing since "), blockers
    assert blockers[0].endswith("silenced (a silenced P0 still blocks)")
    assert gates(conn)["promotion_allowed"] is False


def test_the_severity_label_is_configurable(conn, db_url, alertmanager):
    alertmanager.fire("ChatAckSpike", "P1", label="priority")
    alertmanager.fire("ChatOtherLabel", "P0")  # severity=P0, not read under --alert-severity-label priority
    puller = ingest_puller(db_url, alertmanager.url, alert_severity_label="priority")
    try:
        assert [a["alertname"] for a in puller.pull_alerts()] == ["ChatAckSpike"]
    finally:
        puller.close()


def test_not_required_and_never_read_changes_nothing(conn):
    go_ready(conn)
    assert conn.execute("select count(*) from chat_get_v11_active_alerts()").fetchone() == (0,)
    assert alert_blockers(conn) == []
    policy = conn.execute("select required, max_age from chat_get_v11_active_alerts()").fetchone()
    assert policy is None  # no row without a read
    policy = conn.execute("select value from chat_v11.alert_policy where key = 'alert_source'").fetchone()[0]
    assert policy == {"required": False, "max_age": "2 minutes"}


def test_not_required_an_unreachable_source_does_not_block_a_known_alert_does(conn, db_url):
    go_ready(conn)
    with login(db_url, "chat_test_ingest") as ingest:
        ingest.execute("select chat_put_v11_active_alerts(null, 'connection refused')")
        assert alert_blockers(conn) == []
        ingest.execute("select chat_put_v11_active_alerts(%s::jsonb)", (json.dumps([
            {"alertname": "ChatAckSpike", "severity": "P1", "startsAt": "2026-01-01T00:00:00.123456789Z",
             "fingerprint": "4a0e4b0c2c3d1e2f", "silenced": False},
        ]),))
        # a failed read keeps the alerts of the last successful one: an outage never hides a known alert
        ingest.execute("select chat_put_v11_active_alerts(null, 'connection refused')")
    assert alert_blockers(conn) == ["alert ChatAckSpike (P1) firing since 2026-01-01 00:00:00 UTC"]
    conn.execute("select * from chat_set_v11_policy('alert_source', %s::jsonb)", (REQUIRED,))
    blockers = alert_blockers(conn)
    assert blockers[0].startswith("alert source unreachable since ") and blockers[0].endswith(": connection refused")
    assert blockers[1:] == ["alert ChatAckSpike (P1) firing since 2026-01-01 00:00:00 UTC"]


def test_required_and_stale_or_before_the_read_blocks(conn, db_url):
    go_ready(conn)
    conn.execute("select * from chat_set_v11_policy('alert_source', %s::jsonb)",
                 (json.dumps({"required": True, "max_age": "30 seconds"}),))
    with login(db_url, "chat_test_ingest") as ingest:
        ingest.execute("select chat_put_v11_active_alerts('[]')")
    assert alert_blockers(conn) == []
    checked = conn.execute("select checked_at from chat_get_v11_active_alerts()").fetchone()[0]
    later = alert_blockers(conn, checked + dt.timedelta(seconds=31))
    assert later == [f"alert source stale: last checked at {checked.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC "
                     "(max_age 00:00:30)"]
    # alerts are evaluated from the latest read only, for moments at or after it: before it there is none
    earlier = alert_blockers(conn, checked - dt.timedelta(seconds=1))
    assert len(earlier) == 1 and earlier[0].startswith("alert source stale: no Alertmanager read at or before ")


@pytest.mark.parametrize("max_age,ok", [("30 seconds", True), ("1 hour", True), ("29 seconds", False),
                                        ("61 minutes", False)])
def test_max_age_bounds(conn, max_age, ok):
    value = json.dumps({"required": True, "max_age": max_age})
    if ok:
        conn.execute("select * from chat_set_v11_policy('alert_source', %s::jsonb)", (value,))
        return
    err = refused(conn, "select * from chat_set_v11_policy('alert_source', %s::jsonb)", (value,))
    assert err.diag.sqlstate == "RO014" and "between 30 seconds and 1 hour" in err.diag.message_detail


def test_only_the_ingest_login_writes_the_record(db_url):
    with login(db_url, "chat_test_reader") as reader:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("select chat_put_v11_active_alerts('[]')")
        assert reader.execute("select count(*) from chat_get_v11_active_alerts()").fetchone() == (0,)
